/**
 * The entries trun adds to a container's /etc/hosts for the other
 * containers on its user-defined networks (pure). They live in a block
 * after a marker line, below the base content (lib/spec/generate.ts
 * `etcFileContents`), so a rewrite replaces the block and keeps the rest,
 * including lines the container wrote itself above it.
 */

/** The line that starts trun's block. */
export const HOSTS_MARKER = "# trun: containers on the same networks";

/** One address and the names it answers to. */
export interface HostsEntry {
  /** The address. */
  ip: string;
  /** Its names: the container's name, its aliases on that network, its short id. */
  names: string[];
}

/** `text` with trun's block replaced by `entries` (none: the block goes). */
export function withNetworkEntries(text: string, entries: readonly HostsEntry[]): string {
  const lines = text.split("\n");
  const at = lines.indexOf(HOSTS_MARKER);
  let base = (at < 0 ? lines : lines.slice(0, at)).join("\n");
  if (base !== "" && !base.endsWith("\n")) base += "\n";
  if (entries.length === 0) return base;
  return base + [HOSTS_MARKER, ...entries.map((e) => `${e.ip}\t${e.names.join(" ")}`)].join("\n") +
    "\n";
}

/** A container's address on one network, as {@link hostsEntriesFor} reads it. */
export interface NetworkMember {
  /** The container's id. */
  id: string;
  /** Its name. */
  name: string;
  /** The network. */
  network: string;
  /** Its address there. */
  ip: string;
  /** Its aliases there. */
  aliases: readonly string[];
}

/**
 * The entries of container `id`'s hosts file: every other container on
 * any of its networks, by name, aliases and short id (Docker's resolver
 * answers all three), sorted by network then address.
 */
export function hostsEntriesFor(id: string, members: readonly NetworkMember[]): HostsEntry[] {
  const mine = new Set(members.filter((m) => m.id === id).map((m) => m.network));
  return members
    .filter((m) => m.id !== id && mine.has(m.network))
    .map((m) => ({ ip: m.ip, names: [...new Set([m.name, ...m.aliases, m.id.slice(0, 12)])] }));
}

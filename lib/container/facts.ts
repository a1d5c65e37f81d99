/**
 * What spec generation needs to know and cannot read itself (it is pure):
 * the host's facts and the root filesystem's, gathered once per container;
 * plus fresh container ids.
 */
import type { IdMapping } from "../runtime/idmap.ts";
export { newContainerId } from "./container_id.ts";
import { mapToContainer } from "../runtime/idmap.ts";
import {
  canBindFileAt,
  readRootfsText,
  resolveEntry,
  resolveInRootfs,
} from "../runtime/rootfs_files.ts";
import type { EtcFileName, HostFacts, RootfsFacts } from "../spec/generate.ts";
import { capabilitiesInMask } from "../spec/capabilities.ts";

/** Whether the running kernel (or `release`, e.g. `6.18.4-x`) is at least `major.minor`. */
export function kernelAtLeast(major: number, minor: number, release: string): boolean {
  const m = release.match(/^(\d+)\.(\d+)/);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > major || (maj === major && min >= minor);
}

function readHostFile(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/**
 * The capabilities this process may hand on: its bounding set, by name
 * (proc(5) `CapBnd`); undefined when /proc does not say.
 */
export function ownBoundingSet(): string[] | undefined {
  const line = readHostFile("/proc/self/status")?.split("\n").find((l) => l.startsWith("CapBnd:"));
  return line ? capabilitiesInMask(line.slice(7)) : undefined;
}

/** The host facts spec generation needs, read once. */
export function gatherHostFacts(idMapping: IdMapping): HostFacts {
  const bounding = ownBoundingSet();
  return {
    idMapping,
    env: Deno.env.toObject(),
    hosts: readHostFile("/etc/hosts"),
    resolvConf: readHostFile("/etc/resolv.conf"),
    ...(bounding ? { capabilities: bounding } : {}),
  };
}

/**
 * Whether the container's root can create a file in `dir` of the rootfs: as
 * host root always; in a user namespace only when the directory's owner is
 * mapped (a rootfs owned by an unmapped id shows as `nobody` and is
 * read-only inside).
 */
function rootCanCreateIn(layers: readonly string[], dir: string, mapping: IdMapping): boolean {
  if (mapping.mode === "host") return true;
  const e = resolveEntry(layers, dir);
  if (e.kind !== "dir") return false;
  try {
    return mapToContainer(Deno.statSync(e.host).uid ?? -1, mapping.uid) !== null;
  } catch {
    return false;
  }
}

/** What the root filesystem says: account files and where /etc files can be bound. */
export function gatherRootfsFacts(layers: readonly string[], mapping: IdMapping): RootfsFacts {
  const bindable = (name: EtcFileName) => {
    const target = `/etc/${name}`;
    if (!canBindFileAt(layers, target)) return false;
    return resolveInRootfs(layers, target) !== null || rootCanCreateIn(layers, "/etc", mapping);
  };
  return {
    passwd: readRootfsText(layers, "/etc/passwd"),
    group: readRootfsText(layers, "/etc/group"),
    etcBindable: {
      hostname: bindable("hostname"),
      hosts: bindable("hosts"),
      "resolv.conf": bindable("resolv.conf"),
    },
  };
}

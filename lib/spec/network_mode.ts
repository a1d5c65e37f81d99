/** `--network` values, read as Docker and Podman read them. */

/**
 * The network a container gets. `private` is the default: its own network
 * namespace with outbound connectivity through pasta or slirp4netns,
 * whichever the host has (resolved when the container is created).
 */
export type NetworkMode =
  | { kind: "private" }
  | { kind: "none" }
  | { kind: "host" }
  | { kind: "pasta"; options: string[] }
  | { kind: "slirp4netns"; options: string[] }
  | { kind: "container"; container: string }
  | { kind: "network"; name: string };

/** Names that mean the default network, as in Docker (`bridge`) and Podman (`private`). */
const DEFAULT_NAMES = new Set(["", "default", "bridge", "private"]);

/** A network name as `trun network create` accepts it (Docker's rule). */
export const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Parses one `--network` value. `pasta:` and `slirp4netns:` take
 * comma-separated options (Podman's syntax); `container:` names or
 * abbreviates another container's id; anything else names a user-defined
 * network. Throws with a message fit for users.
 */
export function parseNetworkMode(value: string | undefined): NetworkMode {
  const v = value ?? "";
  if (DEFAULT_NAMES.has(v)) return { kind: "private" };
  if (v === "none" || v === "host") return { kind: v };
  const colon = v.indexOf(":");
  const head = colon < 0 ? v : v.slice(0, colon);
  const rest = colon < 0 ? "" : v.slice(colon + 1);
  if (head === "pasta" || head === "slirp4netns") {
    const options = rest === "" ? [] : rest.split(",");
    if (options.some((o) => o === "")) {
      throw new Error(`invalid --network "${v}": empty option in the comma-separated list`);
    }
    return { kind: head, options };
  }
  if (head === "container") {
    if (rest === "") throw new Error(`invalid --network "${v}": container: needs a name or id`);
    return { kind: "container", container: rest };
  }
  if (colon >= 0 || !NETWORK_NAME.test(v)) {
    throw new Error(
      `invalid --network "${v}": use none, host, pasta[:OPTIONS], slirp4netns[:OPTIONS], ` +
        "container:NAME|ID or the name of a network",
    );
  }
  return { kind: "network", name: v };
}

/** The mode as `--network` would spell it (for `inspect`'s HostConfig.NetworkMode). */
export function formatNetworkMode(m: NetworkMode): string {
  switch (m.kind) {
    case "private":
      return "private";
    case "none":
    case "host":
      return m.kind;
    case "pasta":
    case "slirp4netns":
      return m.options.length ? `${m.kind}:${m.options.join(",")}` : m.kind;
    case "container":
      return `container:${m.container}`;
    case "network":
      return m.name;
  }
}

/**
 * `--device HOST[:CTR[:PERMS]]` and `--privileged`'s host devices in the
 * spec: as real root without a user namespace, nodes of the container's
 * own (`linux.devices`, made with mknod as runc does); in a user namespace,
 * where mknod is refused, bind mounts of the host's nodes, as rootless
 * Podman does.
 */
import type { Device, Mount } from "./types.ts";

/** A host device node, as stat(2) shows it. */
export interface DeviceNode {
  /** `c` or `b`. */
  type: "c" | "b";
  /** Major number. */
  major: number;
  /** Minor number. */
  minor: number;
  /** Permission bits. */
  mode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
}

/** One device to give the container, with the host's node already looked at. */
export interface DeviceRequest {
  /** Path on the host. */
  hostPath: string;
  /** Path in the container. */
  containerPath: string;
  /** Some of `rwm` (read, write, mknod), as Docker's. */
  permissions: string;
  /** The host's node. */
  node: DeviceNode;
}

function validPermissions(p: string): boolean {
  return p.length > 0 && p.length <= 3 && /^[rwm]+$/.test(p) && new Set(p).size === p.length;
}

/** Parses a `--device` value into its host path, container path and permissions (Docker's rules). */
export function parseDeviceFlag(arg: string): Omit<DeviceRequest, "node"> {
  const parts = arg.split(":");
  if (parts.length > 3 || parts[0] === "") {
    throw new Error(`invalid device specification: "${arg}"`);
  }
  const hostPath = parts[0]!;
  let containerPath = hostPath;
  let permissions = "rwm";
  if (parts.length === 3) {
    containerPath = parts[1]!;
    permissions = parts[2]!;
    if (!validPermissions(permissions)) throw new Error(`invalid device mode: "${permissions}"`);
  } else if (parts.length === 2) {
    if (validPermissions(parts[1]!)) permissions = parts[1]!;
    else containerPath = parts[1]!;
  }
  for (const p of [hostPath, containerPath]) {
    if (!p.startsWith("/")) {
      throw new Error(`invalid device specification "${arg}": "${p}" is not an absolute path`);
    }
  }
  return { hostPath, containerPath, permissions };
}

/**
 * What the spec gets for the requested devices: bind mounts (in a user
 * namespace) or `linux.devices` entries (real root). A later request for
 * the same container path replaces an earlier one.
 */
export function deviceSpec(
  requests: readonly DeviceRequest[],
  inUserNamespace: boolean,
): { mounts: Mount[]; devices: Device[] } {
  const byPath = new Map<string, DeviceRequest>();
  for (const r of requests) byPath.set(r.containerPath, r);
  const mounts: Mount[] = [];
  const devices: Device[] = [];
  for (const r of byPath.values()) {
    if (inUserNamespace) {
      const options = ["bind", "nosuid", "noexec"];
      if (!r.permissions.includes("w")) options.push("ro");
      mounts.push({ destination: r.containerPath, type: "bind", source: r.hostPath, options });
    } else {
      devices.push({
        type: r.node.type,
        path: r.containerPath,
        major: r.node.major,
        minor: r.node.minor,
        fileMode: r.node.mode & 0o7777,
        uid: r.node.uid,
        gid: r.node.gid,
      });
    }
  }
  return { mounts, devices };
}

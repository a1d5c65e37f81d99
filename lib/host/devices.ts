/**
 * The host's device nodes, for `--device` and `--privileged`: one node's
 * type and numbers (stat(2)), every node under /dev (as runc's
 * `HostDevices` walks it), and whether a rootless container can use one.
 */
import { canOpen, type Who } from "./access.ts";
import type { DeviceNode } from "../spec/devices.ts";

/** major(3) and minor(3) of a `dev_t`. */
export function splitDev(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}

/** The node at `path` (links followed), or null when it is not a device. Throws when absent. */
export function deviceNode(path: string): DeviceNode | null {
  const st = Deno.statSync(path);
  if (!st.isCharDevice && !st.isBlockDevice) return null;
  return {
    type: st.isBlockDevice ? "b" : "c",
    ...splitDev(st.rdev ?? 0),
    mode: (st.mode ?? 0) & 0o7777,
    uid: st.uid ?? 0,
    gid: st.gid ?? 0,
  };
}

/** Directories of /dev that hold no devices of the host's own to share (runc's skip list). */
const SKIPPED_DIRS = new Set(["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]);

/**
 * Every device node under `dir` (symlinks not followed), but /dev/console
 * and the directories above: what `--privileged` hands the container.
 */
export function hostDevices(dir = "/dev"): { path: string; node: DeviceNode }[] {
  const out: { path: string; node: DeviceNode }[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return out;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) {
      if (!SKIPPED_DIRS.has(e.name)) out.push(...hostDevices(path));
      continue;
    }
    if (e.isSymlink || path === "/dev/console") continue;
    try {
      const node = deviceNode(path);
      if (node) out.push({ path, node });
    } catch {
      // Gone since the listing.
    }
  }
  return out;
}

/**
 * Why a rootless container could not use the host's node with these
 * permissions (a bind keeps the host's owner and mode, and the container's
 * root is the user outside), or null when it can.
 */
export function rootlessDeviceProblem(
  path: string,
  node: DeviceNode,
  permissions: string,
  who: Who,
): string | null {
  const want = { read: permissions.includes("r"), write: permissions.includes("w") };
  if (canOpen(node, who, want)) return null;
  return `device "${path}" (mode ${
    (node.mode & 0o777).toString(8)
  }, owner ${node.uid}:${node.gid}) ` +
    `cannot be opened ${want.write ? "read-write" : "for reading"} by uid ${who.uid}; ` +
    "a rootless container gets the host's node as it is: give your user access to it " +
    "(its group or a udev rule) or run trun as root";
}

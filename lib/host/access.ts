/**
 * Whether a user may open a file or create entries in a directory, decided
 * from its mode, owner and group the way the kernel's permission check does
 * for the owner/group/other classes (path_resolution(7); ACLs are not read).
 * Used for the device nodes trun and its helpers open (`/dev/net/tun`,
 * `/dev/fuse`) and for cgroup directories.
 */
import { octal, readText, statOrNull } from "./_files.ts";

/** The user a probe speaks for: uid and every group (primary and supplementary). */
export interface Who {
  /** User id. */
  uid: number;
  /** Primary and supplementary group ids. */
  groups: readonly number[];
}

/** A device node or file trun needs to open read-write. */
export interface DeviceAccess {
  /** The path, without the probe's `root` prefix. */
  path: string;
  /** Whether it exists. */
  exists: boolean;
  /** Permission bits as 4 octal digits (`"0666"`), or null when absent. */
  mode: string | null;
  /** Whether the probed user may open it read-write (by its mode, owner and groups). */
  accessible: boolean;
}

/** The stat fields the access checks read (a subset of Deno.FileInfo). */
export type Owned = { mode: number | null; uid: number | null; gid: number | null };

/** The rwx bits that apply to `who`: owner, else group (primary or supplementary), else other. */
function permBits(st: Owned, who: Who): number {
  const mode = st.mode ?? 0;
  if (st.uid === who.uid) return (mode >> 6) & 7;
  if (st.gid !== null && who.groups.includes(st.gid)) return (mode >> 3) & 7;
  return mode & 7;
}

/** Whether `who` may open a file with this stat read-write, by its mode bits (root always may). */
export function canReadWrite(st: Owned, who: Who): boolean {
  return who.uid === 0 || (permBits(st, who) & 6) === 6;
}

/** Whether `who` may open a file with this stat for reading and/or writing (root always may). */
export function canOpen(st: Owned, who: Who, want: { read: boolean; write: boolean }): boolean {
  const bits = (want.read ? 4 : 0) | (want.write ? 2 : 0);
  return who.uid === 0 || (permBits(st, who) & bits) === bits;
}

/** Whether `who` may create entries in a directory with this stat (write and search). */
export function canWriteDir(st: Owned, who: Who): boolean {
  return who.uid === 0 || (permBits(st, who) & 3) === 3;
}

/** Whether `path` (read under `root`) exists and `who` may open it read-write. */
export function deviceAccess(root: string, path: string, who: Who): DeviceAccess {
  const st = statOrNull(`${root}${path}`);
  return {
    path,
    exists: st !== null,
    mode: st ? octal(st.mode) : null,
    accessible: st !== null && canReadWrite(st, who),
  };
}

/** The calling process's supplementary groups, from proc(5) `/proc/self/status` under `root`. */
export function supplementaryGroups(root = ""): number[] {
  const status = readText(`${root}/proc/self/status`);
  const line = status?.split("\n").find((l) => l.startsWith("Groups:"));
  return line ? line.slice(7).trim().split(/\s+/).filter((s) => s).map(Number) : [];
}

/**
 * The mount table of proc(5) `/proc/PID/mountinfo`: which file system holds
 * a path (the store on NFS loses owners and xattrs) and where cgroup
 * hierarchies are mounted.
 */
import { readText } from "./_files.ts";

/** One line of /proc/PID/mountinfo (proc(5)). */
export interface MountEntry {
  /** The mount's root within its file system (cgroup namespaces make it non-`/`). */
  root: string;
  /** Where it is mounted. */
  mountPoint: string;
  /** File system type (`cgroup2`, `ext4`, `fuse.sshfs`). */
  fsType: string;
  /** Per-superblock options (for v1 cgroups: the controllers). */
  superOptions: string[];
}

/** Parses proc(5) mountinfo text; octal escapes (`\040`) in paths are decoded. */
export function parseMountInfo(text: string): MountEntry[] {
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    out.push({
      root: unescape(fields[3] ?? ""),
      mountPoint: unescape(fields[4] ?? ""),
      fsType: fields[dash + 1] ?? "",
      superOptions: (fields[dash + 3] ?? "").split(","),
    });
  }
  return out;
}

/** This process's mounts, from `/proc/self/mountinfo` under `root` (none when unreadable). */
export function readMountInfo(root = ""): MountEntry[] {
  return parseMountInfo(readText(`${root}/proc/self/mountinfo`) ?? "");
}

/** The type of the file system holding `path`: the last-mounted, longest matching mount point. */
export function filesystemOf(path: string, mounts: readonly MountEntry[]): string | null {
  let best: MountEntry | null = null;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const inside = mp === "/" || path === mp || path.startsWith(`${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best?.fsType ?? null;
}

/** The file system of `path`, or of its nearest existing ancestor (the store may not exist yet). */
export function filesystemOfPath(
  path: string | null,
  mounts: readonly MountEntry[],
): string | null {
  if (path === null) return null;
  for (let p = path; p !== "";) {
    try {
      return filesystemOf(Deno.realPathSync(p), mounts);
    } catch {
      const up = p.slice(0, p.lastIndexOf("/"));
      p = up === "" && p !== "/" ? "/" : up === p ? "" : up;
    }
  }
  return null;
}

/**
 * Which cgroup v2 directory is a container's own: the one recorded when it
 * was placed, or the one its first process is in, when nothing but the
 * container's own processes is in it. A cgroup shared with other
 * processes (trun's, the login session's) is never taken for the
 * container's: freezing or limiting it would hit them too.
 */
import { cgroup2Mount, parseOwnCgroup } from "../host/cgroup.ts";
import { parseMountInfo } from "../host/mountinfo.ts";
import { processesInPidNamespace } from "../engine/state.ts";

/** A container's own cgroup directory, or why it has none. */
export type CgroupLookup = { dir: string; why?: undefined } | { dir?: undefined; why: string };

function read(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** The pids listed in a cgroup's `cgroup.procs` (empty when it cannot be read). */
export function cgroupPids(dir: string): number[] {
  return (read(`${dir}/cgroup.procs`) ?? "").split("\n").filter((l) => l !== "").map(Number);
}

/** The cgroup2 mount point, read once per process (`ps` asks for each container). */
let mountPoint: string | null | undefined;

/** The cgroup v2 directory process `pid` is in (host path), or null when there is none. */
export function cgroupDirOf(pid: number, proc = "/proc"): string | null {
  const mount = mountPoint ??= cgroup2Mount(parseMountInfo(read(`${proc}/self/mountinfo`) ?? ""))
    ?.mountPoint ?? null;
  const path = parseOwnCgroup(read(`${proc}/${pid}/cgroup`) ?? "");
  if (mount === null || path === null) return null;
  return `${mount}${path === "/" ? "" : path.trimEnd()}`;
}

/**
 * Whether a cgroup holds only `members`: every pid in its `cgroup.procs`
 * (read before the members were listed) is one of them or has exited
 * since (`gone`), and there is at least one. Pure.
 */
export function holdsOnly(
  procs: readonly number[],
  members: ReadonlySet<number>,
  gone: (pid: number) => boolean = () => false,
): boolean {
  return procs.length > 0 && procs.every((p) => members.has(p) || gone(p));
}

/**
 * The own cgroup of a container whose first process is `pid` (running),
 * `recorded` being the directory the engine placed it in, if known.
 */
export function containerCgroup(pid: number, recorded?: string): CgroupLookup {
  if (recorded) {
    try {
      Deno.statSync(`${recorded}/cgroup.procs`);
      return { dir: recorded };
    } catch {
      // Gone (removed with a stopped container): look at the process.
    }
  }
  const dir = cgroupDirOf(pid);
  if (dir === null) {
    return { why: "there is no cgroup v2 hierarchy here (only cgroup v1, or none)" };
  }
  const at = dir.replace(/^\/sys\/fs\/cgroup(\/unified)?/, "") || "/";
  if (at === "/") return { why: "it runs in the root cgroup" };
  // The cgroup's list first: a process forked meanwhile is then in the
  // namespace's list, and one that exited meanwhile is gone.
  const procs = cgroupPids(dir);
  const members = new Set([pid, ...processesInPidNamespace(pid)]);
  const gone = (p: number) => read(`/proc/${p}/stat`) === null;
  if (!holdsOnly(procs, members, gone)) {
    return { why: `it shares the cgroup "${at}" with processes outside it` };
  }
  return { dir };
}

/**
 * The message for an operation that needs a container's own cgroup
 * (`pause`, `update` of a running container): what is missing and how a
 * host gets it.
 */
export function noCgroupMessage(what: string, why: string): string {
  return `${what}: the container has no cgroup of its own (${why}); trun gives each container ` +
    `one only where a cgroup v2 subtree is delegated to you: on a systemd host with cgroup v2, ` +
    `log in through systemd-logind or run "loginctl enable-linger $USER" (user@UID.service ` +
    `has Delegate=yes); a hybrid or v1 host needs systemd.unified_cgroup_hierarchy=1 on the ` +
    `kernel command line; "trun info" says what this host lacks`;
}

/**
 * Container state under the runtime root (`--root`; rootless
 * `$XDG_RUNTIME_DIR/trun/runtime`, root `/run/trun/runtime`): one directory
 * per container holding `state.json` (what `state` prints, plus the pid's
 * start time), `config.json` (the spec it was created from) and, between
 * `create` and `start`, the `exec.fifo` the container waits on.
 *
 * A pid alone can be reused after the container is gone: the start time
 * from /proc/PID/stat (field 22) is recorded with it and compared on every
 * look, so a reused pid is never mistaken for the container.
 */
import type { State } from "../spec/types.ts";
import { OCI_VERSION } from "../spec/types.ts";

/** What trun records about a container. */
export interface ContainerRecord {
  /** Container id. */
  id: string;
  /** Host pid of its first process (0 before it exists). */
  pid: number;
  /** That process's start time (clock ticks since boot, /proc/PID/stat field 22). */
  startTime: string;
  /** Absolute bundle directory. */
  bundle: string;
  /** Absolute root filesystem path. */
  rootfs?: string;
  /** The container's cgroup directory, when it has one of its own. */
  cgroup?: string;
  /** Creation time (RFC 3339). */
  created: string;
  /** Annotations of the config. */
  annotations: Record<string, string>;
  /** Namespace files of the container, by type, kept open by path (/proc/PID/ns/…). */
  namespaces: string[];
  /** Whether a new user namespace was made and how its maps were written. */
  userns: "none" | "single" | "subordinate" | "direct";
  /** Created with `--no-new-keyring`: its processes keep their caller's session keyring. */
  noNewKeyring?: boolean;
}

/** Container ids as runc accepts them. */
const ID_PATTERN = /^[\w+\-.]+$/;

/** Checks a container id (runc's rule: letters, digits, `_+-.`, not `.` or `..`). */
export function checkContainerId(id: string): void {
  if (!ID_PATTERN.test(id) || id === "." || id === "..") {
    throw new Error(`invalid container id "${id}": use letters, digits and _ + - . only`);
  }
}

/** The directory of container `id` under `root`. */
export function containerDir(root: string, id: string): string {
  checkContainerId(id);
  return `${root}/${id}`;
}

/** Fields 3 (state) and 22 (starttime) of /proc/PID/stat, or null when the process is gone. */
export function processStat(
  pid: number,
  proc = "/proc",
): { state: string; startTime: string } | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${proc}/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ")".
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = rest[0], startTime = rest[19];
  if (state === undefined || startTime === undefined) return null;
  return { state, startTime };
}

/** Whether the recorded process is still the container's (same pid and start time, not a zombie). */
export function isAlive(rec: Pick<ContainerRecord, "pid" | "startTime">, proc = "/proc"): boolean {
  if (rec.pid <= 0) return false;
  const st = processStat(rec.pid, proc);
  return st !== null && st.startTime === rec.startTime && st.state !== "Z" && st.state !== "X";
}

/** Reads a container's record, or null when it does not exist. */
export function readRecord(root: string, id: string): ContainerRecord | null {
  try {
    return JSON.parse(Deno.readTextFileSync(`${containerDir(root, id)}/state.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(
      `reading the state of container "${id}": ${e instanceof Error ? e.message : e}`,
    );
  }
}

/** Writes a container's record atomically (temporary file, then rename). */
export function writeRecord(root: string, rec: ContainerRecord): void {
  const dir = containerDir(root, rec.id);
  const tmp = `${dir}/.state.json.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(rec));
  Deno.renameSync(tmp, `${dir}/state.json`);
}

/** The path of the exec fifo of container `id`. */
export function execFifoPath(root: string, id: string): string {
  return `${containerDir(root, id)}/exec.fifo`;
}

/** The spec's status of a recorded container. */
export function statusOf(root: string, rec: ContainerRecord): State["status"] {
  if (rec.pid <= 0) return "creating";
  if (!isAlive(rec)) return "stopped";
  try {
    Deno.lstatSync(execFifoPath(root, rec.id));
    return "created";
  } catch {
    return rec.cgroup && cgroupFrozen(rec.cgroup) ? "paused" : "running";
  }
}

/** Whether a cgroup v2 directory reports `frozen 1` in its cgroup.events (runc's "paused"). */
function cgroupFrozen(dir: string): boolean {
  try {
    return /^frozen 1$/m.test(Deno.readTextFileSync(`${dir}/cgroup.events`));
  } catch {
    return false;
  }
}

/** The state document of a recorded container, as `runc state` prints it. */
export function stateOf(root: string, rec: ContainerRecord): State & Record<string, unknown> {
  const status = statusOf(root, rec);
  return {
    ociVersion: OCI_VERSION,
    id: rec.id,
    pid: status === "stopped" ? 0 : rec.pid,
    status,
    bundle: rec.bundle,
    rootfs: rec.rootfs ?? "",
    created: rec.created,
    owner: "",
    annotations: rec.annotations,
  };
}

/** The ids of all recorded containers under `root`. */
export function listIds(root: string): string[] {
  const ids: string[] = [];
  try {
    for (const e of Deno.readDirSync(root)) {
      if (e.isDirectory && ID_PATTERN.test(e.name)) ids.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return ids.sort();
}

/**
 * The host pids of the processes in the PID namespace of `pid` (for `kill
 * --all`, `ps` and `top`): those whose /proc/N/ns/pid names the same
 * namespace. Reading that link needs ptrace read access to N; a process
 * whose link cannot be read (EACCES: another user's, or one whose access
 * the kernel denies) is counted when it descends from `pid` by the parent
 * pids in /proc/N/stat, which anyone may read, so a container's own
 * children are never missed.
 */
export function processesInPidNamespace(pid: number, proc = "/proc"): number[] {
  const nsOf = (p: number | string): string | "gone" | "unreadable" => {
    try {
      return Deno.readLinkSync(`${proc}/${p}/ns/pid`);
    } catch (e) {
      return e instanceof Deno.errors.NotFound ? "gone" : "unreadable";
    }
  };
  const ns = nsOf(pid);
  if (ns === "gone") return [];
  const inside = new Set<number>([pid]);
  const unreadable: number[] = [];
  for (const e of Deno.readDirSync(proc)) {
    if (!/^\d+$/.test(e.name)) continue;
    const link = nsOf(e.name);
    if (link === "unreadable") unreadable.push(Number(e.name));
    else if (link === ns) inside.add(Number(e.name));
  }
  if (unreadable.length > 0) {
    const parents = new Map<number, number>();
    const parentOf = (p: number): number => {
      let ppid = parents.get(p);
      if (ppid === undefined) {
        ppid = parentPid(p, proc);
        parents.set(p, ppid);
      }
      return ppid;
    };
    for (const p of unreadable) {
      // Up the tree until the container, or the top (0); a cycle cannot
      // happen in a live tree, but a pid reused between reads is bounded.
      for (let q = parentOf(p), steps = 0; q > 0 && steps < 4096; q = parentOf(q), steps++) {
        if (q === pid) {
          inside.add(p);
          break;
        }
      }
    }
  }
  return [...inside].sort((a, b) => a - b);
}

/** Field 4 (ppid) of /proc/PID/stat, or 0 when the process is gone. */
function parentPid(pid: number, proc: string): number {
  try {
    const text = Deno.readTextFileSync(`${proc}/${pid}/stat`);
    return Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[1]) || 0;
  } catch {
    return 0;
  }
}

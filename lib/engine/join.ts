/**
 * Starting a process inside a running container's namespaces: `exec`, and
 * the createContainer and startContainer hooks, which the spec runs "in
 * the container namespace". The namespaces to join are those of the
 * container's first process that differ from trun's own (setns(2) into
 * one's own user namespace is refused), user namespace first.
 */
import {
  cloexecPipe,
  closeFd,
  FORK_RECORD_MARK,
  readFd,
  startChildProgram,
  waitChild,
} from "../../ffi/child_program.ts";
import { openPath } from "../../ffi/fs.ts";
import { O } from "../../ffi/syscalls.ts";
import type { NamespaceType } from "../spec/types.ts";
import type { ProcessConfig } from "./config.ts";
import type { SeccompPlan } from "./seccomp_config.ts";
import { ContainerStartError, explainFailure } from "./executor.ts";
import { type ConsoleFds, joinProgram, NAMESPACE_FILES } from "./program.ts";

/** The namespaces of `pid` that differ from this process's own, user first, mount last. */
export function namespacesToJoin(
  pid: number,
  proc = "/proc",
): { type: NamespaceType; path: string }[] {
  const order: NamespaceType[] = ["user", "ipc", "uts", "network", "pid", "cgroup", "mount"];
  const out: { type: NamespaceType; path: string }[] = [];
  for (const type of order) {
    const file = NAMESPACE_FILES[type];
    try {
      const theirs = Deno.readLinkSync(`${proc}/${pid}/ns/${file}`);
      const ours = Deno.readLinkSync(`${proc}/self/ns/${file}`);
      if (theirs !== ours) out.push({ type, path: `${proc}/${pid}/ns/${file}` });
    } catch {
      // The kernel has no such namespace type.
    }
  }
  return out;
}

/** Options of `spawnInContainer`. */
export interface SpawnInContainerOptions {
  /** The process. */
  process: ProcessConfig;
  /** Its executable candidates. */
  executables: string[];
  /** A connected console socket, with `process.terminal`. */
  consoleSocket?: number;
  /** A descriptor to make stdin. */
  stdinFd?: number;
  /** Keep trun's own identity (hooks). */
  keepPrivileges?: boolean;
  /** The container's cgroup directory, to join. */
  cgroup?: string;
  /** The container's session keyring (`sessionKeyringName`), to join. */
  sessionKeyring?: string;
  /** The container's seccomp filter. */
  seccomp?: SeccompPlan;
}

/**
 * Starts a process in the namespaces of container process `pid`; resolves
 * with its host pid once it has exec'd (it is then a child of this
 * process). Throws `ContainerStartError` when it could not.
 */
export async function spawnInContainer(
  pid: number,
  opts: SpawnInContainerOptions,
): Promise<number> {
  let setgroups = true;
  try {
    setgroups = Deno.readTextFileSync(`/proc/${pid}/setgroups`).trim() !== "deny";
  } catch {
    // No user namespace of its own.
  }
  const [errRead, errWrite] = cloexecPipe();
  const held = [errWrite];
  try {
    const namespaces = namespacesToJoin(pid).map((j) => {
      const fd = openPath(j.path, O.RDONLY | O.CLOEXEC, `opening the ${j.type} namespace`);
      held.push(fd);
      return { type: j.type, fd };
    });
    let console: ConsoleFds | undefined;
    if (opts.process.terminal) {
      if (opts.consoleSocket === undefined) {
        throw new ContainerStartError("a terminal needs a console socket", 125);
      }
      const slot = openPath("/dev/null", O.RDONLY | O.CLOEXEC, "reserving a descriptor");
      held.push(slot);
      console = { socket: opts.consoleSocket, slot };
    }
    let cgroupProcs: number | undefined;
    if (opts.cgroup) {
      cgroupProcs = openPath(
        `${opts.cgroup}/cgroup.procs`,
        O.WRONLY | O.CLOEXEC,
        `opening the container's cgroup "${opts.cgroup}"`,
      );
      held.push(cgroupProcs);
    }
    const ops = joinProgram({
      process: opts.process,
      executables: opts.executables,
      namespaces,
      errFd: errWrite,
      ...(console ? { console } : {}),
      setgroups,
      ...(opts.stdinFd !== undefined ? { stdinFd: opts.stdinFd } : {}),
      ...(opts.keepPrivileges ? { keepPrivileges: true } : {}),
      ...(cgroupProcs !== undefined ? { cgroupProcs } : {}),
      ...(opts.sessionKeyring !== undefined ? { sessionKeyring: opts.sessionKeyring } : {}),
      ...(opts.seccomp ? { seccomp: opts.seccomp } : {}),
    });
    // A plain fork: setns(2) into a user namespace refuses a process that
    // shares its memory with another.
    const child = startChildProgram(ops, { cloneFlags: 0, errFd: errWrite });
    for (const fd of held.splice(0)) closeFd(fd);
    try {
      // First the middle process's {-2, pid}; then EOF (exec'd) or a failure.
      const first = await readFd(errRead, 16);
      const middle = await waitChild(child.pid);
      const view = new DataView(first.buffer, first.byteOffset, first.length);
      if (first.length !== 16 || view.getBigInt64(0, true) !== FORK_RECORD_MARK) {
        if (first.length === 16) {
          throw explainFailure(child.decodeFailure(first), opts.process.args, undefined);
        }
        const how = middle.exited ? `exit status ${middle.code}` : `signal ${middle.signal}`;
        throw new ContainerStartError(`joining the container failed (${how})`, 125);
      }
      const started = Number(view.getBigInt64(8, true));
      const second = await readFd(errRead, 16);
      if (second.length === 16) {
        await waitChild(started);
        throw explainFailure(child.decodeFailure(second), opts.process.args, undefined);
      }
      return started;
    } finally {
      child.release();
    }
  } finally {
    for (const fd of held) closeFd(fd);
    closeFd(errRead);
  }
}

/**
 * The executor: starts the container a `ContainerPlan` describes and waits
 * for it. One linear orchestrator; each step is named, and the comments give
 * the ordering reasons. Everything it runs in the child was decided by the
 * pure compiler in `child_program.ts`.
 */
import {
  type ChildFailure,
  cloexecPipe,
  closeFd,
  readFd,
  signalProcess,
  startChildProgram,
  waitChild,
  writeFd,
} from "../../ffi/child_program.ts";
import { describeErrno, Errno } from "../../ffi/errno.ts";
import { CLONE, SIGNALS } from "../../ffi/syscalls.ts";
import { writeIdMaps } from "./idmap.ts";
import { compileChildProgram } from "./child_program.ts";
import { openPty } from "../../ffi/pty.ts";
import { prepareTty, startTtyRelay, type TtyRelay } from "./tty_relay.ts";
import type { ContainerPlan } from "./plan.ts";

/** A container that could not start; `exitCode` follows Docker (125, 126, 127). */
export class ContainerStartError extends Error {
  /** 125: trun failed; 126: cannot execute; 127: command not found. */
  readonly exitCode: number;
  /** Builds the error. */
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = "ContainerStartError";
    this.exitCode = exitCode;
  }
}

/** Signals trun passes on to the container, as `docker run` does (sig-proxy). */
export const FORWARDED_SIGNALS = [
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
] as const;

/** Timings of the steps of one start, in milliseconds (for `--debug` and the benchmark). */
export interface StartTimings {
  clone: number;
  idMaps: number;
  exec: number;
}

/** Options of `runContainer`. */
export interface RunOptions {
  /** Receives step timings once the process has exec'd. */
  onStarted?: (t: StartTimings) => void;
}

/** The namespaces to clone for the plan. */
export function cloneFlagsFor(plan: ContainerPlan): number {
  return CLONE.NEWNS | CLONE.NEWPID | CLONE.NEWUTS | CLONE.NEWIPC |
    (plan.namespaces.user ? CLONE.NEWUSER : 0) | (plan.namespaces.net ? CLONE.NEWNET : 0);
}

/** Turns the child's failure record into Docker's exit code and a message a user can act on. */
export function explainFailure(f: ChildFailure, plan: ContainerPlan): ContainerStartError {
  const { op, errno } = f;
  if (op.call === "execve") {
    const argv0 = plan.process.args[0] ?? "";
    if (errno === Errno.ENOENT || errno === Errno.ENOTDIR) {
      const why = argv0.includes("/")
        ? "no such file or directory"
        : "executable file not found in $PATH";
      return new ContainerStartError(`exec: "${argv0}": ${why}`, 127);
    }
    if (errno === Errno.EACCES) {
      return new ContainerStartError(`exec: "${argv0}": permission denied`, 126);
    }
    if (errno === Errno.ENOEXEC) {
      return new ContainerStartError(`exec: "${argv0}": exec format error`, 126);
    }
    return new ContainerStartError(`exec: "${argv0}": ${describeErrno(errno)}`, 126);
  }
  let hint = "";
  if (errno === Errno.ELOOP && op.call === "openat2") {
    hint = ": the image has a symlink on this path, and trun does not mount through symlinks";
  } else if (errno === Errno.EINVAL && (op.call === "setresuid" || op.call === "setresgid")) {
    hint = plan.idMapping.mode === "single"
      ? ": only root is mapped in a single-id mapping; add a subordinate range to /etc/subuid and /etc/subgid"
      : ": the id is outside the user namespace's mapping";
  } else if (op.call === "chdir" && op.step.includes("working directory")) {
    return new ContainerStartError(
      `${op.step}: ${describeErrno(errno)}`,
      errno === Errno.EACCES ? 126 : 125,
    );
  }
  return new ContainerStartError(`${op.step}: ${describeErrno(errno)}${hint}`, 125);
}

/** The exit status Docker reports: the code, or 128 + signal. */
function exitCodeOf(s: { exited: true; code: number } | { exited: false; signal: number }): number {
  return s.exited ? s.code : 128 + s.signal;
}

/**
 * Starts the container and waits for it; returns its exit status. Throws
 * `ContainerStartError` when it could not start.
 */
export async function runContainer(plan: ContainerPlan, opts: RunOptions = {}): Promise<number> {
  // The scratch dir is only a mount point: the child mounts a tmpfs on it in
  // its own mount namespace, so it is empty on the host at all times.
  await Deno.mkdir(plan.rootfs.scratch, { recursive: true, mode: 0o700 });
  const [syncRead, syncWrite] = cloexecPipe();
  const [errRead, errWrite] = cloexecPipe();
  let child: ReturnType<typeof startChildProgram> | undefined;
  const listeners: [Deno.Signal, () => void][] = [];
  // -t: the pty is opened here so the child inherits its slave at clone.
  const pty = plan.process.tty ? openPty() : undefined;
  let relay: TtyRelay | undefined;
  try {
    if (pty) prepareTty(pty.master);
    const ops = compileChildProgram(plan, { syncRead, ...(pty ? { ttySlave: pty.slave } : {}) });
    const t0 = performance.now();
    child = startChildProgram(ops, {
      cloneFlags: cloneFlagsFor(plan),
      errFd: errWrite,
      shareMemory: true,
    });
    const pid = child.pid;
    const t1 = performance.now();
    closeFd(syncRead);
    closeFd(errWrite);
    // The container holds the only slave now: its exit ends the relay (EIO).
    if (pty) closeFd(pty.slave);

    // The maps must exist before the child does anything as root in its
    // namespace; it waits on the sync pipe until then.
    try {
      await writeIdMaps(pid, plan.idMapping);
    } catch (e) {
      signalProcess(pid, SIGNALS.SIGKILL!);
      await waitChild(pid);
      throw e;
    }
    const t2 = performance.now();

    // Forward signals from here on: the child is ours to signal even before
    // it has exec'd (a signal then is handled after execve).
    for (const name of FORWARDED_SIGNALS) {
      const handler = () => signalProcess(pid, SIGNALS[name]!);
      Deno.addSignalListener(name, handler);
      listeners.push([name, handler]);
    }
    writeFd(syncWrite, new Uint8Array([1]));
    closeFd(syncWrite);

    // EOF on the error pipe: execve closed it (O_CLOEXEC), the command runs.
    const record = await readFd(errRead, 16);
    closeFd(errRead);
    const t3 = performance.now();
    if (record.length === 16) {
      const failure = child.decodeFailure(record);
      await waitChild(pid);
      throw explainFailure(failure, plan);
    }
    opts.onStarted?.({ clone: t1 - t0, idMaps: t2 - t1, exec: t3 - t2 });
    if (pty) relay = startTtyRelay(pty.master, { forwardStdin: plan.process.keepStdin });
    const status = await waitChild(pid);
    // Everything the container wrote before it exited still goes out.
    await relay?.output;
    return exitCodeOf(status);
  } finally {
    relay?.stop();
    if (pty) {
      closeFd(pty.master);
      closeFd(pty.slave);
    }
    for (const [name, handler] of listeners) Deno.removeSignalListener(name, handler);
    child?.release();
    for (const path of plan.cleanup) await Deno.remove(path, { recursive: true }).catch(() => {});
  }
}

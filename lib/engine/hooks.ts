/**
 * OCI lifecycle hooks (runtime-spec config.md, "POSIX-platform Hooks"):
 * each hook gets the container's state as JSON on stdin and is killed
 * after its `timeout`. prestart, createRuntime, poststart and poststop run
 * in the runtime's namespaces; createContainer and startContainer run in
 * the container's, entered like `exec` (with the runtime's privileges).
 */
import {
  cloexecPipe,
  closeFd,
  execTail,
  type ExitStatus,
  readFd,
  signalProcess,
  startChildProgram,
  waitChild,
  writeFd,
} from "../../ffi/child_program.ts";
import { SIGNALS } from "../../ffi/syscalls.ts";
import type { Hook, State } from "../spec/types.ts";
import { exitCodeOf } from "./executor.ts";
import { spawnInContainer } from "./join.ts";

/** A hook that failed; the message names the kind, the path and why. */
export class HookError extends Error {
  /** Builds the error. */
  constructor(kind: string, hook: Hook, why: string) {
    super(`${kind} hook "${hook.path}" failed: ${why}`);
    this.name = "HookError";
  }
}

/**
 * Runs one program in a session of its own with `input` on stdin; kills the
 * whole session after `timeoutSeconds` (a hook's own children included,
 * which would otherwise hold its pipes open). Resolves with how it ended
 * and what it wrote to stderr (the first 4 KiB).
 */
async function runInOwnSession(
  path: string,
  argv: string[],
  env: string[],
  input: string,
  timeoutSeconds: number | undefined,
): Promise<{ status: ExitStatus; timedOut: boolean; stderr: string }> {
  const [inRead, inWrite] = cloexecPipe();
  const [errRead, errWrite] = cloexecPipe();
  const [failRead, failWrite] = cloexecPipe();
  let pid: number;
  try {
    const child = startChildProgram([
      { call: "setsid", args: [], step: "starting a session for the hook" },
      { call: "dup2", args: [inRead, 0], step: "giving the hook its stdin" },
      { call: "dup2", args: [errWrite, 2], step: "giving the hook its stderr" },
      ...execTail({ paths: [path], argv, env, closeFds: true }),
    ], { cloneFlags: 0, errFd: failWrite, vfork: true });
    child.release();
    pid = child.pid;
  } finally {
    closeFd(inRead);
    closeFd(errWrite);
    closeFd(failWrite);
  }
  const failed = await readFd(failRead, 16);
  closeFd(failRead);
  try {
    writeFd(inWrite, new TextEncoder().encode(input));
  } catch {
    // The hook need not read its stdin.
  } finally {
    closeFd(inWrite);
  }
  let timedOut = false;
  const timer = timeoutSeconds
    ? setTimeout(() => {
      timedOut = true;
      signalProcess(-pid, SIGNALS.SIGKILL);
    }, timeoutSeconds * 1000)
    : undefined;
  const [status, err] = await Promise.all([waitChild(pid), readFd(errRead, 4096)]);
  clearTimeout(timer);
  closeFd(errRead);
  // Whatever the hook left in its session goes with it.
  signalProcess(-pid, SIGNALS.SIGKILL);
  const stderr = failed.length === 16
    ? `cannot execute "${path}"`
    : new TextDecoder().decode(err).trim();
  return { status, timedOut, stderr };
}

/** Runs hooks of `kind` in the runtime's namespaces, in order; the first failure throws. */
export async function runHooks(kind: string, hooks: readonly Hook[], state: State): Promise<void> {
  for (const h of hooks) {
    const r = await runInOwnSession(
      h.path,
      h.args ?? [h.path],
      h.env ?? [],
      JSON.stringify(state),
      h.timeout,
    );
    if (r.timedOut) throw new HookError(kind, h, `killed after its ${h.timeout} s timeout`);
    const code = exitCodeOf(r.status);
    if (code !== 0) {
      throw new HookError(kind, h, `exit status ${code}${r.stderr ? `: ${r.stderr}` : ""}`);
    }
  }
}

/**
 * Runs hooks of `kind` inside the namespaces of container process `pid`
 * (the path resolves there), in order; the first failure throws.
 */
export async function runHooksInContainer(
  kind: string,
  hooks: readonly Hook[],
  state: State,
  pid: number,
): Promise<void> {
  for (const h of hooks) {
    const [stdinRead, stdinWrite] = cloexecPipe();
    let started: number;
    try {
      started = await spawnInContainer(pid, {
        process: {
          args: h.args ?? [h.path],
          env: h.env ?? [],
          cwd: "/",
          uid: 0,
          gid: 0,
          additionalGids: [],
          terminal: false,
          capabilities: {
            bounding: [],
            effective: [],
            inheritable: [],
            permitted: [],
            ambient: [],
          },
          rlimits: [],
          noNewPrivileges: false,
        },
        executables: [h.path],
        stdinFd: stdinRead,
        keepPrivileges: true,
      });
    } catch (e) {
      closeFd(stdinWrite);
      throw new HookError(kind, h, e instanceof Error ? e.message : String(e));
    } finally {
      closeFd(stdinRead);
    }
    try {
      writeFd(stdinWrite, new TextEncoder().encode(JSON.stringify(state)));
    } catch {
      // The hook need not read its stdin.
    } finally {
      closeFd(stdinWrite);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    if (h.timeout) {
      timer = setTimeout(() => {
        timedOut = true;
        signalProcess(started, SIGNALS.SIGKILL);
      }, h.timeout * 1000);
    }
    const status = await waitChild(started);
    clearTimeout(timer);
    if (timedOut) throw new HookError(kind, h, `killed after its ${h.timeout} s timeout`);
    if (exitCodeOf(status) !== 0) {
      throw new HookError(kind, h, `exit status ${exitCodeOf(status)}`);
    }
  }
}

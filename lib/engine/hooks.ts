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
  signalProcess,
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

function envObject(env: readonly string[]): Record<string, string> {
  return Object.fromEntries(env.map((e) => {
    const i = e.indexOf("=");
    return i < 0 ? [e, ""] : [e.slice(0, i), e.slice(i + 1)];
  }));
}

/** Runs hooks of `kind` in the runtime's namespaces, in order; the first failure throws. */
export async function runHooks(kind: string, hooks: readonly Hook[], state: State): Promise<void> {
  for (const h of hooks) {
    const signal = h.timeout ? AbortSignal.timeout(h.timeout * 1000) : undefined;
    let result: Deno.CommandOutput;
    try {
      const child = new Deno.Command(h.path, {
        args: (h.args ?? [h.path]).slice(1),
        env: envObject(h.env ?? []),
        clearEnv: true,
        stdin: "piped",
        stdout: "inherit",
        stderr: "piped",
        ...(signal ? { signal } : {}),
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(JSON.stringify(state))).catch(() => {});
      await w.close().catch(() => {});
      result = await child.output();
    } catch (e) {
      throw new HookError(kind, h, e instanceof Error ? e.message : String(e));
    }
    if (!result.success) {
      const why = result.signal
        ? `killed by ${result.signal}${signal?.aborted ? ` after its ${h.timeout} s timeout` : ""}`
        : `exit status ${result.code}`;
      const err = new TextDecoder().decode(result.stderr).trim();
      throw new HookError(kind, h, `${why}${err ? `: ${err}` : ""}`);
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

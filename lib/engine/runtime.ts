/**
 * The OCI runtime operations with runc's semantics: create, start, state,
 * kill, delete, run, exec, ps, list. `lib/cli/runtime.ts` maps runc's
 * command line onto these; Podman and conmon drive them through it.
 *
 * create leaves the container's first process blocked before execve on
 * the exec fifo; start opens the fifo, which lets it exec. The first
 * process is a child of the creating trun, which exits: the process is
 * then reparented to the caller's subreaper (conmon) or init, which reaps
 * it. State lives in `state.ts`.
 */
import {
  cloexecPipe,
  closeFd,
  readFd,
  signalProcess,
  startChildProgram,
  waitChild,
} from "../../ffi/child_program.ts";
import { Errno } from "../../ffi/errno.ts";
import { makeFifo, openPath, readNow } from "../../ffi/fs.ts";
import { connectUnix, receiveFd, socketPair } from "../../ffi/socket.ts";
import { O, SIGNALS } from "../../ffi/syscalls.ts";
import { resolveEntry } from "../runtime/rootfs_files.ts";
import type { Hook, NamespaceType, State } from "../spec/types.ts";
import { type ContainerConfig, containerConfig, processConfig } from "./config.ts";
import {
  ContainerStartError,
  executablesOf,
  exitCodeOf,
  explainFailure,
  launch,
} from "./executor.ts";
import { joinProgram, NAMESPACE_FILES } from "./program.ts";
import {
  containerDir,
  type ContainerRecord,
  execFifoPath,
  isAlive,
  processesInPidNamespace,
  processStat,
  readRecord,
  stateOf,
  statusOf,
  writeRecord,
} from "./state.ts";
import { prepareTty, startTtyRelay } from "./tty_relay.ts";

/** A runtime error with runc's exit status (1 unless said otherwise). */
export class RuntimeError extends Error {
  /** Exit status. */
  readonly exitCode: number;
  /** Builds the error. */
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "RuntimeError";
    this.exitCode = exitCode;
  }
}

function mustRecord(root: string, id: string): ContainerRecord {
  const rec = readRecord(root, id);
  if (!rec) throw new RuntimeError("container does not exist");
  return rec;
}

/** The state of container `id`. */
export function containerState(root: string, id: string): State & Record<string, unknown> {
  return stateOf(root, mustRecord(root, id));
}

/** Reads and checks `<bundle>/config.json`. */
export function loadBundle(
  bundle: string,
): { spec: Record<string, unknown>; config: ContainerConfig } {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${bundle}/config.json`);
  } catch (e) {
    throw new RuntimeError(
      `reading "${bundle}/config.json": ${e instanceof Error ? e.message : e}: is --bundle right?`,
    );
  }
  let spec: Record<string, unknown>;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    throw new RuntimeError(
      `"${bundle}/config.json" is not valid JSON: ${e instanceof Error ? e.message : e}`,
    );
  }
  return { spec, config: containerConfig(spec, bundle) };
}

/**
 * Runs hooks of one kind in the runtime's namespaces, each with the state
 * on stdin and its timeout; the first failure throws (createRuntime,
 * prestart) or is returned as a warning (poststart, poststop).
 */
export async function runHooks(kind: string, hooks: readonly Hook[], state: State): Promise<void> {
  for (const h of hooks) {
    const signal = h.timeout ? AbortSignal.timeout(h.timeout * 1000) : undefined;
    const cmd = new Deno.Command(h.path, {
      args: (h.args ?? [h.path]).slice(1),
      env: Object.fromEntries((h.env ?? []).map((e) => {
        const i = e.indexOf("=");
        return i < 0 ? [e, ""] : [e.slice(0, i), e.slice(i + 1)];
      })),
      clearEnv: true,
      stdin: "piped",
      stdout: "inherit",
      stderr: "piped",
      ...(signal ? { signal } : {}),
    });
    let result: Deno.CommandOutput;
    try {
      const child = cmd.spawn();
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(JSON.stringify(state))).catch(() => {});
      await w.close().catch(() => {});
      result = await child.output();
    } catch (e) {
      throw new RuntimeError(`${kind} hook "${h.path}": ${e instanceof Error ? e.message : e}`);
    }
    if (!result.success) {
      const why = result.signal
        ? `killed by ${result.signal}${signal?.aborted ? " (timeout)" : ""}`
        : `exit status ${result.code}`;
      const err = new TextDecoder().decode(result.stderr).trim();
      throw new RuntimeError(`${kind} hook "${h.path}" failed (${why})${err ? `: ${err}` : ""}`);
    }
  }
}

/** Refuses hooks that must run inside the container's namespaces (not implemented yet). */
function refuseInContainerHooks(c: ContainerConfig): void {
  for (const k of ["createContainer", "startContainer"] as const) {
    if (c.hooks[k].length > 0) {
      throw new RuntimeError(
        `config.json: hooks.${k}: hooks inside the container's namespaces are not supported yet`,
      );
    }
  }
}

/**
 * runc's LookPath at create: the executable must exist in the root, so a
 * missing command fails `create` (exit 127) rather than the later `start`.
 */
function checkExecutable(c: ContainerConfig): void {
  const argv0 = c.process.args[0]!;
  const found = executablesOf(c).some((p) => {
    const e = resolveEntry([c.rootPath], p);
    return e.kind === "file" || e.kind === "other";
  });
  if (!found) {
    const why = argv0.includes("/")
      ? `stat ${argv0}: no such file or directory`
      : "executable file not found in $PATH";
    throw new ContainerStartError(`exec: "${argv0}": ${why}`, 127);
  }
}

function writePidFile(path: string | undefined, pid: number): void {
  if (!path) return;
  // conmon reads it with atoi() at once: no newline, written whole.
  const tmp = `${path}.trun-tmp`;
  Deno.writeTextFileSync(tmp, String(pid));
  Deno.renameSync(tmp, path);
}

/** Options of `create`. */
export interface CreateOptions {
  /** Bundle directory. */
  bundle: string;
  /** `--pid-file`. */
  pidFile?: string;
  /** `--console-socket`. */
  consoleSocket?: string;
}

/** `create`: makes the container and leaves its process waiting for `start`; returns its pid. */
export async function create(root: string, id: string, opts: CreateOptions): Promise<number> {
  const bundle = Deno.realPathSync(opts.bundle);
  const { spec, config } = loadBundle(bundle);
  refuseInContainerHooks(config);
  checkExecutable(config);
  const dir = containerDir(root, id);
  Deno.mkdirSync(root, { recursive: true, mode: 0o711 });
  try {
    Deno.mkdirSync(dir, { mode: 0o711 });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new RuntimeError(`container "${id}" already exists`);
    }
    throw e;
  }
  let consoleFd: number | undefined;
  try {
    Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify(spec));
    const rec: ContainerRecord = {
      id,
      pid: 0,
      startTime: "",
      bundle,
      created: new Date().toISOString(),
      annotations: config.annotations,
      namespaces: config.newNamespaces,
      userns: "none",
    };
    writeRecord(root, rec);
    makeFifo(execFifoPath(root, id), 0o622);
    if (config.process.terminal) {
      if (!opts.consoleSocket) throw new RuntimeError("process.terminal needs --console-socket");
      consoleFd = connectUnix(opts.consoleSocket);
    }
    const hooksBefore = [...config.hooks.createRuntime, ...config.hooks.prestart];
    const launched = await launch({
      config,
      rootfs: { kind: "path" },
      ...(consoleFd !== undefined ? { consoleSocket: consoleFd } : {}),
      stdinNull: false,
      execFifoPath: execFifoPath(root, id),
      dieWithParent: false,
      beforeMounts: async (pid) => {
        if (hooksBefore.length === 0) return;
        const state = { ...stateOf(root, { ...rec, pid }), status: "creating" as const, pid };
        await runHooks("createRuntime", hooksBefore, state);
      },
    });
    // Created: this process exits and leaves the container to whoever
    // reaps orphans here (conmon as subreaper, or init).
    rec.pid = launched.pid;
    rec.startTime = processStat(launched.pid)?.startTime ?? "";
    rec.userns = launched.mapping?.mode === "host" || !launched.mapping
      ? "none"
      : launched.mapping.mode;
    writeRecord(root, rec);
    writePidFile(opts.pidFile, launched.pid);
    return launched.pid;
  } catch (e) {
    Deno.removeSync(dir, { recursive: true });
    throw e;
  } finally {
    if (consoleFd !== undefined) closeFd(consoleFd);
  }
}

/** `start`: lets a created container's process exec. */
export async function start(root: string, id: string): Promise<void> {
  const rec = mustRecord(root, id);
  const status = statusOf(root, rec);
  if (status !== "created") throw new RuntimeError(`cannot start a container that is ${status}`);
  const fifo = execFifoPath(root, id);
  // Non-blocking, so a container that died meanwhile cannot hang us: the
  // child's blocked open for writing completes once we hold the read end.
  const fd = openPath(fifo, O.RDONLY | O.NONBLOCK | O.CLOEXEC, `opening "${fifo}"`);
  try {
    for (let i = 0;; i++) {
      const got = readNow(fd, 1);
      if (got && got.length > 0) break;
      if (!isAlive(rec)) throw new RuntimeError("the container exited before it started");
      if (i > 10000) {
        throw new RuntimeError("the container did not take the start signal within 10 s");
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  } finally {
    closeFd(fd);
  }
  Deno.removeSync(fifo);
  const config = JSON.parse(Deno.readTextFileSync(`${containerDir(root, id)}/config.json`));
  const hooks = containerConfig(config, rec.bundle).hooks.poststart;
  if (hooks.length > 0) {
    await runHooks("poststart", hooks, stateOf(root, rec)).catch((e) =>
      console.error(`trun: warning: ${e.message}`)
    );
  }
}

/** Parses a signal given as a number, `KILL` or `SIGKILL`. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1 || n > 64) throw new RuntimeError(`invalid signal "${text}"`);
    return n;
  }
  const name = text.toUpperCase().startsWith("SIG")
    ? text.toUpperCase()
    : `SIG${text.toUpperCase()}`;
  const n = (SIGNALS as Readonly<Record<string, number | undefined>>)[name];
  if (n === undefined) throw new RuntimeError(`invalid signal "${text}"`);
  return n;
}

/** `kill`: sends `signal` to the container's process (`all`: every process in its PID namespace). */
export function kill(root: string, id: string, signal: number, all: boolean): void {
  const rec = mustRecord(root, id);
  if (statusOf(root, rec) === "stopped") throw new RuntimeError("container not running");
  const pids = all ? processesInPidNamespace(rec.pid) : [rec.pid];
  for (const pid of pids.length > 0 ? pids : [rec.pid]) signalProcess(pid, signal);
}

/** `delete`: removes a stopped container (`force`: kills it first). */
export async function remove(root: string, id: string, force: boolean): Promise<void> {
  const rec = readRecord(root, id);
  if (!rec) {
    if (force) return;
    throw new RuntimeError("container does not exist");
  }
  const status = statusOf(root, rec);
  if (status !== "stopped" && status !== "creating") {
    if (!force) {
      throw new RuntimeError(`cannot delete container ${id} that is not stopped: ${status}`);
    }
    for (const pid of [rec.pid, ...processesInPidNamespace(rec.pid)]) {
      signalProcess(pid, SIGNALS.SIGKILL);
    }
    // PID 1 of the namespace going takes every other process with it.
    for (let i = 0; isAlive(rec) && i < 10000; i++) await new Promise((r) => setTimeout(r, 1));
  }
  let hooks: Hook[] = [];
  try {
    const config = JSON.parse(Deno.readTextFileSync(`${containerDir(root, id)}/config.json`));
    hooks = containerConfig(config, rec.bundle).hooks.poststop;
  } catch {
    // A half-created container has no readable config: nothing to run.
  }
  const state = stateOf(root, rec);
  Deno.removeSync(containerDir(root, id), { recursive: true });
  if (hooks.length > 0) {
    await runHooks("poststop", hooks, state).catch((e) =>
      console.error(`trun: warning: ${e.message}`)
    );
  }
}

/** Options of `run`. */
export interface RunOptions extends CreateOptions {
  /** `--detach`: return once started. */
  detach: boolean;
}

/** `run`: create + start, then (without `detach`) wait and delete; returns the exit status. */
export async function run(root: string, id: string, opts: RunOptions): Promise<number> {
  const { config } = loadBundle(Deno.realPathSync(opts.bundle));
  if (config.process.terminal && !opts.consoleSocket) {
    throw new RuntimeError(
      "process.terminal needs --console-socket (trun does not relay a terminal for run yet)",
    );
  }
  const pid = await create(root, id, opts);
  await start(root, id);
  if (opts.detach) return 0;
  const status = await waitChild(pid);
  await remove(root, id, true);
  return exitCodeOf(status);
}

/** Options of `exec`. */
export interface ExecOptions {
  /** The process (an OCI `process` object). */
  process: unknown;
  /** `--detach`. */
  detach: boolean;
  /** `--pid-file`. */
  pidFile?: string;
  /** `--console-socket`. */
  consoleSocket?: string;
}

/** The namespaces of `pid` that differ from this process's own, user first. */
function namespacesToJoin(pid: number): { type: NamespaceType; path: string }[] {
  const order: NamespaceType[] = ["user", "ipc", "uts", "network", "pid", "cgroup", "mount"];
  const out: { type: NamespaceType; path: string }[] = [];
  for (const type of order) {
    const file = NAMESPACE_FILES[type];
    try {
      const theirs = Deno.readLinkSync(`/proc/${pid}/ns/${file}`);
      const ours = Deno.readLinkSync(`/proc/self/ns/${file}`);
      if (theirs !== ours) out.push({ type, path: `/proc/${pid}/ns/${file}` });
    } catch {
      // The kernel has no such namespace type.
    }
  }
  return out;
}

/** `exec`: runs a process in a running container; returns its exit status (0 with `detach`). */
export async function exec(root: string, id: string, opts: ExecOptions): Promise<number> {
  const rec = mustRecord(root, id);
  const status = statusOf(root, rec);
  if (status !== "running" && status !== "created") {
    throw new RuntimeError(`cannot exec in a ${status} container`);
  }
  const proc = processConfig(opts.process);
  const executables = executablesOf({ process: proc } as ContainerConfig);
  const joins = namespacesToJoin(rec.pid);
  let setgroups = true;
  try {
    setgroups = Deno.readTextFileSync(`/proc/${rec.pid}/setgroups`).trim() !== "deny";
  } catch {
    // No user namespace of its own.
  }
  const held: number[] = [];
  const [errRead, errWrite] = cloexecPipe();
  held.push(errRead, errWrite);
  let pair: [number, number] | undefined;
  try {
    const namespaces = joins.map((j) => {
      const fd = openPath(j.path, O.RDONLY | O.CLOEXEC, `opening the ${j.type} namespace`);
      held.push(fd);
      return { type: j.type, fd };
    });
    let console: { socket: number; slot: number } | undefined;
    if (proc.terminal) {
      let socket: number;
      if (opts.consoleSocket) socket = connectUnix(opts.consoleSocket);
      else {
        pair = socketPair();
        socket = pair[1];
      }
      held.push(socket);
      const slot = openPath("/dev/null", O.RDONLY | O.CLOEXEC, "reserving a descriptor");
      held.push(slot);
      console = { socket, slot };
    }
    const ops = joinProgram({
      process: proc,
      executables,
      namespaces,
      ...(console ? { console } : {}),
      setgroups,
    });
    const child = startChildProgram(ops, { cloneFlags: 0, errFd: errWrite });
    for (const fd of held.splice(0)) if (fd !== errRead) closeFd(fd);
    held.push(errRead);
    const master = pair ? receiveFd(pair[0]) : undefined;
    // First record: the middle process's {-2, pid}; then EOF (exec'd) or a failure.
    const first = await readFd(errRead, 16);
    const middle = await waitChild(child.pid);
    const view = new DataView(first.buffer, first.byteOffset, first.length);
    if (first.length !== 16 || view.getBigInt64(0, true) !== -2n) {
      child.release();
      if (first.length === 16) {
        throw explainFailure(child.decodeFailure(first), proc.args, undefined);
      }
      throw new RuntimeError(
        `joining the container failed (${
          middle.exited ? `exit ${middle.code}` : `signal ${middle.signal}`
        })`,
      );
    }
    const pid = Number(view.getBigInt64(8, true));
    const second = await readFd(errRead, 16);
    child.release();
    if (second.length === 16) {
      await waitChild(pid);
      throw explainFailure(child.decodeFailure(second), proc.args, undefined);
    }
    writePidFile(opts.pidFile, pid);
    if (opts.detach) return 0;
    let relay;
    if (master) {
      const m = await master;
      if (m !== null) {
        prepareTty(m);
        relay = startTtyRelay(m, { forwardStdin: true });
      }
    }
    const s = await waitChild(pid);
    await relay?.output;
    relay?.stop();
    return exitCodeOf(s);
  } finally {
    for (const fd of held) closeFd(fd);
    if (pair) { for (const fd of pair) closeFd(fd); }
  }
}

/** The pids in the container (host numbering). */
export function containerPids(root: string, id: string): number[] {
  const rec = mustRecord(root, id);
  if (statusOf(root, rec) === "stopped") return [];
  const pids = processesInPidNamespace(rec.pid);
  return pids.length > 0 ? pids : [rec.pid];
}

/** The `ENOENT` errno, re-exported for callers that map it. */
export const ENOENT = Errno.ENOENT;

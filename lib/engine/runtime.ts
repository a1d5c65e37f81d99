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
import { trace } from "../util/trace.ts";
import { closeFd, signalProcess, waitChild } from "../../ffi/child_program.ts";
import { makeFifo, openPath, readNow, statBasic } from "../../ffi/fs.ts";
import { connectUnix, receiveFd, socketPair } from "../../ffi/socket.ts";
import { O, SIGNALS } from "../../ffi/syscalls.ts";
import {
  exeSealNeeded,
  hasOwnUserNamespace,
  reexecSealed,
  sealQuestionOfSpec,
} from "../runtime/exe_seal.ts";
import { resolveEntry } from "../runtime/rootfs_files.ts";
import type { Hook, State } from "../spec/types.ts";
import { type ContainerConfig, containerConfig, processConfig } from "./config.ts";
import { ContainerStartError, executablesOf, exitCodeOf, launch } from "./executor.ts";
import { runHooks, runHooksInContainer } from "./hooks.ts";
import { killCgroup, removeCgroup } from "./cgroup.ts";
import { spawnInContainer } from "./join.ts";
import { type RootfsSource, sessionKeyringName } from "./program.ts";
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
import { prepareTty, startTtyRelay, type TtyRelay } from "./tty_relay.ts";

/**
 * An annotation with which trun's own bundles ask the runtime to make the
 * root: an overlay of `lowers` with the writable layer `upper`/`work`,
 * mounted at root.path in the container's mount namespace (the way a
 * rootless runtime must, since only that namespace may mount it).
 */
export const ROOTFS_ANNOTATION = "run.trun.rootfs.overlay";

/**
 * An annotation with which trun's own bundles say that the container gets
 * no cgroup of its own (`--cgroups=disabled`, or a host without a delegated
 * cgroup v2, about which `run` has warned): the runtime then places it
 * nowhere, though `linux.resources` records the limits asked for.
 */
export const NO_CGROUP_ANNOTATION = "run.trun.cgroup.none";

/** The root a bundle asks for: its annotation's overlay, or root.path itself. */
function rootfsOf(config: ContainerConfig): RootfsSource {
  const text = config.annotations[ROOTFS_ANNOTATION];
  if (text === undefined) return { kind: "path" };
  let v: { lowers?: unknown; upper?: unknown; work?: unknown; lowerdirAppend?: unknown };
  try {
    v = JSON.parse(text);
  } catch {
    throw new RuntimeError(`config.json: annotations.${ROOTFS_ANNOTATION}: not JSON`);
  }
  const abs = (x: unknown) => typeof x === "string" && x.startsWith("/");
  if (!Array.isArray(v.lowers) || !v.lowers.every(abs) || !abs(v.upper) || !abs(v.work)) {
    throw new RuntimeError(
      `config.json: annotations.${ROOTFS_ANNOTATION}: needs absolute lowers, upper and work`,
    );
  }
  return {
    kind: "layered",
    lowers: v.lowers as string[],
    upper: v.upper as string,
    work: v.work as string,
    lowerdirAppend: v.lowerdirAppend === true,
  };
}

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

/** A warning on stderr (hooks after the fact cannot fail the operation). */
function warning(message: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`trun: warning: ${message}\n`));
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
 * runc's LookPath at create: the executable must exist in the root, so a
 * missing command fails `create` (exit 127) rather than the later `start`.
 */
function checkExecutable(c: ContainerConfig, rootfs: RootfsSource): void {
  const layers = rootfs.kind === "layered" ? [rootfs.upper, ...rootfs.lowers] : [c.rootPath];
  const argv0 = c.process.args[0]!;
  // Like Go's exec.LookPath: an entry that is not an executable regular
  // file is passed over in a $PATH search, and refused when named.
  const kinds = executablesOf(c).map((p) => {
    // A program bound in from the host (--init) is there once mounted.
    const bound = c.mounts.find((m) => m.kind === "bind" && m.target === p);
    if (bound?.kind === "bind") {
      const st = statBasic(bound.source);
      return st !== null && (st.mode & 0o111) !== 0 ? "ok" : "denied";
    }
    const e = resolveEntry(layers, p);
    if (e.kind === "missing" || e.kind === "unreachable") return "missing";
    try {
      const st = Deno.statSync(e.host);
      return st.isFile && ((st.mode ?? 0) & 0o111) !== 0 ? "ok" : "denied";
    } catch {
      return "missing";
    }
  });
  if (kinds.includes("ok")) return;
  if (argv0.includes("/") && kinds[0] === "denied") {
    throw new ContainerStartError(`exec: "${argv0}": permission denied`, 126);
  }
  const why = argv0.includes("/")
    ? `stat ${argv0}: no such file or directory`
    : "executable file not found in $PATH";
  throw new ContainerStartError(`exec: "${argv0}": ${why}`, 127);
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
  /** An already connected console socket (takes the place of `consoleSocket`). */
  consoleFd?: number;
  /** `--no-new-keyring`: the process keeps the caller's session keyring. */
  noNewKeyring?: boolean;
  /**
   * Runs after the prestart and createRuntime hooks, with the process's
   * pid and the spec's annotations (trun's network helper attaches here).
   */
  beforeMounts?: (pid: number, annotations: Readonly<Record<string, string>>) => Promise<void>;
}

/** The state of a recorded container with its status forced (for hooks run mid-way). */
function hookState(root: string, rec: ContainerRecord, status: State["status"]): State {
  return { ...stateOf(root, rec), status };
}

/** `create`: makes the container and leaves its process waiting for `start`; returns its pid. */
export async function create(root: string, id: string, opts: CreateOptions): Promise<number> {
  const bundle = Deno.realPathSync(opts.bundle);
  const { spec, config } = loadBundle(bundle);
  trace("bundle loaded");
  // The container's first process is cloned from this one: before any side
  // effect, as the command starts over (exe_seal.ts).
  if (exeSealNeeded(sealQuestionOfSpec(spec))) reexecSealed();
  for (const w of config.warnings) warning(w);
  const rootfs = rootfsOf(config);
  checkExecutable(config, rootfs);
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
  let consoleFd = opts.consoleFd;
  const ownConsole = consoleFd === undefined;
  try {
    Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify(spec));
    const rec: ContainerRecord = {
      id,
      pid: 0,
      startTime: "",
      bundle,
      rootfs: config.rootPath,
      created: new Date().toISOString(),
      annotations: config.annotations,
      namespaces: config.newNamespaces,
      userns: "none",
      ...(opts.noNewKeyring ? { noNewKeyring: true } : {}),
    };
    writeRecord(root, rec);
    makeFifo(execFifoPath(root, id), 0o622);
    if (config.process.terminal && consoleFd === undefined) {
      if (!opts.consoleSocket) throw new RuntimeError("process.terminal needs --console-socket");
      consoleFd = connectUnix(opts.consoleSocket);
    }
    const hooks = config.hooks;
    trace("state written");
    const withPid = (pid: number) => ({ ...rec, pid });
    const launched = await launch({
      config,
      rootfs,
      ...(consoleFd !== undefined ? { consoleSocket: consoleFd } : {}),
      stdinNull: false,
      execFifoPath: execFifoPath(root, id),
      dieWithParent: false,
      ...(config.annotations[NO_CGROUP_ANNOTATION] === "true" ? {} : { cgroupName: id }),
      ...(opts.noNewKeyring ? {} : { sessionKeyring: sessionKeyringName(id) }),
      beforeMounts: async (pid) => {
        const state = hookState(root, withPid(pid), "creating");
        await runHooks("prestart", hooks.prestart, state);
        await runHooks("createRuntime", hooks.createRuntime, state);
        await opts.beforeMounts?.(pid, config.annotations);
      },
      ...(hooks.createContainer.length > 0
        ? {
          beforePivot: (pid: number) =>
            runHooksInContainer(
              "createContainer",
              hooks.createContainer,
              hookState(root, withPid(pid), "creating"),
              pid,
            ),
        }
        : {}),
    });
    // Created: this process exits and leaves the container to whoever
    // reaps orphans here (conmon as subreaper, or init).
    // trun's own bundles: `run` has told the user already what its cgroup
    // cannot enforce (and conmon may pass this on to the same terminal).
    if (config.annotations[ROOTFS_ANNOTATION] === undefined) {
      for (const w of launched.placement.warnings) warning(w);
    }
    if (launched.placement.dir) rec.cgroup = launched.placement.dir;
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
    if (ownConsole && consoleFd !== undefined) closeFd(consoleFd);
  }
}

function savedConfig(root: string, rec: ContainerRecord): ContainerConfig {
  const spec = JSON.parse(Deno.readTextFileSync(`${containerDir(root, rec.id)}/config.json`));
  return containerConfig(spec, rec.bundle);
}

/** `start`: lets a created container's process exec. */
export async function start(root: string, id: string): Promise<void> {
  const rec = mustRecord(root, id);
  const status = statusOf(root, rec);
  if (status !== "created") throw new RuntimeError(`cannot start a container that is ${status}`);
  const hooks = savedConfig(root, rec).hooks;
  // startContainer hooks run before the user's program, in its namespaces
  // (after pivot_root: the path resolves in the container).
  await runHooksInContainer("startContainer", hooks.startContainer, stateOf(root, rec), rec.pid);
  const fifo = execFifoPath(root, id);
  // Non-blocking, so a container that died meanwhile cannot hang us: the
  // child's blocked open for writing completes once we hold the read end.
  const fd = openPath(fifo, O.RDONLY | O.NONBLOCK | O.CLOEXEC, `opening "${fifo}"`);
  try {
    for (let i = 0;; i++) {
      const got = readNow(fd, 1);
      if (got && got.length > 0) break;
      // Gone: it may have taken the start and exited between the read and
      // this look; its byte is still in the fifo then.
      if (!isAlive(rec)) {
        if ((readNow(fd, 1)?.length ?? 0) > 0) break;
        throw new RuntimeError("the container exited before it started");
      }
      if (i > 10000) {
        throw new RuntimeError("the container did not take the start signal within 10 s");
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  } finally {
    closeFd(fd);
  }
  Deno.removeSync(fifo);
  await runHooks("poststart", hooks.poststart, stateOf(root, rec)).catch((e) => warning(e.message));
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
  const pids = all ? containerProcesses(rec) : [rec.pid];
  for (const pid of pids.length > 0 ? pids : [rec.pid]) signalProcess(pid, signal);
}

/**
 * Every process of a container: its cgroup's when it has one of its own
 * (it also holds processes that left the PID namespace's view, such as
 * an exec on its way in), else its PID namespace's.
 */
function containerProcesses(rec: ContainerRecord): number[] {
  if (rec.cgroup) {
    try {
      const pids = Deno.readTextFileSync(`${rec.cgroup}/cgroup.procs`).split("\n")
        .filter((l) => l !== "").map(Number);
      if (pids.length > 0) return pids;
    } catch {
      // Gone: fall back to the namespace.
    }
  }
  return processesInPidNamespace(rec.pid);
}

/**
 * `pause` (`frozen` true) and `resume`: freezes or thaws the container's
 * cgroup, runc's way; a container without a cgroup of its own cannot be.
 */
export async function setPaused(root: string, id: string, frozen: boolean): Promise<void> {
  const rec = mustRecord(root, id);
  const status = statusOf(root, rec);
  if (frozen && status !== "running") throw new RuntimeError("container not running");
  if (!frozen && status !== "paused") throw new RuntimeError("container not paused");
  if (!rec.cgroup) {
    throw new RuntimeError(
      `cannot ${frozen ? "pause" : "resume"} a container without a cgroup of its own: ` +
        `set linux.cgroupsPath (or limits) in config.json, in a cgroup v2 tree you may write`,
    );
  }
  const { setFrozen } = await import("../cgroup/freeze.ts");
  await setFrozen(rec.cgroup, frozen);
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
    // The whole cgroup at once where the kernel offers it (Linux 5.14).
    if (!rec.cgroup || !killCgroup(rec.cgroup)) {
      for (const pid of [rec.pid, ...containerProcesses(rec)]) {
        signalProcess(pid, SIGNALS.SIGKILL);
      }
    }
    if (status === "paused") {
      const { setFrozen } = await import("../cgroup/freeze.ts");
      await setFrozen(rec.cgroup!, false).catch(() => {});
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
  if (rec.cgroup) await removeCgroup(rec.cgroup);
  Deno.removeSync(containerDir(root, id), { recursive: true });
  if (hooks.length > 0) {
    await runHooks("poststop", hooks, state).catch((e) => warning(e.message));
  }
}

/** Options of `run`. */
export interface RunOptions extends CreateOptions {
  /** `--detach`: return once started. */
  detach: boolean;
}

/** Relays a terminal received on `sock` to trun's own stdio; resolves to the relay. */
async function relayFrom(sock: number): Promise<TtyRelay | undefined> {
  const master = await receiveFd(sock);
  if (master === null) return undefined;
  prepareTty(master);
  const relay = startTtyRelay(master, { forwardStdin: true });
  const stop = relay.stop;
  return { ...relay, stop: () => (stop(), closeFd(master)) };
}

/**
 * `run`: create + start, then (without `detach`) wait and delete; returns
 * the exit status. With a terminal and no console socket, trun relays the
 * terminal itself, as runc does.
 */
export async function run(root: string, id: string, opts: RunOptions): Promise<number> {
  const { spec, config } = loadBundle(Deno.realPathSync(opts.bundle));
  if (exeSealNeeded(sealQuestionOfSpec(spec))) reexecSealed();
  let pair: [number, number] | undefined;
  if (config.process.terminal && !opts.consoleSocket) {
    if (opts.detach) throw new RuntimeError("a detached terminal needs --console-socket");
    pair = socketPair();
  }
  let relay: TtyRelay | undefined;
  try {
    const received = pair ? relayFrom(pair[0]) : undefined;
    const pid = await create(root, id, { ...opts, ...(pair ? { consoleFd: pair[1] } : {}) });
    relay = await received;
    await start(root, id);
    if (opts.detach) return 0;
    const status = await waitChild(pid);
    await relay?.output;
    await remove(root, id, true);
    return exitCodeOf(status);
  } finally {
    relay?.stop();
    if (pair) { for (const fd of pair) closeFd(fd); }
  }
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

/** `exec`: runs a process in a running container; returns its exit status (0 with `detach`). */
export async function exec(root: string, id: string, opts: ExecOptions): Promise<number> {
  const rec = mustRecord(root, id);
  const status = statusOf(root, rec);
  if (status !== "running" && status !== "created") {
    throw new RuntimeError(`cannot exec in a ${status} container`);
  }
  const proc = processConfig(opts.process);
  const executables = executablesOf({ process: proc } as ContainerConfig);
  const saved = savedConfig(root, rec);
  const question = {
    bounding: [...saved.process.capabilities.bounding, ...proc.capabilities.bounding],
    ownUserNamespace: hasOwnUserNamespace(rec.pid),
  };
  if (exeSealNeeded(question)) reexecSealed();
  // The exec'd process gets the container's filter, as runc does.
  const seccomp = saved.seccomp;
  let socket: number | undefined;
  let pair: [number, number] | undefined;
  let relay: TtyRelay | undefined;
  try {
    if (proc.terminal) {
      if (opts.consoleSocket) socket = connectUnix(opts.consoleSocket);
      else if (opts.detach) throw new RuntimeError("a detached terminal needs --console-socket");
      else {
        pair = socketPair();
        socket = pair[1];
      }
    }
    const received = pair ? relayFrom(pair[0]) : undefined;
    const pid = await spawnInContainer(rec.pid, {
      process: proc,
      executables,
      ...(rec.noNewKeyring ? {} : { sessionKeyring: sessionKeyringName(id) }),
      ...(rec.cgroup ? { cgroup: rec.cgroup } : {}),
      ...(socket !== undefined ? { consoleSocket: socket } : {}),
      ...(seccomp ? { seccomp } : {}),
    });
    writePidFile(opts.pidFile, pid);
    if (opts.detach) return 0;
    relay = await received;
    const s = await waitChild(pid);
    await relay?.output;
    return exitCodeOf(s);
  } finally {
    relay?.stop();
    if (socket !== undefined && !pair) closeFd(socket);
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

/**
 * The engine's executor: starts the container a `ContainerConfig`
 * describes. One linear orchestrator; each step is named, and the comments
 * give the ordering reasons. Everything the child does was decided by the
 * pure compiler in `program.ts`.
 *
 * `launch` starts the process (a monitor's container, the runtime's `run`)
 * and `createContainer` is the runtime's `create`: the process is left
 * blocked on the exec fifo until `start`, and trun exits.
 */
import { trace } from "../util/trace.ts";
import {
  type ChildFailure,
  cloexecPipe,
  closeFd,
  FORK_RECORD_MARK,
  readFd,
  signalProcess,
  startChildProgram,
  type StartedChild,
  waitChild,
  writeFd,
} from "../../ffi/child_program.ts";
import { describeErrno, Errno } from "../../ffi/errno.ts";
import { openPath, statBasic } from "../../ffi/fs.ts";
import { decodeDev, O, S, SIGNALS } from "../../ffi/syscalls.ts";
import { executableCandidates } from "../spec/command.ts";
import { envLookup } from "../spec/env.ts";
import {
  findExecutable,
  type IdMapping,
  inInitialUserNamespace,
  writeIdMaps,
} from "../runtime/idmap.ts";
import { resolveEntry } from "../runtime/rootfs_files.ts";
import type { Placement } from "./cgroup.ts";
import { type ContainerConfig, joinsFirst } from "./config.ts";
import {
  createProgram,
  MAPS_RECORD,
  NAMESPACE_FLAGS,
  type PathKind,
  READY_RECORD,
  type RootfsSource,
} from "./program.ts";

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

/** Timings of the steps of one start, in milliseconds (for `--debug` and the benchmark). */
export interface StartTimings {
  clone: number;
  idMaps: number;
  exec: number;
}

/** How the id maps of a new user namespace are written, from the spec's ranges and the caller. */
export function mapWriterFor(
  ranges: NonNullable<ContainerConfig["idMapping"]>,
  caller: { uid: number; gid: number },
  pathEnv: string,
): IdMapping {
  if (caller.uid === 0) return { mode: "direct", uid: ranges.uid, gid: ranges.gid };
  const own = (r: typeof ranges.uid, id: number) =>
    r.length === 1 && r[0]!.inside === 0 && r[0]!.outside === id && r[0]!.count === 1;
  if (own(ranges.uid, caller.uid) && own(ranges.gid, caller.gid)) {
    return { mode: "single", uid: ranges.uid, gid: ranges.gid };
  }
  const newuidmap = findExecutable("newuidmap", pathEnv);
  const newgidmap = findExecutable("newgidmap", pathEnv);
  if (!newuidmap || !newgidmap) {
    throw new ContainerStartError(
      "newuidmap or newgidmap not found: install the uidmap package, or map only your own uid and gid",
      125,
    );
  }
  return {
    mode: "subordinate",
    uid: ranges.uid,
    gid: ranges.gid,
    helpers: { newuidmap, newgidmap },
  };
}

/** What a host path is: a directory, something else, or nothing. */
export function hostPathKind(path: string): PathKind {
  const st = statBasic(path);
  if (st === null) return null;
  return (st.mode & S.IFMT) === S.IFDIR ? "dir" : "file";
}

/**
 * Checks that each device exists on the host as that device: trun binds
 * host device nodes into the container (an unprivileged user cannot
 * mknod, and a bind keeps the host's permissions in force).
 */
export function checkDevices(c: ContainerConfig): void {
  for (const d of c.devices) {
    const st = statBasic(d.path);
    let ok = false;
    if (st !== null) {
      const { major, minor } = decodeDev(st.rdev);
      ok = (st.mode & S.IFMT) === (d.type === "b" ? S.IFBLK : S.IFCHR) &&
        major === d.major && minor === d.minor;
    }
    if (!ok) {
      throw new ContainerStartError(
        `linux.devices: "${d.path}" (${d.type} ${d.major}:${d.minor}) is not that device on the host; ` +
          "trun bind-mounts host devices into the container",
        125,
      );
    }
  }
}

/** Turns the child's failure record into Docker's exit code and a message a user can act on. */
export function explainFailure(
  f: ChildFailure,
  args: readonly string[],
  mapping: IdMapping | undefined,
): ContainerStartError {
  const { op, errno } = f;
  if (op.call === "execve") {
    const argv0 = args[0] ?? "";
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
  if (op.step.startsWith("changing to the working directory")) {
    // Docker's status for a working directory that cannot be entered.
    const why = errno === Errno.ELOOP
      ? ": it leads through a /proc magic link (such as /proc/self/fd/N) or a symlink loop; " +
        "the working directory must be a directory inside the container"
      : "";
    return new ContainerStartError(
      `${op.step}: ${describeErrno(errno)}${why}`,
      errno === Errno.EACCES ? 126 : 125,
    );
  }
  let hint = "";
  if (errno === Errno.ELOOP && op.call === "openat2") {
    hint = ": the image has a symlink on this path, and trun does not mount through symlinks";
  } else if (errno === Errno.EINVAL && (op.call === "setresuid" || op.call === "setresgid")) {
    hint = mapping?.mode === "single"
      ? ": only root is mapped in a single-id mapping; add a subordinate range to /etc/subuid and /etc/subgid"
      : ": the id is outside the user namespace's mapping";
  } else if (errno === Errno.EPERM && op.call === "prlimit64") {
    hint = ": a hard limit above trun's own (ulimit -H) can only be raised by real root";
  } else if (errno === Errno.EDQUOT && op.call === "keyctl") {
    hint = ": the user's key quota is full (sysctl kernel.keys.maxkeys and maxbytes)";
  }
  return new ContainerStartError(`${op.step}: ${describeErrno(errno)}${hint}`, 125);
}

/** The exit status Docker reports: the code, or 128 + signal. */
export function exitCodeOf(
  s: { exited: true; code: number } | { exited: false; signal: number },
): number {
  return s.exited ? s.code : 128 + s.signal;
}

/**
 * Whether setgroups(2) works in the user namespace the container joins:
 * not when its `setgroups` file says "deny" (an unprivileged single-id
 * mapping). Known for a /proc/PID/ns/user path; assumed otherwise.
 */
function joinedUsernsAllowsSetgroups(c: ContainerConfig): boolean {
  const m = c.joinNamespaces.find((j) => j.type === "user")?.path.match(
    /^\/proc\/(\d+)\/ns\/user$/,
  );
  if (!m) return true;
  try {
    return Deno.readTextFileSync(`/proc/${m[1]}/setgroups`).trim() !== "deny";
  } catch {
    return true;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Options of a launch. */
export interface LaunchOptions {
  /** The validated config. */
  config: ContainerConfig;
  /** How the root is provided. */
  rootfs: RootfsSource;
  /** Console: a connected socket to send the pty master over (runtime), when terminal. */
  consoleSocket?: number;
  /** How to write the id maps, when the caller has decided it (ranges equal to the config's). */
  mapping?: IdMapping;
  /** Without a terminal: stdin from /dev/null. */
  stdinNull: boolean;
  /** The exec fifo (runtime create): the process waits for `start`. */
  execFifoPath?: string;
  /** Kill the container when this process dies. */
  dieWithParent: boolean;
  /** Descriptors for the process's stdin, stdout and stderr (a monitor's pipes). */
  stdio?: [number, number, number];
  /** Runs after the namespaces exist and the maps are written, before the mounts (createRuntime, prestart hooks). */
  beforeMounts?: (pid: number) => Promise<void>;
  /**
   * Runs once the mounts are made, before pivot_root, in the child's
   * namespaces (createContainer hooks); the child waits for it.
   */
  beforePivot?: (pid: number) => Promise<void>;
  /** Receives step timings once the process has exec'd or is created. */
  onStarted?: (t: StartTimings) => void;
  /**
   * Place the container in a cgroup (linux.cgroupsPath, or `trun-<name>`
   * beside trun's own when only limits are given); absent: stay in trun's.
   */
  cgroupName?: string;
  /** The container's own session keyring (`sessionKeyringName`); absent: keep trun's. */
  sessionKeyring?: string;
}

/** A launched container process. */
export interface Launched {
  /** Host pid of the container's first process. */
  pid: number;
  /** The stub's child handle (release the arena once exec'd). */
  child: StartedChild;
  /** The id mapping written, if any. */
  mapping?: IdMapping;
  /** Its cgroup, and what could not be applied. */
  placement: Placement;
}

/** The executable candidates of the process (execvp over its PATH). */
export function executablesOf(config: ContainerConfig): string[] {
  const argv0 = config.process.args[0]!;
  const found = executableCandidates(argv0, envLookup(config.process.env, "PATH"));
  if (found.length === 0) throw new ContainerStartError("no command specified", 125);
  return found;
}

/**
 * Whether a path inside the root exists and is a directory: under /proc
 * and /sys the host's answer (the same kernel); elsewhere the root's.
 */
function containerPathKind(config: ContainerConfig, rootfs: RootfsSource) {
  return (path: string): PathKind => {
    if (/^\/(proc|sys)\//.test(path)) return hostPathKind(path);
    const layers = rootfs.kind === "layered" ? [rootfs.upper, ...rootfs.lowers] : [config.rootPath];
    const e = resolveEntry(layers, path);
    return e.kind === "dir" ? "dir" : e.kind === "file" || e.kind === "other" ? "file" : null;
  };
}

/**
 * Clones the container's first process, writes its id maps and releases
 * it; resolves once it has exec'd (no exec fifo) or reports itself created
 * (with one). Throws `ContainerStartError` when it failed.
 */
export async function launch(opts: LaunchOptions): Promise<Launched> {
  const c = opts.config;
  const executables = executablesOf(c);
  // Real root outside any user namespace makes device nodes, as runc does;
  // otherwise the host's are bound (an unprivileged user cannot mknod).
  const createDevices = (Deno.uid() ?? 0) === 0 && inInitialUserNamespace() &&
    !c.newNamespaces.includes("user") && !c.joinNamespaces.some((j) => j.type === "user");
  if (!createDevices) checkDevices(c);
  // The caller may know already how the maps are written (`trun run` found
  // the helpers when it decided the mapping).
  const mapping = opts.mapping ?? (c.idMapping
    ? mapWriterFor(
      c.idMapping,
      { uid: Deno.uid() ?? 0, gid: Deno.gid() ?? 0 },
      Deno.env.get("PATH") ?? "",
    )
    : undefined);
  const [syncRead, syncWrite] = cloexecPipe();
  const [errRead, errWrite] = cloexecPipe();
  const held: number[] = [syncRead, syncWrite, errRead, errWrite];
  let child: StartedChild | undefined;
  let placement: Placement = { warnings: [] };
  try {
    const joinFds = c.joinNamespaces.map((j) => {
      const fd = openPath(
        j.path,
        O.RDONLY | O.CLOEXEC,
        `opening the ${j.type} namespace "${j.path}"`,
      );
      held.push(fd);
      return { type: j.type, fd };
    });
    let console: { socket: number; slot: number } | undefined;
    if (c.process.terminal) {
      if (opts.consoleSocket === undefined) {
        throw new ContainerStartError(
          "process.terminal is set but no console socket was given (--console-socket)",
          125,
        );
      }
      // A descriptor number reserved here, so that the child can dup the
      // master onto it without clobbering anything it inherited.
      const slot = openPath("/dev/null", O.RDONLY | O.CLOEXEC, "reserving a descriptor");
      held.push(slot);
      console = { socket: opts.consoleSocket, slot };
    }
    let execFifo: number | undefined;
    if (opts.execFifoPath) {
      execFifo = openPath(opts.execFifoPath, O.PATH | O.CLOEXEC, `opening "${opts.execFifoPath}"`);
      held.push(execFifo);
    }
    // Join-first (see joinsFirst): a plain fork that joins, unshares and
    // forks again; its id maps are asked for on the error pipe.
    const first = joinsFirst(c);
    let mapsSync: number | undefined, mapsWrite = -1;
    if (first && c.newNamespaces.includes("user")) {
      const [mr, mw] = cloexecPipe();
      held.push(mr);
      mapsSync = mr;
      mapsWrite = mw;
    }
    let hookSync: { ready: number; go: number } | undefined;
    let readyRead = -1, goWrite = -1;
    if (opts.beforePivot) {
      const [rr, rw] = cloexecPipe();
      const [gr, gw] = cloexecPipe();
      held.push(rw, gr);
      readyRead = rr;
      goWrite = gw;
      hookSync = { ready: rw, go: gr };
    }
    const ops = createProgram({
      config: c,
      executables,
      rootfs: opts.rootfs,
      syncRead,
      errFd: errWrite,
      joinFds,
      ...(console ? { console } : {}),
      stdinNull: opts.stdinNull,
      ...(execFifo !== undefined ? { execFifo } : {}),
      ...(hookSync ? { hookSync } : {}),
      ...(mapsSync !== undefined ? { mapsSync } : {}),
      ...(opts.stdio ? { stdio: opts.stdio } : {}),
      dieWithParent: opts.dieWithParent,
      setgroups: mapping ? mapping.mode !== "single" : joinedUsernsAllowsSetgroups(c),
      createDevices,
      ...(opts.sessionKeyring !== undefined ? { sessionKeyring: opts.sessionKeyring } : {}),
      kindOf: hostPathKind,
      containerPathKind: containerPathKind(c, opts.rootfs),
    });
    // The cgroup namespace is made by the child after it was placed in its cgroup.
    const flags = c.newNamespaces.filter((t) => t !== "cgroup")
      .reduce((f, t) => f | NAMESPACE_FLAGS[t], 0);
    const t0 = performance.now();
    // setns(2) into a user namespace refuses a process that shares its
    // memory: the join-first path forks plainly.
    child = startChildProgram(ops, {
      cloneFlags: first ? 0 : flags,
      errFd: errWrite,
      shareMemory: !first,
    });
    let pid = child.pid;
    const started = child;
    const t1 = performance.now();
    trace("cloned");
    for (const fd of held.splice(0)) if (fd !== syncWrite && fd !== errRead) closeFd(fd);
    held.push(syncWrite, errRead);
    if (hookSync) held.push(readyRead, goWrite);
    if (mapsWrite >= 0) held.push(mapsWrite);
    /** A record that is not the one expected: the failure it reports, or an early exit. */
    const unexpected = async (record: Uint8Array): Promise<Error> => {
      await waitChild(started.pid);
      return record.length === 16
        ? explainFailure(started.decodeFailure(record), c.process.args, mapping)
        : new ContainerStartError("the container process exited before it was created", 125);
    };

    // The maps must exist before the child does anything as root in its
    // namespace; it waits on the sync pipe until then.
    try {
      if (first) {
        if (mapsWrite >= 0) {
          const record = await readFd(errRead, 16);
          if (!sameBytes(record, MAPS_RECORD)) throw await unexpected(record);
          if (mapping) await writeIdMaps(pid, mapping);
          writeFd(mapsWrite, new Uint8Array([1]));
        }
        if (c.newNamespaces.includes("pid") || c.joinNamespaces.some((j) => j.type === "pid")) {
          // The middle process reports the pid inside the PID namespace's
          // reach ({-2, pid}) and exits; the container is trun's child.
          const record = await readFd(errRead, 16);
          const view = new DataView(record.buffer, record.byteOffset, record.length);
          if (record.length !== 16 || view.getBigInt64(0, true) !== FORK_RECORD_MARK) {
            throw await unexpected(record);
          }
          pid = Number(view.getBigInt64(8, true));
          await waitChild(started.pid);
        }
      } else if (mapping) await writeIdMaps(pid, mapping);
      // Into its cgroup before it runs anything of its own (it still waits
      // on the sync pipe).
      if (opts.cgroupName !== undefined) {
        // Loaded only here: `trun run` places nothing and skips the module.
        const { placeInCgroup } = await import("./cgroup.ts");
        placement = placeInCgroup(pid, c.cgroupsPath, c.resources, opts.cgroupName);
      }
      trace("id maps written");
      await opts.beforeMounts?.(pid);
    } catch (e) {
      // Reap what is still ours (a failure record's process was reaped).
      if (signalProcess(pid, SIGNALS.SIGKILL)) await waitChild(pid).catch(() => {});
      throw e;
    }
    const t2 = performance.now();
    writeFd(syncWrite, new Uint8Array([1]));
    if (opts.beforePivot && (await readFd(readyRead, 1)).length === 1) {
      // The mounts are made; the child waits for "go" (EOF instead means it
      // failed, and its record follows on the error pipe).
      try {
        await opts.beforePivot(pid);
      } catch (e) {
        signalProcess(pid, SIGNALS.SIGKILL);
        await waitChild(pid);
        throw e;
      }
      writeFd(goWrite, new Uint8Array([1]));
    }

    // EOF on the error pipe: execve closed it (O_CLOEXEC); a ready record:
    // created and waiting for start; anything else: a failed op.
    const record = await readFd(errRead, 16);
    const t3 = performance.now();
    trace("child ready or exec'd");
    const ready = sameBytes(record, READY_RECORD);
    if (opts.execFifoPath ? !ready : record.length === 16) {
      if (record.length === 16 && !ready) {
        const failure = child.decodeFailure(record);
        await waitChild(pid);
        throw explainFailure(failure, c.process.args, mapping);
      }
      await waitChild(pid);
      throw new ContainerStartError("the container process exited before it was created", 125);
    }
    opts.onStarted?.({ clone: t1 - t0, idMaps: t2 - t1, exec: t3 - t2 });
    return { pid, child, ...(mapping ? { mapping } : {}), placement };
  } catch (e) {
    child?.release();
    throw e;
  } finally {
    for (const fd of held) closeFd(fd);
  }
}

/**
 * Runs a child program: lays out a list of raw system calls ("ops") with
 * their strings and pointer arrays in memory that survives clone (an mmap'd
 * arena, never V8-managed memory), then calls the clone stub, which clones
 * the child and makes it execute the ops up to execve.
 *
 * The ops are plain data (`ChildOp`) built by pure code in `lib/runtime/`;
 * this module only turns names into numbers and values into pointers.
 */
import { CLONE_STUB_X86_64_HEX } from "./clone_stub_x86_64.ts";
import { Errno, SyscallError } from "./errno.ts";
import { addressOf, sys, sysBlocking } from "./syscall.ts";
import {
  AT,
  CLONE,
  encodeRightsMessage,
  encodeSockFprog,
  F,
  MAP,
  MSGHDR_SIZE,
  NSIG,
  O,
  PAGE_SIZE,
  PROT,
  SIG_HOW,
  SIGACTION_SIZE,
  SIGNALS,
  SIGSET_SIZE,
  SOCK_FILTER_SIZE,
  SOCK_FPROG_SIZE,
  type SyscallName,
  syscallTable,
  W,
} from "./syscalls.ts";

/** An argument of a child op. */
export type OpArg =
  /** A plain integer. */
  | number
  | bigint
  /** A pointer to a NUL-terminated copy of the string. */
  | { str: string }
  /** A pointer to a NULL-terminated array of string pointers (argv, envp). */
  | { strs: string[] }
  /** A pointer to a copy of the bytes. */
  | { bytes: Uint8Array }
  /** A pointer to a zeroed scratch buffer of that many bytes. */
  | { scratch: number }
  /** The value an earlier op stored under this name (an fd). */
  | { ref: string }
  /** A pointer to the signal mask the stub saved before clone. */
  | { savedSignalMask: true }
  /**
   * A pointer to a struct msghdr that sends descriptor `fd` with
   * SCM_RIGHTS and `name` as the data (runc's console-socket message).
   */
  | { sendFd: { fd: number; name: string } }
  /**
   * A pointer to a struct sock_fprog over a copy of the encoded BPF
   * program (struct sock_filter[]), for seccomp(2).
   */
  | { seccompFilter: Uint8Array };

/** One raw system call of the child program. */
export interface ChildOp {
  /** Which system call. */
  call: SyscallName;
  /** Up to six arguments. */
  args: OpArg[];
  /** An errno that counts as success (EEXIST for mkdir, ENOENT for a PATH entry). */
  okErrno?: number;
  /** Store the result under this name for later ops' `{ ref }` arguments. */
  produces?: string;
  /** What the op does, for error messages: `mounting proc on "/proc"`. */
  step: string;
  /**
   * The op is a fork (clone without CLONE_VM): its parent side writes
   * {-2, child pid} on the error pipe and exits 0, its child side goes on.
   */
  parentReportsAndExits?: boolean;
}

/** The first word of the record a forking op's parent side writes: the second is the pid. */
export const FORK_RECORD_MARK = -2n;

/** The op that failed in the child, with its errno. */
export interface ChildFailure {
  /** Index into the op list. */
  index: number;
  /** The errno the kernel returned. */
  errno: number;
  /** The failing op. */
  op: ChildOp;
}

/** Bytes of one op as the stub reads it (clone_stub_x86_64.S): number, six args, ok_errno, produces, indirect mask. */
const OP_SIZE = 80;
/** Bytes of the child's own stack at the end of the arena (CLONE_VM children). */
const CHILD_STACK = 16384;

type StubFn = (
  ops: Deno.PointerValue,
  n: bigint,
  flags: bigint,
  errfd: bigint,
  saved: Deno.PointerValue,
  stack: bigint,
) => bigint;
let stubFn: StubFn | undefined;

/** Maps the stub's bytes into executable memory once per process. */
function stub(): StubFn {
  if (stubFn) return stubFn;
  syscallTable(); // fails clearly on architectures without a stub
  const hex = CLONE_STUB_X86_64_HEX;
  const code = new Uint8Array(hex.length / 2);
  for (let i = 0; i < code.length; i++) code[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  const addr = sys(
    "mmap",
    [0, PAGE_SIZE, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0],
    "mapping the clone stub",
  );
  const mem = Deno.UnsafePointer.create(addr)!;
  new Uint8Array(new Deno.UnsafePointerView(mem).getArrayBuffer(PAGE_SIZE)).set(code);
  sys("mprotect", [addr, PAGE_SIZE, PROT.READ | PROT.EXEC], "mapping the clone stub");
  const def = {
    parameters: ["pointer", "i64", "i64", "i64", "pointer", "u64"],
    result: "i64",
  } as const;
  const fn = new Deno.UnsafeFnPointer(mem as Deno.PointerObject<typeof def>, def);
  stubFn = (ops, n, flags, errfd, saved, stack) =>
    fn.call(ops, n, flags, errfd, saved, stack) as bigint;
  return stubFn;
}

/** The child program encoded in an arena, ready for the stub. */
class Arena {
  readonly size: number;
  readonly ptr: Deno.PointerObject;
  readonly base: bigint;
  readonly view: DataView;
  readonly bytes: Uint8Array;
  private dataOffset: number;

  constructor(opCount: number, dataBytes: number) {
    const opsBytes = opCount * OP_SIZE;
    // The last CHILD_STACK bytes are the child's stack when it shares memory.
    this.size = Math.ceil((opsBytes + dataBytes + CHILD_STACK + 4096) / PAGE_SIZE) * PAGE_SIZE;
    const addr = sys("mmap", [
      0,
      this.size,
      PROT.READ | PROT.WRITE,
      MAP.PRIVATE | MAP.ANONYMOUS,
      -1,
      0,
    ], "mapping the child program");
    this.ptr = Deno.UnsafePointer.create(addr)!;
    this.base = addr;
    const buf = new Deno.UnsafePointerView(this.ptr).getArrayBuffer(this.size);
    this.view = new DataView(buf);
    this.bytes = new Uint8Array(buf);
    this.dataOffset = Math.ceil(opsBytes / 16) * 16;
  }

  /** The top of the child's stack (16-byte aligned, at the end of the arena). */
  get stackTop(): bigint {
    return this.base + BigInt(this.size - 64);
  }

  /** Copies bytes into the data area and returns their address. */
  put(data: Uint8Array): bigint {
    const off = this.dataOffset;
    if (off + data.length > this.size - CHILD_STACK) {
      throw new Error("child program arena overflow");
    }
    this.bytes.set(data, off);
    this.dataOffset = off + Math.ceil((data.length + 1) / 16) * 16;
    return this.base + BigInt(off);
  }

  /** Reserves a zeroed 8-byte cell and returns its address. */
  cell(initial: bigint): bigint {
    const addr = this.put(new Uint8Array(8));
    this.view.setBigInt64(Number(addr - this.base), initial, true);
    return addr;
  }

  free(): void {
    sys("munmap", [this.base, this.size]);
  }
}

const encoder = new TextEncoder();

function cstr(s: string): Uint8Array {
  const b = encoder.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** An upper bound of the bytes the ops' data needs. */
function dataSize(ops: ChildOp[]): number {
  let n = 16 * 64;
  const seen = new Set<object>();
  for (const op of ops) {
    n += 16;
    for (const a of op.args) {
      if (typeof a !== "object" || seen.has(a)) continue;
      seen.add(a);
      if ("str" in a) n += a.str.length * 3 + 32;
      else if ("strs" in a) {
        n += a.strs.reduce((s, x) => s + x.length * 3 + 32, 0) + a.strs.length * 8 + 32;
      } else if ("bytes" in a) n += a.bytes.length + 32;
      else if ("scratch" in a) n += a.scratch + 32;
      else if ("sendFd" in a) n += a.sendFd.name.length * 3 + 256;
      else if ("seccompFilter" in a) n += a.seccompFilter.length + SOCK_FPROG_SIZE + 64;
    }
  }
  return n;
}

/**
 * Lays out struct msghdr {name, namelen, iov, iovlen, control, controllen,
 * flags} with one iovec over `name` and an SCM_RIGHTS control message
 * carrying `fd`, all inside the arena; returns the header's address.
 */
function putSendFdMessage(arena: Arena, fd: number, name: string): bigint {
  const data = encoder.encode(name);
  const dataAddr = arena.put(data);
  const iov = arena.put(new Uint8Array(new BigUint64Array([dataAddr, BigInt(data.length)]).buffer));
  const control = encodeRightsMessage(fd);
  const controlAddr = arena.put(control);
  const hdr = new Uint8Array(MSGHDR_SIZE);
  const v = new DataView(hdr.buffer);
  v.setBigUint64(16, iov, true);
  v.setBigUint64(24, 1n, true);
  v.setBigUint64(32, controlAddr, true);
  v.setBigUint64(40, BigInt(control.length), true);
  return arena.put(hdr);
}

/** Options of `startChildProgram`. */
export interface StartOptions {
  /** clone(2) flags (namespaces); SIGCHLD is added. */
  cloneFlags: number;
  /** Write end of the error pipe (O_CLOEXEC), as numbered in the parent and the child; -1 for none. */
  errFd: number;
  /**
   * Share trun's memory (CLONE_VM) and run the child on a stack in the
   * arena instead of copying the address space: copying Deno's page tables
   * costs several milliseconds. The arena must then outlive the child's
   * execve, which `release()` after the error pipe's EOF guarantees.
   */
  shareMemory?: boolean;
  /** Suspend the caller until the child has exec'd or exited (CLONE_VFORK; implies shareMemory). */
  vfork?: boolean;
}

/** A started child: its pid and what is needed to interpret its failure record. */
export interface StartedChild {
  /** The child's pid in trun's PID namespace. */
  pid: number;
  /** Decodes a 16-byte failure record read from the error pipe. */
  decodeFailure(record: Uint8Array): ChildFailure;
  /** Releases the arena (after the child has exec'd or exited). */
  release(): void;
}

/**
 * Clones the child with `cloneFlags` and makes it run `ops`. Returns at once
 * in the parent; the child blocks wherever its program waits (a read on the
 * sync pipe) and reports failures on `errFd`.
 */
export function startChildProgram(ops: ChildOp[], opts: StartOptions): StartedChild {
  const numbers = syscallTable();
  const run = stub();
  const arena = new Arena(ops.length, dataSize(ops));
  const cells = new Map<string, bigint>();
  const savedMask = arena.cell(0n);
  const shared = new Map<object, bigint>();
  const cellFor = (name: string) => {
    let c = cells.get(name);
    // -1 (EBADF) until the producing op runs: a missed producer can never
    // make a later op act on fd 0.
    if (c === undefined) cells.set(name, c = arena.cell(-1n));
    return c;
  };
  ops.forEach((op, i) => {
    const o = i * OP_SIZE;
    const v = arena.view;
    v.setBigInt64(o, BigInt(numbers[op.call]), true);
    if (op.args.length > 6) throw new Error(`op ${op.call} has more than six arguments`);
    let indirect = 0;
    for (let k = 0; k < 6; k++) {
      const a = op.args[k] ?? 0;
      let value: bigint;
      if (typeof a === "number") value = BigInt(a);
      else if (typeof a === "bigint") value = a;
      else if ("str" in a) value = arena.put(cstr(a.str));
      else if ("strs" in a || "bytes" in a) {
        // Read-only data shared by several ops (argv and envp of each
        // execve candidate, the SIG_DFL sigaction) is laid out once.
        const known = shared.get(a);
        if (known !== undefined) value = known;
        else if ("bytes" in a) value = arena.put(a.bytes);
        else {
          const ptrs = new BigUint64Array(a.strs.length + 1);
          a.strs.forEach((s, j) => ptrs[j] = arena.put(cstr(s)));
          value = arena.put(new Uint8Array(ptrs.buffer));
        }
        shared.set(a, value);
      } else if ("scratch" in a) value = arena.put(new Uint8Array(a.scratch));
      else if ("sendFd" in a) value = putSendFdMessage(arena, a.sendFd.fd, a.sendFd.name);
      else if ("seccompFilter" in a) {
        const program = arena.put(a.seccompFilter);
        value = arena.put(encodeSockFprog(a.seccompFilter.length / SOCK_FILTER_SIZE, program));
      } else if ("ref" in a) {
        value = cellFor(a.ref);
        indirect |= 1 << k;
      } else value = savedMask;
      v.setBigInt64(o + 8 + k * 8, BigInt.asIntN(64, value), true);
    }
    v.setBigInt64(o + 56, BigInt(op.okErrno ?? 0), true);
    v.setBigInt64(o + 64, op.produces ? cellFor(op.produces) : 0n, true);
    if (op.parentReportsAndExits) indirect |= 0x100;
    v.setBigInt64(o + 72, BigInt(indirect), true);
  });
  const savedPtr = Deno.UnsafePointer.create(savedMask);
  const share = opts.shareMemory || opts.vfork;
  const flags = opts.cloneFlags | SIGNALS.SIGCHLD | (share ? CLONE.VM : 0) |
    (opts.vfork ? CLONE.VFORK : 0);
  const pid = Number(
    run(
      arena.ptr,
      BigInt(ops.length),
      BigInt(flags),
      BigInt(opts.errFd),
      savedPtr,
      share ? arena.stackTop : 0n,
    ),
  );
  if (pid < 0) {
    arena.free();
    throw new SyscallError("clone", -pid, "creating the container's namespaces (clone)");
  }
  return {
    pid,
    decodeFailure(record: Uint8Array): ChildFailure {
      const d = new DataView(record.buffer, record.byteOffset, 16);
      const index = Number(d.getBigInt64(0, true));
      const errno = Number(d.getBigInt64(8, true));
      const op = ops[index];
      if (!op) {
        throw new Error(`the child reported a failure of unknown op ${index} (errno ${errno})`);
      }
      return { index, errno, op };
    },
    release: () => arena.free(),
  };
}

/** Creates a pipe with O_CLOEXEC on both ends: [read, write]. */
export function cloexecPipe(): [number, number] {
  const fds = new Int32Array(2);
  sys("pipe2", [new Uint8Array(fds.buffer), O.CLOEXEC], "creating a pipe");
  return [fds[0]!, fds[1]!];
}

/** Writes bytes to a raw fd. */
export function writeFd(fd: number, data: Uint8Array<ArrayBuffer>): void {
  sys("write", [fd, data, data.length], `writing to fd ${fd}`);
}

/** Closes a raw fd, ignoring errors (used for cleanup). */
export function closeFd(fd: number): void {
  try {
    sys("close", [fd]);
  } catch {
    // Already closed: nothing to release.
  }
}

/** Reads up to `n` bytes from a raw fd on a worker thread; returns what was read (empty at EOF). */
export async function readFd(fd: number, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = Number(await sysBlocking("read", [fd, addressOf(buf) + BigInt(got), n - got]));
    if (r <= 0) break;
    got += r;
  }
  return buf.subarray(0, got);
}

/**
 * Writes all of `data` to a raw fd on a worker thread (a pipe whose reader
 * is slow blocks only that thread); false when the reader is gone.
 */
export async function writeAll(fd: number, data: Uint8Array<ArrayBuffer>): Promise<boolean> {
  for (let off = 0; off < data.length;) {
    const r = Number(
      await sysBlocking("write", [fd, addressOf(data) + BigInt(off), data.length - off]),
    );
    if (r <= 0) return false;
    off += r;
  }
  return true;
}

/** One read(2) of up to `n` bytes on a worker thread; empty at EOF or on error (EIO of a closed pty). */
export async function readSome(fd: number, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  const r = Number(await sysBlocking("read", [fd, addressOf(buf), n]));
  return r > 0 ? buf.subarray(0, r) : new Uint8Array(0);
}

/** How a waited-for process ended. */
export type ExitStatus = { exited: true; code: number } | { exited: false; signal: number };

/** Waits for a child on a worker thread (wait4(2), retrying EINTR). */
export async function waitChild(pid: number): Promise<ExitStatus> {
  const status = new Int32Array(1);
  const buf = new Uint8Array(status.buffer);
  for (;;) {
    const r = Number(await sysBlocking("wait4", [pid, buf, W.ALL, 0]));
    if (r === pid) break;
    // errno is not readable after a worker-thread call: ask again without
    // blocking to tell EINTR (retry) from ECHILD (reaped elsewhere).
    if (
      Number(sys("wait4", [pid, buf, W.NOHANG | W.ALL, 0], `waiting for process ${pid}`)) === pid
    ) {
      break;
    }
  }
  const s = status[0]!;
  if ((s & 0x7f) === 0) return { exited: true, code: (s >> 8) & 0xff };
  return { exited: false, signal: s & 0x7f };
}

/** Sends a signal to a process; false when it no longer exists. */
export function signalProcess(pid: number, signal: number): boolean {
  try {
    sys("kill", [pid, signal]);
    return true;
  } catch {
    return false;
  }
}

/** What `execTail` executes. */
export interface ExecSpec {
  /**
   * Candidate paths, tried in order: ENOENT moves on to the next one, but
   * for the last (this is execvp(3) over `$PATH`).
   */
  paths: string[];
  /** The argument vector, argv[0] included. */
  argv: string[];
  /** The environment, as `NAME=value` strings. */
  env: string[];
  /**
   * Mark every descriptor from 3 up close-on-exec first (close_range(2)),
   * so nothing the parent left open leaks into the program.
   */
  closeFds?: boolean;
}

/**
 * The ops every child program ends with: reset all signals to `SIG_DFL`,
 * optionally mark leaked descriptors close-on-exec, restore the signal mask
 * the stub saved before clone, then execve each candidate path.
 *
 * Ignored signals stay ignored across execve (Deno ignores SIGPIPE, and
 * `yes | head` misbehaves with it), and a handler could run between the mask
 * restore and execve, in memory the child may share with trun: so every
 * signal is reset before the mask is restored (posix_spawn(3) does the
 * same). Only execve follows the restore.
 */
export function execTail(spec: ExecSpec): ChildOp[] {
  const ops: ChildOp[] = signalResets();
  if (spec.closeFds) {
    // Whatever trun's runtime left open must not leak into the program.
    ops.push({
      call: "close_range",
      args: [3, 0xffffffff, AT.CLOSE_RANGE_CLOEXEC],
      step: "closing trun's descriptors",
    });
  }
  ops.push({
    call: "rt_sigprocmask",
    args: [SIG_HOW.SETMASK, { savedSignalMask: true }, 0, SIGSET_SIZE],
    step: "restoring the signal mask",
  });
  const argv = { strs: spec.argv };
  const envp = { strs: spec.env };
  spec.paths.forEach((path, i) => {
    const last = i === spec.paths.length - 1;
    ops.push({
      call: "execve",
      args: [{ str: path }, argv, envp],
      ...(last ? {} : { okErrno: Errno.ENOENT }),
      step: `executing "${spec.argv[0] ?? path}"`,
    });
  });
  return ops;
}

const SIGACTION_DEFAULT = { bytes: new Uint8Array(SIGACTION_SIZE) };

/**
 * The signals this process ignores or catches (SigIgn and SigCgt of
 * /proc/self/status): the only ones whose disposition a child would
 * inherit, since the kernel resets every other to SIG_DFL. Read when a
 * program is built, just before the clone copies the dispositions; all
 * catchable signals when the file cannot be read.
 */
function nonDefaultSignals(): number[] {
  let mask = (1n << BigInt(NSIG)) - 1n;
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const field = (name: string) =>
      BigInt("0x" + (status.match(new RegExp(`^${name}:\\s*([0-9a-f]+)`, "m"))?.[1] ?? "0"));
    mask = field("SigIgn") | field("SigCgt");
  } catch {
    // Keep them all.
  }
  const out: number[] = [];
  for (let sig = 1; sig <= NSIG; sig++) {
    if (sig === SIGNALS.SIGKILL || sig === SIGNALS.SIGSTOP) continue;
    if ((mask >> BigInt(sig - 1)) & 1n) out.push(sig);
  }
  return out;
}

/** The ops that set every signal this process ignores or catches back to SIG_DFL. */
function signalResets(): ChildOp[] {
  return nonDefaultSignals().map((sig) => ({
    call: "rt_sigaction" as const,
    args: [sig, SIGACTION_DEFAULT, 0, SIGSET_SIZE],
    okErrno: Errno.EINVAL,
    step: `resetting signal ${sig}`,
  }));
}

/**
 * Namespaces and first ops for a spawned program: it is cloned with
 * `cloneFlags` and runs `ops` before anything else (the seal of trun's
 * binary, lib/runtime/exe_seal.ts).
 */
export interface SpawnSetup {
  /** clone(2) namespace flags. */
  cloneFlags: number;
  /** Ops run first. */
  ops: ChildOp[];
}

/**
 * A setup that marks every descriptor from 3 up close-on-exec before
 * anything else (the one passed as descriptor 3 is dup'ed after, so it
 * stays): for a daemon started from a process whose own caller handed it
 * descriptors, such as `trun runtime create` under conmon (its stdio and
 * sync pipes), which would otherwise wait for their end as long as the
 * daemon lives.
 */
export const CLOSE_INHERITED: SpawnSetup = {
  cloneFlags: 0,
  ops: [{
    call: "close_range",
    args: [3, 0xffffffff, AT.CLOSE_RANGE_CLOEXEC],
    step: "closing inherited descriptors",
  }],
};

/**
 * Starts a program as a plain child of trun (no namespaces), the way
 * posix_spawn does: a CLONE_VM|CLONE_VFORK clone that resets the signals,
 * restores the signal mask and execs (`execTail`). About a millisecond,
 * where `Deno.Command` costs 5–15 ms; used for newuidmap/newgidmap on the
 * `run` path. stdio is inherited, but for stderr when `stderrFd` is given;
 * `passFd` becomes the program's descriptor 3. An exec failure shows as
 * exit status 127 (so does a failed `setup` op).
 */
export function spawnProcess(
  path: string,
  argv: string[],
  env: string[],
  stderrFd?: number,
  passFd?: number,
  setup?: SpawnSetup,
): number {
  if (passFd !== undefined && passFd <= 3) {
    throw new Error(`spawnProcess: descriptor ${passFd} cannot be passed as 3`);
  }
  const ops: ChildOp[] = [
    ...(setup?.ops ?? []),
    ...(stderrFd === undefined
      ? []
      : [{ call: "dup2" as const, args: [stderrFd, 2], step: "redirecting stderr" }]),
    // dup2 clears close-on-exec: descriptor 3 is the only one passed on.
    ...(passFd === undefined
      ? []
      : [{ call: "dup2" as const, args: [passFd, 3], step: "passing the ready pipe" }]),
    ...execTail({ paths: [path], argv, env }),
  ];
  const child = startChildProgram(ops, {
    cloneFlags: setup?.cloneFlags ?? 0,
    errFd: -1,
    vfork: true,
  });
  // With CLONE_VFORK the stub returns only after the child's execve or exit,
  // so the arena is no longer in use.
  child.release();
  return child.pid;
}

/**
 * The ops that detach a program from trun's terminal before its exec: a
 * session of its own, stdin and stdout from /dev/null, stderr appended to
 * `stderrPath`, and `passFd` handed over as descriptor 3.
 */
export function detachedStdio(stderrPath: string, passFd?: number): ChildOp[] {
  return [
    { call: "setsid", args: [], step: "starting a new session" },
    {
      call: "openat",
      args: [AT.FDCWD, { str: "/dev/null" }, O.RDWR | O.CLOEXEC],
      produces: "null",
      step: `opening "/dev/null"`,
    },
    { call: "dup2", args: [{ ref: "null" }, 0], step: "setting stdin" },
    { call: "dup2", args: [{ ref: "null" }, 1], step: "setting stdout" },
    {
      call: "openat",
      args: [AT.FDCWD, { str: stderrPath }, O.WRONLY | O.CREAT | O.APPEND | O.CLOEXEC, 0o600],
      produces: "err",
      step: `opening "${stderrPath}"`,
    },
    { call: "dup2", args: [{ ref: "err" }, 2], step: "setting stderr" },
    // dup2 clears close-on-exec on the copy: descriptor 3 survives execve
    // (when it is 3 already, dup2 does nothing and fcntl clears the flag).
    ...(passFd === undefined
      ? []
      : passFd === 3
      ? [{ call: "fcntl" as const, args: [3, F.SETFD, 0], step: "passing the ready pipe" }]
      : [{ call: "dup2" as const, args: [passFd, 3], step: "passing the ready pipe" }]),
  ];
}

/**
 * Starts a program in a session of its own, detached from trun's terminal:
 * stdin and stdout from /dev/null, stderr appended to `stderrPath`, and
 * `passFd` (trun's descriptor, if any) handed over as descriptor 3, the
 * only one it inherits. For a process that outlives trun, such as a container's
 * monitor. Returns its pid; an exec failure shows as exit status 127.
 */
export function spawnDetached(
  path: string,
  argv: string[],
  env: string[],
  opts: { stderrPath: string; passFd?: number | undefined; setup?: SpawnSetup | undefined },
): number {
  const ops: ChildOp[] = [
    ...(opts.setup?.ops ?? []),
    ...detachedStdio(opts.stderrPath, opts.passFd),
    ...execTail({ paths: [path], argv, env, closeFds: false }),
  ];
  const child = startChildProgram(ops, {
    cloneFlags: opts.setup?.cloneFlags ?? 0,
    errFd: -1,
    vfork: true,
  });
  child.release();
  return child.pid;
}

/**
 * Starts a program as `spawnDetached` does, but as nobody's child: a
 * middle process forks it and exits, so that init (or the subreaper)
 * reaps it when it ends. For a helper whose starter may long outlive it
 * (a monitor would otherwise keep its zombie) or must not wait for it.
 * Returns its pid; an exec failure shows as its exit (status 127).
 */
export async function spawnOrphan(
  path: string,
  argv: string[],
  env: string[],
  opts: { stderrPath: string; passFd?: number | undefined; setup?: SpawnSetup | undefined },
): Promise<number> {
  const [errRead, errWrite] = cloexecPipe();
  const ops: ChildOp[] = [
    ...(opts.setup?.ops ?? []),
    {
      call: "clone",
      args: [SIGNALS.SIGCHLD, 0, 0, 0, 0],
      parentReportsAndExits: true,
      step: "detaching (fork)",
    },
    ...detachedStdio(opts.stderrPath, opts.passFd),
    ...execTail({ paths: [path], argv, env, closeFds: false }),
  ];
  let child: StartedChild;
  try {
    // CLONE_VFORK: back here once the middle process has forked and exited.
    child = startChildProgram(ops, {
      cloneFlags: opts.setup?.cloneFlags ?? 0,
      errFd: errWrite,
      vfork: true,
    });
  } finally {
    closeFd(errWrite);
  }
  try {
    const record = await readFd(errRead, 16);
    await waitChild(child.pid);
    const view = new DataView(record.buffer, record.byteOffset, record.length);
    if (record.length !== 16 || view.getBigInt64(0, true) !== FORK_RECORD_MARK) {
      const f = record.length === 16 ? child.decodeFailure(record) : undefined;
      throw new Error(
        `starting ${path}: ${
          f ? new SyscallError(f.op.call, f.errno, f.op.step).message : "it exited at once"
        }`,
      );
    }
    return Number(view.getBigInt64(8, true));
  } finally {
    closeFd(errRead);
    child.release();
  }
}

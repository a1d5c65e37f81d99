/**
 * File-system calls Deno has no API for, made as raw system calls through
 * `sys()` (no libc table of their own): ownership and times of a symlink
 * itself (fchownat(2), utimensat(2) with AT_SYMLINK_NOFOLLOW), device nodes
 * and overlay whiteouts (mknodat(2)), extended attributes (lsetxattr(2),
 * lgetxattr(2), llistxattr(2)), opening a path as a raw descriptor, and
 * syncfs(2), which makes a whole unpacked
 * layer durable with one call instead of an fsync per file; openat2(2)
 * with its `resolve` flags, fstatat(2), readlinkat(2) and a detached
 * fsmount(2), with which a container's files are reached through
 * descriptors (never a host path that could follow a symlink out of the
 * container). Errors are `SyscallError`s naming the path.
 */
import { Errno, SyscallError } from "./errno.ts";
import { cString, sys, sysBlocking, sysTry } from "./syscall.ts";
import {
  AT,
  decodeStat,
  decodeStatFields,
  encodeDev,
  encodeOpenHow,
  encodeTimespecs,
  O,
  OPEN_HOW_SIZE,
  S,
  STAT_SIZE,
  type StatFields,
} from "./syscalls.ts";

/** lchown(2) as fchownat(2): changes the owner of `path` without following a final symlink. */
export function lchown(path: string, uid: number, gid: number): void {
  sys(
    "fchownat",
    [AT.FDCWD, cString(path), uid, gid, AT.SYMLINK_NOFOLLOW],
    `changing owner of "${path}"`,
  );
}

/** mknod(2) as mknodat(2): creates a device node, fifo or (0/0 char device) overlay whiteout. */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  const what = `creating node "${path}"`;
  const dev = encodeDev(major, minor);
  // The kernel takes a 32-bit device number; glibc refuses larger ones alike.
  if (dev === null) throw new SyscallError("mknodat", Errno.EINVAL, what);
  sys("mknodat", [AT.FDCWD, cString(path), mode, dev], what);
}

/** lsetxattr(2): sets an extended attribute on `path` itself (not a symlink target). */
export function lsetxattr(path: string, name: string, value: Uint8Array<ArrayBuffer>): void {
  sys(
    "lsetxattr",
    [cString(path), cString(name), value, value.length, 0],
    `setting xattr "${name}" on "${path}"`,
  );
}

/** Calls `fill` with ever larger buffers while it fails with ERANGE (the value is larger). */
function withGrowingBuffer<T>(
  first: number,
  fill: (buf: Uint8Array<ArrayBuffer>) => T,
): T {
  for (let size = first;; size *= 4) {
    try {
      return fill(new Uint8Array(size));
    } catch (e) {
      if (!(e instanceof SyscallError) || e.errno !== Errno.ERANGE || size > 1 << 20) throw e;
    }
  }
}

/**
 * lgetxattr(2): an extended attribute's value (not following a final
 * symlink), or null when it is not set or the file system has none.
 */
export function lgetxattr(path: string, name: string): Uint8Array | null {
  const p = cString(path), n = cString(name);
  // The common answer is "not set" (ENODATA): asked without an exception,
  // since the run path asks it of every directory above a layered path.
  const probe = new Uint8Array(256);
  const r = sysTry("lgetxattr", [p, n, probe, probe.length]);
  if (r >= 0n) return probe.slice(0, Number(r));
  const errno = Number(-r);
  if (errno === Errno.ENODATA || errno === Errno.EOPNOTSUPP) return null;
  if (errno !== Errno.ERANGE) {
    throw new SyscallError("lgetxattr", errno, `reading xattr "${name}" of "${path}"`);
  }
  return withGrowingBuffer(4096, (buf) => {
    const len = Number(
      sys("lgetxattr", [p, n, buf, buf.length], `reading xattr "${name}" of "${path}"`),
    );
    return buf.slice(0, len);
  });
}

/** llistxattr(2): the names of the extended attributes set on `path`. */
export function llistxattr(path: string): string[] {
  const p = cString(path);
  try {
    return withGrowingBuffer(1024, (buf) => {
      const len = Number(sys("llistxattr", [p, buf, buf.length], `listing xattrs of "${path}"`));
      return new TextDecoder().decode(buf.subarray(0, len)).split("\0").filter((s) => s !== "");
    });
  } catch (e) {
    if (e instanceof SyscallError && e.errno === Errno.EOPNOTSUPP) return [];
    throw e;
  }
}

/** utimensat(2) with AT_SYMLINK_NOFOLLOW: sets atime and mtime (seconds, fractional). */
export function lutimes(path: string, atime: number, mtime: number): void {
  sys(
    "utimensat",
    [AT.FDCWD, cString(path), encodeTimespecs(atime, mtime), AT.SYMLINK_NOFOLLOW],
    `setting times of "${path}"`,
  );
}

/** openat(2) relative to the working directory: a new descriptor for `path` (mode 0). */
export function openPath(path: string, flags: number, what?: string): number {
  return Number(sys("openat", [AT.FDCWD, cString(path), flags, 0], what ?? `opening "${path}"`));
}

/**
 * An unnamed file in directory `dir` (open(2) with O_TMPFILE), for output
 * that must leave nothing behind if the process is killed; returns its
 * descriptor, or null when the file system cannot make one (EOPNOTSUPP,
 * EISDIR on kernels without it).
 */
export function openUnnamedFile(dir: string, mode: number): number | null {
  const r = sysTry("openat", [AT.FDCWD, cString(dir), O.TMPFILE | O.RDWR | O.CLOEXEC, mode]);
  if (r >= 0n) return Number(r);
  if (r === -BigInt(Errno.EOPNOTSUPP) || r === -BigInt(Errno.EISDIR)) return null;
  throw new SyscallError("openat", Number(-r), `creating an unnamed file in "${dir}"`);
}

/** linkat(2) of an unnamed file (see openUnnamedFile) to the new name `path`. */
export function linkUnnamedFile(fd: number, path: string): void {
  sys(
    "linkat",
    [AT.FDCWD, cString(`/proc/self/fd/${fd}`), AT.FDCWD, cString(path), AT.SYMLINK_FOLLOW],
    `naming "${path}"`,
  );
}

/** syncfs(2) on the file system holding the directory `path`: flushes all its dirty data. */
export function syncfs(path: string): void {
  const fd = openPath(path, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
  try {
    sys("syncfs", [fd], `flushing the file system of "${path}"`);
  } finally {
    sys("close", [fd]);
  }
}

/**
 * syncfs(2) on a thread of the runtime's pool, so this thread goes on while
 * the kernel writes: a head start on a later `syncfs`. Best effort: false
 * when the call failed (errno is not kept across threads).
 */
export async function syncfsInBackground(path: string): Promise<boolean> {
  const fd = openPath(path, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
  try {
    return await sysBlocking("syncfs", [fd]) === 0n;
  } finally {
    sys("close", [fd]);
  }
}

/** mkfifo(3) as mknodat(2): creates a named pipe with permission bits `mode`. */
export function makeFifo(path: string, mode: number): void {
  sys("mknodat", [AT.FDCWD, cString(path), S.IFIFO | mode, 0], `creating the fifo "${path}"`);
  // mknodat(2) applies the umask; the mode asked for is the mode wanted.
  Deno.chmodSync(path, mode);
}

/**
 * One read(2) of up to `n` bytes from a non-blocking descriptor: the bytes
 * (empty at end of file), or null when nothing is there yet (EAGAIN).
 */
export function readNow(fd: number, n: number): Uint8Array | null {
  const buf = new Uint8Array(n);
  try {
    const r = Number(sys("read", [fd, buf, n], `reading fd ${fd}`));
    return buf.subarray(0, r);
  } catch (e) {
    if (e instanceof SyscallError && e.errno === Errno.EAGAIN) return null;
    throw e;
  }
}

/**
 * Waits up to `ms` milliseconds, on a worker thread, for `fd` to have
 * something to read (ppoll(2), which every architecture has); true when it
 * has (or is at its end or in error), false at the timeout.
 */
export async function waitReadable(fd: number, ms: number): Promise<boolean> {
  const pollfd = new Uint8Array(8);
  const view = new DataView(pollfd.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, 1, true); // POLLIN
  const timeout = new Uint8Array(16);
  const t = new DataView(timeout.buffer);
  t.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  t.setBigInt64(8, BigInt((ms % 1000) * 1_000_000), true);
  return Number(await sysBlocking("ppoll", [pollfd, 1, timeout, 0, 0])) > 0;
}

/** What stat(2) says of a path: its mode (type and permission bits) and device number. */
export interface BasicStat {
  /** st_mode (type bits: `S.IFMT`). */
  mode: number;
  /** st_rdev, for device nodes. */
  rdev: number;
}

/**
 * stat(2) through newfstatat(2), following symlinks: the mode and device
 * number, or null when the path does not exist. One raw call, where
 * Deno.statSync builds a whole FileInfo (much slower on a cold start, and
 * the `run` path asks a dozen of these).
 */
export function statBasic(path: string): BasicStat | null {
  const buf = new Uint8Array(STAT_SIZE);
  if (sysTry("newfstatat", [AT.FDCWD, cString(path), buf, 0]) < 0n) return null;
  return decodeStat(buf);
}

/** Like `statBasic`, but of a symlink itself (lstat(2)). */
export function lstatBasic(path: string): BasicStat | null {
  const buf = new Uint8Array(STAT_SIZE);
  const r = sysTry("newfstatat", [AT.FDCWD, cString(path), buf, AT.SYMLINK_NOFOLLOW]);
  return r < 0n ? null : decodeStat(buf);
}

/**
 * openat2(2): opens `path` relative to the directory descriptor `dirfd`
 * with `flags` (O_*) and `resolve` (RESOLVE_*, e.g. IN_ROOT so that `..`
 * and absolute symlinks stay under `dirfd`); returns the new descriptor.
 */
export function openAt2(
  dirfd: number,
  path: string,
  flags: number,
  resolve: number,
  what?: string,
): number {
  return Number(
    sys(
      "openat2",
      [dirfd, cString(path), encodeOpenHow(flags, 0, resolve), OPEN_HOW_SIZE],
      what ?? `opening "${path}"`,
    ),
  );
}

/** fstat(2) of a descriptor (also an O_PATH one, also of a symlink) as fstatat(2) with AT_EMPTY_PATH. */
export function fstatFd(fd: number, what?: string): StatFields {
  const buf = new Uint8Array(STAT_SIZE);
  sys(
    "newfstatat",
    [fd, cString(""), buf, AT.EMPTY_PATH],
    what ?? `reading the status of fd ${fd}`,
  );
  return decodeStatFields(buf);
}

/** fstatat(2) of `name` in the directory `dirfd`, not following a final symlink. */
export function lstatAt(dirfd: number, name: string, what?: string): StatFields {
  const buf = new Uint8Array(STAT_SIZE);
  sys(
    "newfstatat",
    [dirfd, cString(name), buf, AT.SYMLINK_NOFOLLOW],
    what ?? `reading the status of "${name}"`,
  );
  return decodeStatFields(buf);
}

/** readlinkat(2) of a descriptor opened on a symlink (O_PATH|O_NOFOLLOW): the link's text. */
export function readlinkFd(fd: number, what?: string): string {
  for (let size = 256;; size *= 4) {
    const buf = new Uint8Array(size);
    const n = Number(sys("readlinkat", [fd, cString(""), buf, size], what ?? `reading a symlink`));
    if (n < size || size > 1 << 16) return new TextDecoder().decode(buf.subarray(0, n));
  }
}

/**
 * A file system of type `fstype` mounted nowhere (fsopen(2), fsconfig(2),
 * fsmount(2)): returns a descriptor of its root, usable as `dirfd` of
 * openat2 and gone with the last descriptor. Options with a null value are
 * flags. Needs CAP_SYS_ADMIN over the caller's mount namespace.
 */
export function fsmountDetached(
  fstype: string,
  options: readonly (readonly [string, string | null])[],
  what: string,
): number {
  const fs = Number(sys("fsopen", [cString(fstype), AT.FSOPEN_CLOEXEC], what));
  try {
    for (const [key, value] of options) {
      sys(
        "fsconfig",
        value === null
          ? [fs, AT.FSCONFIG_SET_FLAG, cString(key), 0, 0]
          : [fs, AT.FSCONFIG_SET_STRING, cString(key), cString(value), 0],
        `${what}: option "${key}"`,
      );
    }
    sys("fsconfig", [fs, AT.FSCONFIG_CMD_CREATE, 0, 0, 0], what);
    return Number(sys("fsmount", [fs, AT.FSMOUNT_CLOEXEC, 0], what));
  } finally {
    sys("close", [fs]);
  }
}

/**
 * Typed bindings to the few libc functions trun needs, with errno turned into
 * `SyscallError` right after each call (man 2 for each function).
 *
 * This is one of the only places (with the rest of `ffi/`) that touches
 * pointers. Calls that must read errno are synchronous so that errno is read
 * on the thread that made the call.
 */
import { SyscallError } from "./errno.ts";

const SYMBOLS = {
  /** int *__errno_location(void) */
  __errno_location: { parameters: [], result: "pointer" },
  /** void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) */
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  /** int mprotect(void *addr, size_t len, int prot) */
  mprotect: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  /** int munmap(void *addr, size_t len) */
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  /** int pipe2(int fds[2], int flags) */
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  /** ssize_t read(int fd, void *buf, size_t n) — on a worker thread: may block */
  read_blocking: {
    name: "read",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  /** ssize_t write(int fd, const void *buf, size_t n) */
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },
  /** pid_t waitpid(pid_t pid, int *status, int options) — on a worker thread */
  waitpid_blocking: {
    name: "waitpid",
    parameters: ["i32", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  /** pid_t waitpid(pid_t pid, int *status, int options) — synchronous (WNOHANG) */
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /** int kill(pid_t pid, int sig) */
  kill: { parameters: ["i32", "i32"], result: "i32" },
  /** int lchown(const char *path, uid_t uid, gid_t gid) */
  lchown: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  /** int mknod(const char *path, mode_t mode, dev_t dev) */
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
  /** int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags) */
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  /** ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size) */
  lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  /** ssize_t llistxattr(const char *path, char *list, size_t size) */
  llistxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  /** int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags) */
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  /** int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const void *data) */
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  /** int umount2(const char *target, int flags) */
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  /** int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) */
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  /** int isatty(int fd) */
  isatty: { parameters: ["i32"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let lib: Libc | undefined;

/** The libc symbol table, opened on first use (dlopen costs startup time). */
export function libc(): Libc {
  if (!lib) {
    if (Deno.build.os !== "linux") {
      throw new Error(`trun runs only on Linux; this is ${Deno.build.os}`);
    }
    lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  }
  return lib;
}

/** Reads errno; must directly follow the failing synchronous call. */
export function lastErrno(): number {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

const encoder = new TextEncoder();

/** A NUL-terminated C string in a fresh buffer. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** Throws `SyscallError` when `result` is negative (the libc -1 convention). */
export function check<T extends number | bigint>(result: T, call: string, what?: string): T {
  if (result < 0) throw new SyscallError(call, lastErrno(), what);
  return result;
}

/** lchown(2): changes the owner of `path` without following a final symlink. */
export function lchown(path: string, uid: number, gid: number): void {
  check(libc().lchown(cString(path), uid, gid), "lchown", `changing owner of "${path}"`);
}

/** mknod(2): creates a device node, fifo or (0/0 char device) overlay whiteout. */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  const dev = (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) |
    (BigInt(minor & ~0xff) << 12n) | (BigInt(major & ~0xfff) << 32n);
  check(libc().mknod(cString(path), mode, dev), "mknod", `creating node "${path}"`);
}

/** lsetxattr(2): sets an extended attribute on `path` itself (not a symlink target). */
export function lsetxattr(path: string, name: string, value: Uint8Array<ArrayBuffer>): void {
  check(
    libc().lsetxattr(cString(path), cString(name), value, BigInt(value.length), 0),
    "lsetxattr",
    `setting xattr "${name}" on "${path}"`,
  );
}

/** lgetxattr(2): an extended attribute's value, or null when it is not set. */
export function lgetxattr(path: string, name: string): Uint8Array | null {
  const p = cString(path), n = cString(name);
  for (let size = 256;; size *= 4) {
    const buf = new Uint8Array(size);
    const r = Number(libc().lgetxattr(p, n, buf, BigInt(size)));
    if (r >= 0) return buf.slice(0, r);
    const errno = lastErrno();
    if (errno === 61 /* ENODATA */ || errno === 95 /* EOPNOTSUPP */) return null;
    if (errno !== 34 /* ERANGE */ || size > 1 << 20) {
      throw new SyscallError("lgetxattr", errno, `reading xattr "${name}" of "${path}"`);
    }
  }
}

/** llistxattr(2): the names of the extended attributes set on `path`. */
export function llistxattr(path: string): string[] {
  const p = cString(path);
  for (let size = 1024;; size *= 4) {
    const buf = new Uint8Array(size);
    const r = Number(libc().llistxattr(p, buf, BigInt(size)));
    if (r >= 0) {
      return new TextDecoder().decode(buf.subarray(0, r)).split("\0").filter((s) => s !== "");
    }
    const errno = lastErrno();
    if (errno === 95 /* EOPNOTSUPP */) return [];
    if (errno !== 34 /* ERANGE */ || size > 1 << 20) {
      throw new SyscallError("llistxattr", errno, `listing xattrs of "${path}"`);
    }
  }
}

/** utimensat(2) with AT_SYMLINK_NOFOLLOW: sets atime and mtime (seconds, fractional). */
export function lutimes(path: string, atime: number, mtime: number): void {
  const ts = new BigInt64Array(4);
  const split = (t: number, i: number) => {
    const s = Math.floor(t);
    ts[i] = BigInt(s);
    ts[i + 1] = BigInt(Math.round((t - s) * 1e9));
  };
  split(atime, 0);
  split(mtime, 2);
  const AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;
  check(
    libc().utimensat(AT_FDCWD, cString(path), new Uint8Array(ts.buffer), AT_SYMLINK_NOFOLLOW),
    "utimensat",
    `setting times of "${path}"`,
  );
}

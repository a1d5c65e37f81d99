/**
 * Errno values and the error type every failing syscall in `ffi/` becomes.
 *
 * Follows errno(3) for x86-64 and aarch64 Linux (the generic numbering).
 * This is trun's one home of errno numbers: code outside `ffi/` compares
 * against `Errno.ENOENT`, never against a literal.
 */

/** Errno numbers by name, for code that compares against a specific error. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EOPNOTSUPP: 95,
  EDQUOT: 122,
} as const;

/** Errno names by number, for the ones trun can meet. */
export const ERRNO_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(Errno).map(([name, n]) => [n, name]),
);

/** Human text for the errno values of `Errno` (strerror(3) wording). */
const ERRNO_TEXT: Readonly<Record<number, string>> = {
  1: "Operation not permitted",
  2: "No such file or directory",
  3: "No such process",
  4: "Interrupted system call",
  5: "Input/output error",
  7: "Argument list too long",
  8: "Exec format error",
  9: "Bad file descriptor",
  10: "No child processes",
  11: "Resource temporarily unavailable",
  12: "Cannot allocate memory",
  13: "Permission denied",
  14: "Bad address",
  16: "Device or resource busy",
  17: "File exists",
  18: "Invalid cross-device link",
  19: "No such device",
  20: "Not a directory",
  21: "Is a directory",
  22: "Invalid argument",
  23: "Too many open files in system",
  24: "Too many open files",
  25: "Inappropriate ioctl for device",
  26: "Text file busy",
  27: "File too large",
  28: "No space left on device",
  30: "Read-only file system",
  31: "Too many links",
  32: "Broken pipe",
  34: "Numerical result out of range",
  36: "File name too long",
  38: "Function not implemented",
  39: "Directory not empty",
  40: "Too many levels of symbolic links",
  61: "No data available",
  95: "Operation not supported",
  122: "Disk quota exceeded",
};

/** The strerror(3)-style text for an errno, with its name: `Permission denied (EACCES)`. */
export function describeErrno(errno: number): string {
  const name = ERRNO_NAMES[errno] ?? `errno ${errno}`;
  const text = ERRNO_TEXT[errno];
  return text ? `${text} (${name})` : name;
}

/** A failed system call: which call, on what (path or detail), and the errno. */
export class SyscallError extends Error {
  /** The errno the kernel returned. */
  readonly errno: number;
  /** The call's name, e.g. `mount`. */
  readonly call: string;

  /** `what` names the operation for the user (`mounting proc on /proc`). */
  constructor(call: string, errno: number, what?: string) {
    super(`${what ?? call}: ${describeErrno(errno)}`);
    this.name = "SyscallError";
    this.errno = errno;
    this.call = call;
  }

  /** The errno's symbolic name, e.g. `ENOENT`. */
  get code(): string {
    return ERRNO_NAMES[this.errno] ?? `errno ${this.errno}`;
  }
}

/**
 * Raw system calls through libc's `syscall(2)`: one FFI symbol instead of one
 * per function, because every symbol Deno binds costs about half a
 * millisecond of startup and `trun run` needs a dozen calls. Numbers come
 * from `syscalls.ts`; errors become `SyscallError`.
 */
import { SyscallError } from "./errno.ts";
import { syscallTable } from "./syscalls.ts";

const P = ["i64", "i64", "i64", "i64", "i64", "i64", "i64"] as const;
const SYMBOLS = {
  /** long syscall(long number, ...) — glibc passes the six arguments through */
  syscall: { parameters: P, result: "i64" },
  /** the same on a worker thread, for calls that block (read, wait4); errno is lost */
  syscall_blocking: { name: "syscall", parameters: P, result: "i64", nonblocking: true },
  /** int *__errno_location(void) */
  __errno_location: { parameters: [], result: "pointer" },
} as const;

let lib: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;

function symbols(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  if (!lib) {
    if (Deno.build.os !== "linux") {
      throw new Error(`trun runs only on Linux; this is ${Deno.build.os}`);
    }
    lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  }
  return lib;
}

/** An argument of a raw call: an integer or a buffer (passed by address). */
export type SysArg = number | bigint | Uint8Array | null;

function arg(a: SysArg | undefined): bigint {
  if (a === undefined || a === null) return 0n;
  if (typeof a === "number") return BigInt(a);
  if (typeof a === "bigint") return a;
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a as Uint8Array<ArrayBuffer>)));
}

/** The address of a buffer's first byte, as a call argument. */
export function addressOf(buf: Uint8Array<ArrayBuffer>): bigint {
  return arg(buf);
}

/** The number and six argument words of a call. */
function callArgs(
  name: keyof ReturnType<typeof syscallTable>,
  args: SysArg[],
): [bigint, bigint, bigint, bigint, bigint, bigint, bigint] {
  return [
    BigInt(syscallTable()[name]),
    arg(args[0]),
    arg(args[1]),
    arg(args[2]),
    arg(args[3]),
    arg(args[4]),
    arg(args[5]),
  ];
}

/**
 * Makes system call `name`; returns its result, or throws `SyscallError`
 * (with `what` as the message prefix) when it fails.
 */
export function sys(
  name: keyof ReturnType<typeof syscallTable>,
  args: SysArg[],
  what?: string,
): bigint {
  const s = symbols();
  const r = s.syscall(...callArgs(name, args));
  if (r === -1n) {
    const p = s.__errno_location();
    const errno = p ? new Deno.UnsafePointerView(p).getInt32() : 0;
    throw new SyscallError(name, errno, what);
  }
  return r;
}

/** Like `sys` but on a worker thread, for calls that block; returns -1n on failure (errno unknown). */
export async function sysBlocking(
  name: keyof ReturnType<typeof syscallTable>,
  args: SysArg[],
): Promise<bigint> {
  return await symbols().syscall_blocking(...callArgs(name, args));
}

/**
 * lgetxattr(2) through `syscall()`: whether `name` is set on `path` (not
 * following a final symlink) and its value. Used on the `run` path, where
 * opening the full libc table would cost milliseconds.
 */
export function getXattr(path: string, name: string): Uint8Array | null {
  const enc = new TextEncoder();
  const p = enc.encode(path + "\0"), n = enc.encode(name + "\0");
  const buf = new Uint8Array(256);
  try {
    const len = Number(sys("lgetxattr", [p, n, buf, buf.length]));
    return buf.slice(0, len);
  } catch {
    // ENODATA (not set), EOPNOTSUPP, ERANGE (a value we do not look for).
    return null;
  }
}

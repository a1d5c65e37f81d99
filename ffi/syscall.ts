/**
 * trun's one libc binding: raw system calls through libc's `syscall(2)`.
 * One FFI symbol instead of one per function, because every symbol Deno
 * binds costs about half a millisecond of startup and `trun run` needs a
 * dozen calls; every other function of `ffi/` (files, xattrs, pipes, wait,
 * kill, the pty, the clone stub's memory) is built on `sys()`. Numbers come
 * from `syscalls.ts`; errors become `SyscallError`, with errno read on the
 * calling thread right after the call.
 */
import { SyscallError } from "./errno.ts";
import { type SyscallName, syscallTable } from "./syscalls.ts";

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
  name: SyscallName,
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
  name: SyscallName,
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

/**
 * Makes system call `name` where failure is an expected answer ("does this
 * path exist?"): returns the result, or minus the errno. No exception is
 * built, which matters on the cold `run` path.
 */
export function sysTry(name: SyscallName, args: SysArg[]): bigint {
  const s = symbols();
  const r = s.syscall(...callArgs(name, args));
  if (r !== -1n) return r;
  const p = s.__errno_location();
  return -BigInt(p ? new Deno.UnsafePointerView(p).getInt32() : 0);
}

/** Like `sys` but on a worker thread, for calls that block; returns -1n on failure (errno unknown). */
export async function sysBlocking(
  name: SyscallName,
  args: SysArg[],
): Promise<bigint> {
  return await symbols().syscall_blocking(...callArgs(name, args));
}

const encoder = new TextEncoder();

/** A NUL-terminated C string in a fresh buffer. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * File-system calls Deno has no API for, with errno turned into
 * `SyscallError` right after each call: syncfs(2), to make a whole unpacked
 * layer durable with one call instead of an fsync per file.
 *
 * Uses its own small symbol table (opened lazily) and reads errno through
 * `lastErrno()` of `ffi/libc.ts`: both are the same libc.so.6 and every call
 * here is synchronous, so errno is read on the calling thread.
 */
import { cString, lastErrno } from "./libc.ts";
import { SyscallError } from "./errno.ts";

const SYMBOLS = {
  /** int open(const char *path, int flags, ...) — mode unused here */
  open: { parameters: ["buffer", "i32"], result: "i32" },
  /** int syncfs(int fd) */
  syncfs: { parameters: ["i32"], result: "i32" },
  /** int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },
} as const;

const O_RDONLY = 0;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;

type Fs = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let lib: Fs | undefined;

function fs(): Fs {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return lib;
}

/** syncfs(2) on the file system holding the directory `path`: flushes all its dirty data. */
export function syncfs(path: string): void {
  const fd = fs().open(cString(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw new SyscallError("open", lastErrno(), `opening "${path}"`);
  try {
    if (fs().syncfs(fd) < 0) {
      throw new SyscallError("syncfs", lastErrno(), `flushing the file system of "${path}"`);
    }
  } finally {
    fs().close(fd);
  }
}

/**
 * Replacing trun's own process: execve(2) made by Deno's main thread. The
 * kernel ends every other thread (tokio's workers) and keeps the pid, the
 * descriptors that are not close-on-exec and the calling thread's
 * namespaces, so a mount namespace the main thread unshared before becomes
 * the new program's (unshare(2) of CLONE_NEWNS, unlike CLONE_NEWUSER, is
 * allowed to one thread of many: it gets a private copy of the filesystem
 * context).
 */
import { addressOf, cString, sys, sysTry } from "./syscall.ts";
import { ACCESS, AT, CLONE } from "./syscalls.ts";

/**
 * Gives the calling (main) thread a mount namespace of its own, a copy of
 * the current one (unshare(2) CLONE_NEWNS). Only the main thread's later
 * calls and an execve from it see the copy.
 */
export function unshareMountNamespace(what: string): void {
  sys("unshare", [CLONE.NEWNS], what);
}

/** mount(2) with no data; null source or type are passed as NULL. */
export function mountSimple(
  source: string | null,
  target: string,
  type: string | null,
  flags: number,
  what: string,
): void {
  sys("mount", [
    source === null ? null : cString(source),
    cString(target),
    type === null ? null : cString(type),
    flags,
    null,
  ], what);
}

/**
 * The errno faccessat2(2) gives for write access to `path` (0 when
 * writable). EROFS means the path's mount is read-only: the kernel checks
 * the mount the path resolves through, magic links of /proc included.
 */
export function writeAccessErrno(path: string): number {
  const r = sysTry("faccessat2", [AT.FDCWD, cString(path), ACCESS.W_OK, 0]);
  return r < 0n ? Number(-r) : 0;
}

/** A NULL-terminated array of C string pointers; `keep` holds the strings alive. */
function stringArray(strs: string[], keep: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const ptrs = new BigUint64Array(strs.length + 1);
  strs.forEach((s, i) => {
    const c = cString(s);
    keep.push(c);
    ptrs[i] = addressOf(c);
  });
  return new Uint8Array(ptrs.buffer);
}

/**
 * Replaces this process with `path` run with `argv` and `env`
 * (`NAME=value` strings). Returns only by throwing, when execve fails.
 */
export function execInPlace(path: string, argv: string[], env: string[], what: string): never {
  const keep: Uint8Array[] = [];
  sys("execve", [cString(path), stringArray(argv, keep), stringArray(env, keep)], what);
  throw new Error(`${what}: execve returned`);
}

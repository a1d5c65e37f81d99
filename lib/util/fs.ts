/**
 * File-system helpers every layer shares: removing a tree that may hold
 * read-only directories, and recognising a full disk in an error from any
 * layer (Deno, node, ffi).
 */
import { SyscallError } from "../../ffi/errno.ts";

/**
 * Removes a tree that may hold read-only directories (a failed unpack, a
 * layer being deleted): on EACCES it makes directories writable and retries.
 * Missing paths are fine.
 */
export function removeTree(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
    return;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    if (!(err instanceof Deno.errors.PermissionDenied)) throw err;
  }
  const open = (p: string) => {
    try {
      const st = Deno.lstatSync(p);
      if (!st.isDirectory) return;
      Deno.chmodSync(p, 0o700);
      for (const e of Deno.readDirSync(p)) if (e.isDirectory) open(`${p}/${e.name}`);
    } catch {
      // Best effort: the retry below reports what is still wrong.
    }
  };
  open(path);
  Deno.removeSync(path, { recursive: true });
}

/** True when an error (of any layer: Deno, node, ffi) is the disk being full. */
export function isNoSpace(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof SyscallError && (e.code === "ENOSPC" || e.code === "EDQUOT")) return true;
    const code = (e as { code?: unknown }).code;
    if (code === "ENOSPC" || code === "EDQUOT") return true;
    if (/os error (28|122)\b|No space left on device|Disk quota exceeded/.test(e.message)) {
      return true;
    }
  }
  return false;
}

/**
 * File-system helpers every layer shares: removing a tree that may hold
 * read-only directories, and recognising a full disk in an error from any
 * layer (Deno, node, ffi).
 */
import { SyscallError } from "../../ffi/errno.ts";
import { linkUnnamedFile, openUnnamedFile } from "../../ffi/fs.ts";
import { closeFd } from "../../ffi/child_program.ts";

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

/** A new file being written, that appears under its name only when committed. */
export interface OutputFile {
  /** The file to write. */
  readonly file: Deno.FsFile;
  /** Flushes the file and gives it its name, replacing what was there. */
  commit(): void;
  /** Drops the file; nothing is left on disk. */
  discard(): void;
}

/**
 * Creates an output file (an image archive) that leaves nothing behind if
 * the process is killed while writing it: an unnamed O_TMPFILE file, linked
 * to `path` on commit. A file system without O_TMPFILE gets a temporary
 * name beside `path` instead.
 */
export function createOutputFile(path: string, mode = 0o644): OutputFile {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  const tmpName = () => `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const fd = openUnnamedFile(dir, mode);
  if (fd === null) {
    const tmp = tmpName();
    const file = Deno.openSync(tmp, { write: true, createNew: true, mode });
    return {
      file,
      commit() {
        file.syncSync();
        file.close();
        Deno.renameSync(tmp, path);
      },
      discard() {
        file.close();
        Deno.removeSync(tmp);
      },
    };
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(`/proc/self/fd/${fd}`, { write: true });
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  return {
    file,
    commit() {
      try {
        file.syncSync();
        // linkat cannot replace: an existing name is replaced by a rename.
        try {
          linkUnnamedFile(fd, path);
        } catch (err) {
          if (!(err instanceof SyscallError && err.code === "EEXIST")) throw err;
          const tmp = tmpName();
          linkUnnamedFile(fd, tmp);
          Deno.renameSync(tmp, path);
        }
      } finally {
        file.close();
        closeFd(fd);
      }
    },
    discard() {
      file.close();
      closeFd(fd);
    },
  };
}

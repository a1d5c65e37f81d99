/**
 * `trun cp` and `trun export` on an open container root: every transfer is
 * a tar stream, as Docker's are. The source is written with tree_tar.ts
 * (from descriptors, so a symlink inside the container never leads to a
 * host file) and unpacked with layer_tar.ts (which never writes through a
 * symlink), into a host directory, into the container (through a
 * descriptor of the destination directory, resolved inside the container
 * root with RESOLVE_IN_ROOT), or to stdout.
 *
 * Ownership follows Docker: files copied into a container belong to its
 * root (uid 0 inside) unless `-a` keeps the ids of the source; files
 * copied out belong to the calling user (inside trun's helper, uid 0 is
 * the calling user); tars written to stdout keep the container's ids.
 */
import { SyscallError } from "../../ffi/errno.ts";
import { fstatFd, openAt2 } from "../../ffi/fs.ts";
import { sys } from "../../ffi/syscall.ts";
import { AT, O, RESOLVE, S } from "../../ffi/syscalls.ts";
import { applyLayer } from "../oci/layer_tar.ts";
import { packTree, type TreeRoot } from "../oci/tree_tar.ts";
import type { ContainerRoot } from "./container_root.ts";
import {
  cleanPath,
  type DestinationInfo,
  namesContent,
  planCopy,
  splitPath,
} from "./copy_paths.ts";

/** Resolution inside a container root: `..` and symlinks stay in it; no /proc magic links. */
const IN_ROOT = RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS;

/** `-a` and `-L` of `trun cp`. */
export interface CopyFlags {
  /** `-a`: keep the source's uid and gid. */
  archive: boolean;
  /** `-L`: follow a symlink named as the source. */
  followLink: boolean;
}

/** An error of `cp` or `export`, with Docker's exit status 1. */
function failure(message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, cause === undefined ? undefined : { cause }), {
    exitCode: 1,
  });
}

/** Docker's message for a path missing in a container. */
function noSuchPath(container: string, path: string): Error {
  return failure(`No such container:path: ${container}:${path}`);
}

/** The error for a failed resolution of `path` inside container `container`. */
function containerPathError(e: unknown, container: string, path: string): Error {
  if (!(e instanceof SyscallError)) return e as Error;
  if (e.code === "ENOENT") return noSuchPath(container, path);
  if (e.code === "ENOTDIR") return failure(`"${container}:${path}": not a directory`, e);
  if (e.code === "ELOOP") return failure(`"${container}:${path}": too many levels of symlinks`, e);
  return failure(`"${container}:${path}": ${e.message}`, e);
}

function closeRaw(fd: number): void {
  sys("close", [fd]);
}

function isDirFd(fd: number): boolean {
  return (fstatFd(fd).mode & S.IFMT) === S.IFDIR;
}

/** Counts the bytes that pass. */
async function* counted(
  src: AsyncIterable<Uint8Array>,
  total: { bytes: number },
): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    total.bytes += c.length;
    yield c;
  }
}

/** Where a tar is written: stdout or a file. */
export interface TarOutput {
  /** write(2)-like: returns how many bytes were taken. */
  write(p: Uint8Array): Promise<number>;
}

/** Writes every chunk to `out`. */
async function writeAll(src: AsyncIterable<Uint8Array>, out: TarOutput): Promise<void> {
  for await (const c of src) {
    let off = 0;
    while (off < c.length) off += await out.write(c.subarray(off));
  }
}

/**
 * Packs `roots` and feeds the tar to `consume`; if either side fails, the
 * other is stopped and the first failure is thrown. Returns the tar's size.
 */
async function transfer(
  roots: TreeRoot[],
  followFileMounts: boolean,
  consume: (tar: AsyncIterable<Uint8Array>) => Promise<unknown>,
): Promise<number> {
  const packed = await packTree(roots, { followFileMounts });
  const total = { bytes: 0 };
  try {
    await consume(counted(packed.stream, total));
  } catch (err) {
    packed.cancel(err as Error);
    await packed.done.catch(() => {});
    throw err;
  }
  await packed.done;
  return total.bytes;
}

/** Unpacks a tar into the directory `dest`, as `cp` does (no whiteouts, no dir↔file replacement). */
async function unpack(
  tar: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  dest: string,
  what: string,
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  try {
    await applyLayer(tar, dest, {
      what,
      whiteouts: "none",
      noReplaceDirs: true,
      ...(owner ? { squashOwnership: owner } : {}),
    });
  } catch (e) {
    throw failure((e as Error).message, e);
  }
}

/** What the destination path on this host holds (symlinks followed, as Docker does). */
function hostDestination(path: string): DestinationInfo {
  try {
    return { exists: true, isDir: Deno.statSync(path).isDirectory };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw failure(`"${path}": ${(e as Error).message}`, e);
    }
  }
  const { dir } = splitPath(path);
  let parent: Deno.FileInfo;
  try {
    parent = Deno.statSync(dir);
  } catch {
    throw failure(`the destination directory "${dir}" does not exist`);
  }
  if (!parent.isDirectory) throw failure(`the destination "${dir}" is not a directory`);
  return { exists: false, isDir: false };
}

/** What the destination path inside the container holds; throws when its parent is missing. */
function containerDestination(root: number, container: string, path: string): DestinationInfo {
  try {
    const fd = openAt2(root, path, O.PATH | O.CLOEXEC, IN_ROOT);
    try {
      return { exists: true, isDir: isDirFd(fd) };
    } finally {
      closeRaw(fd);
    }
  } catch (e) {
    if (!(e instanceof SyscallError) || e.code !== "ENOENT") {
      throw containerPathError(e, container, path);
    }
  }
  const { dir } = splitPath(path);
  try {
    closeRaw(openAt2(root, dir, O.PATH | O.DIRECTORY | O.CLOEXEC, IN_ROOT));
  } catch (e) {
    throw containerPathError(e, container, dir);
  }
  return { exists: false, isDir: false };
}

/** The name a copied source takes in a tar written to stdout: its own; null for `DIR/.` and `/`. */
function streamName(path: string): string | null {
  const { base } = splitPath(path);
  return namesContent(path) || base === "/" ? null : base;
}

/**
 * `trun cp CONTAINER:SRC DEST|-`: copies `src` out of the container whose
 * root is open (`container` names it in messages) to the host path `dest`,
 * or as a tar to stdout when `dest` is null. Returns the tar's size.
 */
export async function copyFromContainer(
  root: ContainerRoot,
  container: string,
  src: string,
  dest: string | null,
  flags: CopyFlags,
): Promise<number> {
  let srcFd: number;
  try {
    srcFd = openAt2(
      root.fd,
      src,
      O.PATH | O.CLOEXEC | (flags.followLink ? 0 : O.NOFOLLOW),
      IN_ROOT,
    );
  } catch (e) {
    throw containerPathError(e, container, src);
  }
  try {
    if (dest === null) {
      return await transfer(
        [{ fd: srcFd, name: streamName(src) }],
        true,
        (tar) => writeAll(tar, Deno.stdout),
      );
    }
    const plan = planCopy({ path: src, isDir: isDirFd(srcFd) }, dest, hostDestination(dest));
    if (!plan.ok) throw failure(plan.message);
    return await transfer(
      [{ fd: srcFd, name: plan.name }],
      true,
      (tar) =>
        unpack(tar, plan.destDir, `copying "${container}:${src}" to "${dest}"`, {
          uid: Deno.uid()!,
          gid: Deno.gid()!,
        }),
    );
  } finally {
    closeRaw(srcFd);
  }
}

/**
 * `trun cp SRC|- CONTAINER:DEST`: copies the host path `src` (a tar from
 * stdin when null) into the container whose root is open, at `dest`.
 * Returns the tar's size.
 */
export async function copyToContainer(
  root: ContainerRoot,
  container: string,
  src: string | null,
  dest: string,
  flags: CopyFlags,
): Promise<number> {
  const shown = `${container}:${dest}`;
  const found = containerDestination(root.fd, container, dest);
  const owner = flags.archive ? undefined : { uid: 0, gid: 0 };
  const what = `copying to "${shown}"`;
  if (src === null) {
    if (!found.isDir) throw failure(`destination "${shown}" must be a directory`);
    const dirFd = openAt2(root.fd, dest, O.PATH | O.DIRECTORY | O.CLOEXEC, IN_ROOT);
    try {
      const total = { bytes: 0 };
      await unpack(counted(Deno.stdin.readable, total), `/proc/self/fd/${dirFd}`, what, owner);
      return total.bytes;
    } finally {
      closeRaw(dirFd);
    }
  }
  let srcFd: number;
  try {
    srcFd = openAt2(AT.FDCWD, src, O.PATH | O.CLOEXEC | (flags.followLink ? 0 : O.NOFOLLOW), 0);
  } catch (e) {
    if (e instanceof SyscallError && e.code === "ENOENT") {
      throw failure(`cannot copy "${src}": no such file or directory`);
    }
    throw failure(`cannot copy "${src}": ${(e as Error).message}`, e);
  }
  try {
    const plan = planCopy({ path: src, isDir: isDirFd(srcFd) }, dest, found, shown);
    if (!plan.ok) throw failure(plan.message);
    let dirFd: number;
    try {
      dirFd = openAt2(root.fd, plan.destDir, O.PATH | O.DIRECTORY | O.CLOEXEC, IN_ROOT);
    } catch (e) {
      throw containerPathError(e, container, plan.destDir);
    }
    try {
      return await transfer(
        [{ fd: srcFd, name: plan.name }],
        false,
        (tar) => unpack(tar, `/proc/self/fd/${dirFd}`, what, owner),
      );
    } finally {
      closeRaw(dirFd);
    }
  } finally {
    closeRaw(srcFd);
  }
}

/**
 * `trun export`: the container's whole file system as a tar, to `out`;
 * mount points (its /proc, /dev, /etc/hosts…) are empty, as Docker's.
 */
export async function exportRoot(root: ContainerRoot, out: TarOutput): Promise<number> {
  return await transfer([{ fd: root.fd, name: null }], false, (tar) => writeAll(tar, out));
}

/** The lexically cleaned container path, absolute (`cp` takes relative ones from the root). */
export function containerPath(path: string): string {
  const clean = cleanPath(path.startsWith("/") ? path : `/${path}`);
  // A trailing `/` or `/.` means something (a directory is asserted): keep it.
  if (namesContent(path)) return clean === "/" ? "/." : `${clean}/.`;
  return path.endsWith("/") && clean !== "/" ? `${clean}/` : clean;
}

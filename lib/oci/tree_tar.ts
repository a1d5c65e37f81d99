/**
 * Writes a directory tree as a tar stream (the writer beside layer_tar.ts's
 * reader, with the same `tar-stream` package), for `trun cp` and `trun
 * export`. The tree is reached through descriptors only: every entry is
 * opened with openat2(2) relative to its parent's descriptor, refusing
 * symlinks and magic links on the way (RESOLVE_NO_SYMLINKS,
 * RESOLVE_NO_MAGICLINKS, RESOLVE_BENEATH), so a container that swaps a
 * directory for a symlink to `/` while it is copied still cannot make trun
 * read a host file; contents are read through `/proc/self/fd/N`, which
 * reopens exactly the object found.
 *
 * Owners are written as the calling process sees them (inside trun's user
 * namespace helper, the container's own ids). Hard links within the tree
 * become tar hard links. Sockets have no tar form and are skipped. A file
 * that changes size while it is read (a running container) is cut or
 * padded to the size its header gave, as GNU tar does.
 *
 * Mount points inside the tree (the container's /proc, /dev, bind-mounted
 * /etc/hosts…) are not crossed by the walk, RESOLVE_NO_XDEV: each shows as
 * an empty directory or an empty file, as Docker's export shows them;
 * `followFileMounts` copies a bind-mounted file's content instead (cp).
 */
import type tarStream from "tar-stream";
import { Errno, SyscallError } from "../../ffi/errno.ts";
import { fstatFd, lgetxattr, lstatAt, openAt2, readlinkFd } from "../../ffi/fs.ts";
import { sys } from "../../ffi/syscall.ts";
import { decodeDev, O, RESOLVE, S, type StatFields } from "../../ffi/syscalls.ts";
import { drained } from "../util/stream.ts";

/** One top-level entry of the tar: an open descriptor (O_PATH is enough) and the name it gets. */
export interface TreeRoot {
  /** The entry's descriptor; it stays owned by the caller. */
  fd: number;
  /** Its name in the tar; null to write a directory's entries at the top instead of itself. */
  name: string | null;
}

/** Options of {@link packTree}. */
export interface PackTreeOptions {
  /** Copy the content of a regular file mounted inside the tree (a bind mount) instead of an empty file. */
  followFileMounts?: boolean;
  /**
   * The tree is an overlayfs upper directory and the tar an image layer
   * (`trun commit`): a 0/0 character device (overlayfs's whiteout) becomes
   * an OCI `.wh.NAME` entry, and a directory marked opaque (the
   * `user.overlay.opaque` or `trusted.overlay.opaque` xattr) gets a
   * `.wh..wh..opq` entry.
   */
  layer?: boolean;
}

/** A tar stream being written, and the end of its writing. */
export interface PackedTree {
  /** The tar bytes. */
  stream: AsyncIterable<Uint8Array>;
  /** Settles once every entry is written (rejects with what stopped the walk). */
  done: Promise<void>;
  /** Stops the walk (the reader failed): `done` then rejects with `err`. */
  cancel(err: Error): void;
}

/** The header fields this module gives tar-stream (its `HeaderArgument`). */
type EntryHeader = Partial<tarStream.Header> & Pick<tarStream.Header, "name">;

const CHILD_RESOLVE = RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS;
const CHUNK = 256 * 1024;

/** Closes a raw descriptor. */
function closeRaw(fd: number): void {
  sys("close", [fd]);
}

/** Opens `name` in directory `dirfd` as an O_PATH descriptor, not following it. */
function openChild(dirfd: number, name: string, noXdev: boolean): number {
  return openAt2(
    dirfd,
    name,
    O.PATH | O.NOFOLLOW | O.CLOEXEC,
    CHILD_RESOLVE | (noXdev ? RESOLVE.NO_XDEV : 0),
    `opening "${name}"`,
  );
}

/**
 * Writes `roots` (and everything under the directories among them) as one
 * tar stream. The walk runs as the stream is read.
 */
export async function packTree(
  roots: readonly TreeRoot[],
  opts: PackTreeOptions = {},
): Promise<PackedTree> {
  const tar = (await import("tar-stream")).default;
  const pack = tar.pack();
  const links = new Map<string, string>();

  const addEntry = async (header: EntryHeader, body?: (sink: Sink) => Promise<void>) => {
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry(header, (err) => (err ? reject(err) : resolve())) as unknown as Sink;
      if (body) body(sink).then(() => sink.end(), reject);
      else if (header.type === "file") sink.end();
    });
  };

  const headerOf = (name: string, st: StatFields): EntryHeader => ({
    name,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: new Date(Math.floor(st.mtime) * 1000),
  });

  // Writes the entry open at `fd` (its status `st`) under `name`, then its
  // children. `mountPoint`: a mount crossed without entering it.
  const walk = async (fd: number, name: string, st: StatFields, mountPoint: boolean) => {
    const type = st.mode & S.IFMT;
    const h = headerOf(name, st);
    if (type === S.IFDIR) {
      await addEntry({ ...h, name: `${name}/`, type: "directory" });
      if (opts.layer && isOpaque(fd)) {
        await addEntry({ ...h, name: `${name}/${WH_OPAQUE}`, mode: 0, type: "file", size: 0 });
      }
      if (!mountPoint) await children(fd, `${name}/`);
      return;
    }
    if (type === S.IFREG) {
      if (mountPoint) {
        await addEntry({ ...h, type: "file", size: 0 });
        return;
      }
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          await addEntry({ ...h, type: "link", linkname: first });
          return;
        }
        links.set(key, name);
      }
      await addEntry({ ...h, type: "file", size: st.size }, (sink) => copyBody(fd, st.size, sink));
      return;
    }
    if (type === S.IFLNK) {
      await addEntry({
        ...h,
        type: "symlink",
        linkname: readlinkFd(fd, `reading the symlink "${name}"`),
      });
      return;
    }
    if (type === S.IFCHR || type === S.IFBLK) {
      const { major, minor } = decodeDev(st.rdev);
      if (opts.layer && type === S.IFCHR && major === 0 && minor === 0) {
        const slash = name.lastIndexOf("/");
        const whiteout = `${name.slice(0, slash + 1)}${WH_PREFIX}${name.slice(slash + 1)}`;
        await addEntry({ ...h, name: whiteout, mode: 0, type: "file", size: 0 });
        return;
      }
      await addEntry({
        ...h,
        type: type === S.IFCHR ? "character-device" : "block-device",
        devmajor: major,
        devminor: minor,
      });
      return;
    }
    if (type === S.IFIFO) await addEntry({ ...h, type: "fifo" });
    // Sockets have no tar form.
  };

  // Writes the entries of the directory open at `fd`, their names under `prefix`.
  const children = async (fd: number, prefix: string) => {
    let names: string[];
    try {
      names = [...Deno.readDirSync(`/proc/self/fd/${fd}`)].map((e) => e.name).sort();
    } catch (e) {
      const why = e instanceof Deno.errors.PermissionDenied ? "permission denied" : String(e);
      throw new Error(`reading the directory "/${prefix}": ${why}`, { cause: e });
    }
    for (const n of names) {
      let child: number;
      let mountPoint = false;
      try {
        child = openChild(fd, n, true);
      } catch (e) {
        if (!(e instanceof SyscallError)) throw e;
        // Gone since the listing (a running container): nothing to copy.
        if (e.errno === Errno.ENOENT) continue;
        if (e.errno !== Errno.EXDEV) throw e;
        const st = lstatAt(fd, n, `reading the status of "${prefix}${n}"`);
        mountPoint = !(opts.followFileMounts && (st.mode & S.IFMT) === S.IFREG);
        child = openChild(fd, n, false);
      }
      try {
        await walk(child, `${prefix}${n}`, fstatFd(child), mountPoint);
      } finally {
        closeRaw(child);
      }
    }
  };

  const done = (async () => {
    for (const r of roots) {
      const st = fstatFd(r.fd);
      if (r.name === null) {
        if ((st.mode & S.IFMT) !== S.IFDIR) throw new Error("only a directory has entries to copy");
        await children(r.fd, "");
      } else {
        await walk(r.fd, r.name, st, false);
      }
    }
    pack.finalize();
  })();
  done.catch((err) => pack.destroy(err));
  return {
    stream: pack as unknown as AsyncIterable<Uint8Array>,
    done,
    cancel: (err) => pack.destroy(err),
  };
}

/** The OCI whiteout prefix, and the opaque-directory marker. */
const WH_PREFIX = ".wh.";
const WH_OPAQUE = ".wh..wh..opq";

/** Whether the directory open at `fd` is marked opaque for overlayfs (either namespace's xattr). */
function isOpaque(fd: number): boolean {
  const path = `/proc/self/fd/${fd}/.`;
  for (const name of ["user.overlay.opaque", "trusted.overlay.opaque"]) {
    try {
      const v = lgetxattr(path, name);
      if (v !== null && new TextDecoder().decode(v) === "y") return true;
    } catch {
      // trusted.* is not readable without CAP_SYS_ADMIN: not marked, as far as we can tell.
    }
  }
  return false;
}

/** The part of a tar-stream entry sink this module writes to. */
interface Sink {
  write(chunk: Uint8Array): boolean;
  end(): void;
  once(event: string, fn: (...args: unknown[]) => void): unknown;
  off(event: string, fn: (...args: unknown[]) => void): unknown;
}

// Copies exactly `size` bytes of the regular file open at `fd` into `sink`:
// cut if it grew since its status was read, padded with zeros if it shrank.
async function copyBody(fd: number, size: number, sink: Sink): Promise<void> {
  using f = Deno.openSync(`/proc/self/fd/${fd}`, { read: true });
  let left = size;
  const buf = new Uint8Array(Math.min(CHUNK, Math.max(size, 1)));
  while (left > 0) {
    const n = await f.read(buf.subarray(0, Math.min(buf.length, left)));
    if (n === null) break;
    left -= n;
    if (!sink.write(buf.slice(0, n))) await drained(sink);
  }
  while (left > 0) {
    const pad = new Uint8Array(Math.min(CHUNK, left));
    left -= pad.length;
    if (!sink.write(pad)) await drained(sink);
  }
}

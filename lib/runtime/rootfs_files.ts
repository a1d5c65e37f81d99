/**
 * Reads files of a container's root filesystem from the host before the
 * container starts (`/etc/passwd`, `/etc/group`), the way the container will
 * see them: symlinks are followed inside the root only (an absolute link is
 * relative to the root, `..` stops at it), and for layered roots the topmost
 * layer that has an entry wins, honouring overlay whiteouts (0/0 character
 * devices) and opaque directories.
 */
import { lchown, lgetxattr as getXattr, lstatBasic, lutimes, mknod } from "../../ffi/fs.ts";
import { decodeDev, S } from "../../ffi/syscalls.ts";

const MAX_SYMLINKS = 40;

/**
 * The topmost layer's entry at `comps` (components inside the root), or
 * null when there is none or the merged view hides it. Each layer is
 * walked down from its root with lstat, so no symlink inside a layer is
 * ever followed on the host. In a layer, an ancestor that is a whiteout or
 * not a directory hides the path in every lower layer; an ancestor that is
 * an opaque directory hides it in the lower layers when this layer lacks
 * it; an ancestor that is simply missing hides nothing.
 */
function lookup(
  layers: readonly string[],
  comps: readonly string[],
): { path: string; info: EntryType } | null {
  for (const [i, layer] of layers.entries()) {
    const lowest = i === layers.length - 1;
    const ancestors: string[] = [];
    let path = layer;
    for (const [k, c] of comps.entries()) {
      path = `${path}/${c}`;
      const info = lstatOrNull(path);
      if (info === null) break; // missing in this layer
      if (info.isWhiteout) return null;
      if (k === comps.length - 1) return { path, info };
      if (!info.isDirectory) return null; // a file or link here replaces the lower directories
      ancestors.push(path);
    }
    if (comps.length === 0) {
      const info = lstatOrNull(layer);
      if (info !== null) return { path: layer, info };
    }
    // Missing here; an opaque ancestor hides the lower layers (the lowest
    // layer has none to hide, and skipping it spares the run path a syscall
    // binding).
    if (!lowest && ancestors.some(isOpaque)) return null;
  }
  return null;
}

/** The type of an entry, from one raw lstat (no FileInfo, no exception when missing). */
interface EntryType {
  isSymlink: boolean;
  isDirectory: boolean;
  isFile: boolean;
  /** An overlay whiteout: a character device 0/0. */
  isWhiteout: boolean;
}

function lstatOrNull(path: string): EntryType | null {
  const st = lstatBasic(path);
  if (st === null) return null;
  const type = st.mode & S.IFMT;
  return {
    isSymlink: type === S.IFLNK,
    isDirectory: type === S.IFDIR,
    isFile: type === S.IFREG,
    isWhiteout: type === S.IFCHR && st.rdev === 0,
  };
}

function isOpaque(dir: string): boolean {
  try {
    const v = getXattr(dir, "user.overlay.opaque") ?? getXattr(dir, "trusted.overlay.opaque");
    return v !== null && v[0] === 0x79; // "y"
  } catch {
    return false;
  }
}

/** What a path inside the root names. */
export type RootfsEntry =
  /** An existing entry: its host path and type. */
  | { kind: "file" | "dir" | "other"; host: string }
  /** No entry, but the parent is a directory: a file could be created there. */
  | { kind: "missing" }
  /** Unreachable: a missing parent, a non-directory on the way, a symlink loop. */
  | { kind: "unreachable" };

/**
 * Resolves `path` inside the root made of `layers` (top first), following
 * symlinks inside the root only.
 */
export function resolveEntry(layers: readonly string[], path: string): RootfsEntry {
  return resolveWithComponents(layers, path).entry;
}

/** {@link resolveEntry}, with the components inside the root the path resolved to. */
function resolveWithComponents(
  layers: readonly string[],
  path: string,
): { entry: RootfsEntry; comps: string[] } {
  const pending = path.split("/").filter((c) => c !== "" && c !== ".");
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const c = pending.shift()!;
    if (c === "..") {
      done.pop();
      continue;
    }
    const found = lookup(layers, [...done, c]);
    if (!found) {
      return { entry: pending.length ? { kind: "unreachable" } : { kind: "missing" }, comps: done };
    }
    if (found.info.isSymlink) {
      if (++links > MAX_SYMLINKS) return { entry: { kind: "unreachable" }, comps: done };
      const target = Deno.readLinkSync(found.path);
      if (target.startsWith("/")) done.length = 0;
      pending.unshift(...target.split("/").filter((x) => x !== "" && x !== "."));
      continue;
    }
    done.push(c);
    if (pending.length && !found.info.isDirectory) {
      return { entry: { kind: "unreachable" }, comps: done };
    }
    if (!pending.length) {
      const kind = found.info.isFile ? "file" : found.info.isDirectory ? "dir" : "other";
      return { entry: { kind, host: found.path }, comps: done };
    }
  }
  const root = layers[0];
  return {
    entry: root === undefined ? { kind: "unreachable" } : { kind: "dir", host: root },
    comps: done,
  };
}

/**
 * The entries of the directory at `comps` (components inside the root, no
 * symlinks) as the merged view shows them: name → host path of the topmost
 * layer's entry. Whiteouts hide lower entries; a whiteout or non-directory
 * on the way, or an opaque directory, hides the lower layers.
 */
function mergedChildren(layers: readonly string[], comps: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const hidden = new Set<string>();
  for (const layer of layers) {
    let path = layer;
    let present = true;
    let blocked = false;
    let opaque = false;
    for (const c of comps) {
      path = `${path}/${c}`;
      const info = lstatOrNull(path);
      if (info === null) {
        present = false;
        break;
      }
      if (info.isWhiteout || !info.isDirectory) {
        blocked = true;
        break;
      }
      if (isOpaque(path)) opaque = true;
    }
    if (blocked) break;
    if (present) {
      for (const e of Deno.readDirSync(path)) {
        if (out.has(e.name) || hidden.has(e.name)) continue;
        if (lstatOrNull(`${path}/${e.name}`)?.isWhiteout) hidden.add(e.name);
        else out.set(e.name, `${path}/${e.name}`);
      }
    }
    if (opaque) break;
  }
  return out;
}

/** What {@link copyDirOut} found at the path: nothing to copy, or what it copied. */
export type CopyOutResult =
  /** The path is not a directory in the root (missing, a file, unreachable). */
  | { copied: false }
  /** Copied: how many entries. */
  | { copied: true; entries: number };

/**
 * Visits the merged tree of the directory at `path` inside the root made
 * of `layers`, parents before children: `visit` gets each entry's path
 * relative to it, the host path of the entry that shows and its lstat.
 * Returns the directory's own host path, or null when `path` is not a
 * directory in the root.
 */
function walkMergedDir(
  layers: readonly string[],
  path: string,
  visit: (rel: string, host: string, st: Deno.FileInfo) => void,
): string | null {
  const { entry, comps } = resolveWithComponents(layers, path);
  if (entry.kind !== "dir") return null;
  const walk = (from: readonly string[], rel: string) => {
    for (const [name, host] of mergedChildren(layers, from)) {
      const st = Deno.lstatSync(host);
      visit(`${rel}${name}`, host, st);
      if (st.isDirectory) walk([...from, name], `${rel}${name}/`);
    }
  };
  walk(comps, "");
  return entry.host;
}

/**
 * The owners (`uid:gid`) of the directory at `path` in the root and of
 * everything under it, or null when it is not a directory there.
 */
export function mergedDirOwners(layers: readonly string[], path: string): Set<string> | null {
  const owners = new Set<string>();
  const top = walkMergedDir(layers, path, (_rel, _host, st) => owners.add(`${st.uid}:${st.gid}`));
  if (top === null) return null;
  const st = Deno.statSync(top);
  owners.add(`${st.uid}:${st.gid}`);
  return owners;
}

/**
 * Copies the directory at `path` inside the root made of `layers` (the
 * merged view: whiteouts and opaque directories honoured, symlinks on the
 * way resolved inside the root) into the existing directory `dest`:
 * contents with their owners, modes, times and hard links, then the
 * directory's own owner and mode onto `dest` — Docker's copy-up of an
 * image's content into an empty volume. Owners other than the caller's
 * need root, or the storage user namespace.
 */
export function copyDirOut(layers: readonly string[], path: string, dest: string): CopyOutResult {
  const links = new Map<string, string>();
  const dirs: [string, Deno.FileInfo][] = [];
  let entries = 0;
  const top = walkMergedDir(layers, path, (rel, host, st) => {
    const target = `${dest}/${rel}`;
    entries++;
    if (st.isDirectory) {
      Deno.mkdirSync(target, { mode: 0o700 });
      // Directories get their owner, mode and times after their content.
      dirs.push([target, st]);
      return;
    }
    const key = `${st.dev}:${st.ino}`;
    const first = (st.nlink ?? 1) > 1 ? links.get(key) : undefined;
    if (first !== undefined) {
      Deno.linkSync(first, target);
      return;
    }
    if (st.isSymlink) Deno.symlinkSync(Deno.readLinkSync(host), target);
    else if (st.isFile) Deno.copyFileSync(host, target);
    else {
      const dev = decodeDev(st.rdev ?? 0);
      mknod(target, st.mode ?? 0, dev.major, dev.minor);
    }
    if ((st.nlink ?? 1) > 1) links.set(key, target);
    setMeta(target, st);
  });
  if (top === null) return { copied: false };
  for (const [dir, st] of dirs.reverse()) setMeta(dir, st);
  setMeta(dest, Deno.statSync(top));
  return { copied: true, entries };
}

/** Gives `path` the owner, mode and times of `st` (owner first: chown clears set-id bits). */
function setMeta(path: string, st: Deno.FileInfo): void {
  lchown(path, st.uid ?? 0, st.gid ?? 0);
  if (!st.isSymlink) Deno.chmodSync(path, (st.mode ?? 0) & 0o7777);
  const atime = st.atime?.getTime() ?? 0;
  const mtime = st.mtime?.getTime() ?? 0;
  lutimes(path, atime / 1000, mtime / 1000);
}

/**
 * Resolves `path` inside the root made of `layers` (top first) and returns
 * the host path of the regular file it names, or null when it does not exist
 * or is not a regular file.
 */
export function resolveInRootfs(layers: readonly string[], path: string): string | null {
  const e = resolveEntry(layers, path);
  return e.kind === "file" ? e.host : null;
}

/** Whether a file can be bind-mounted at `path`: it is a regular file, or missing in an existing directory. */
export function canBindFileAt(layers: readonly string[], path: string): boolean {
  const e = resolveEntry(layers, path);
  return e.kind === "file" || e.kind === "missing";
}

/** Reads a text file inside the root, or null when it does not exist there. */
export function readRootfsText(layers: readonly string[], path: string): string | null {
  const host = resolveInRootfs(layers, path);
  if (host === null) return null;
  try {
    return Deno.readTextFileSync(host);
  } catch {
    return null;
  }
}

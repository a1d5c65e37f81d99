/**
 * Reads files of a container's root filesystem from the host before the
 * container starts (`/etc/passwd`, `/etc/group`), the way the container will
 * see them: symlinks are followed inside the root only (an absolute link is
 * relative to the root, `..` stops at it), and for layered roots the topmost
 * layer that has an entry wins, honouring overlay whiteouts (0/0 character
 * devices) and opaque directories.
 */
import { lgetxattr as getXattr, lstatBasic } from "../../ffi/fs.ts";
import { S } from "../../ffi/syscalls.ts";

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
    if (!found) return pending.length ? { kind: "unreachable" } : { kind: "missing" };
    if (found.info.isSymlink) {
      if (++links > MAX_SYMLINKS) return { kind: "unreachable" };
      const target = Deno.readLinkSync(found.path);
      if (target.startsWith("/")) done.length = 0;
      pending.unshift(...target.split("/").filter((x) => x !== "" && x !== "."));
      continue;
    }
    done.push(c);
    if (pending.length && !found.info.isDirectory) return { kind: "unreachable" };
    if (!pending.length) {
      const kind = found.info.isFile ? "file" : found.info.isDirectory ? "dir" : "other";
      return { kind, host: found.path };
    }
  }
  const root = layers[0];
  return root === undefined ? { kind: "unreachable" } : { kind: "dir", host: root };
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

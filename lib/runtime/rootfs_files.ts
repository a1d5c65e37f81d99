/**
 * Reads files of a container's root filesystem from the host before the
 * container starts (`/etc/passwd`, `/etc/group`), the way the container will
 * see them: symlinks are followed inside the root only (an absolute link is
 * relative to the root, `..` stops at it), and for layered roots the topmost
 * layer that has an entry wins, honouring overlay whiteouts (0/0 character
 * devices) and opaque directories.
 */
import { getXattr } from "../../ffi/syscall.ts";

const MAX_SYMLINKS = 40;

/** The layer that holds `rel` (components inside the root), or null. */
function lookup(
  layers: readonly string[],
  comps: readonly string[],
): { path: string; info: Deno.FileInfo } | null {
  for (const [i, layer] of layers.entries()) {
    const path = comps.length ? `${layer}/${comps.join("/")}` : layer;
    const lowest = i === layers.length - 1;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch {
      // Missing here; but an opaque parent directory hides lower layers
      // (the lowest layer has none to hide, and skipping it spares the run
      // path a syscall binding).
      if (!lowest && comps.length > 1 && isOpaque(`${layer}/${comps.slice(0, -1).join("/")}`)) {
        return null;
      }
      continue;
    }
    if (info.isCharDevice && info.rdev === 0) return null; // whiteout
    return { path, info };
  }
  return null;
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

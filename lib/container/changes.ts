/**
 * What `trun diff` reports: the changes a container's writable layer makes
 * to its image, as Docker's `A` (added), `C` (changed) and `D` (deleted)
 * lines. Pure: it reads the layers through {@link LayerTree}, so tests
 * give it trees in memory and lib/container/diff.ts gives it directories.
 *
 * The writable layer is an overlayfs upper directory (the kernel's
 * Documentation/filesystems/overlayfs.rst), and so are the image layers
 * below it as trun unpacks them. A deletion is written as a whiteout in
 * any of the forms the layers may hold:
 *
 * - a character device 0/0 (the kernel's overlay; trun's image layers);
 * - a regular file with the `overlay.whiteout` xattr (Linux ≥ 6.7's
 *   "xwhiteouts", in lower layers);
 * - a file named `.wh.NAME` (fuse-overlayfs, and image layer tars);
 *
 * and a directory whose lower content is hidden ("opaque": deleted, then
 * made again) carries `overlay.opaque=y` or holds `.wh..wh..opq`. The
 * xattrs are `trusted.overlay.*` for an overlay mounted by real root
 * without `userxattr`, `user.overlay.*` with `userxattr` (how trun mounts
 * every root, rootless or not); both are read.
 *
 * Docker's rules (moby's archive changes and its two-tree comparison):
 * an entry of the upper layer is `A` when the image has nothing there and
 * `C` when it has; a directory that exists below is `C` only when its own
 * mode or owner changed or something under it is reported; an
 * added directory lists everything in it as `A`; a whiteout is `D` of the
 * one path (not its content). An opaque directory over a directory of the
 * image is `C`, with `D` for each entry of the image it hides and the new
 * content as `A`/`C`, as the comparison of the two trees reports it.
 * Lines come in Docker's order: a depth-first walk, names sorted, each
 * directory before its content.
 */

/** Docker's three kinds of change. */
export type ChangeKind = "A" | "C" | "D";

/** One line of `trun diff`. */
export interface Change {
  /** `A`, `C` or `D`. */
  kind: ChangeKind;
  /** The absolute path inside the container. */
  path: string;
}

/** What {@link computeChanges} needs to know of one entry of a layer (lstat, never following). */
export interface LayerEntry {
  /** The file type. */
  type: "dir" | "file" | "symlink" | "char" | "block" | "fifo" | "socket";
  /** Permission bits (and set-id bits). */
  mode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** Device numbers of a character or block device. */
  rdev?: { major: number; minor: number };
  /** `overlay.opaque` (either namespace) of a directory, when set. */
  opaque?: string;
  /** Whether a regular file carries `overlay.whiteout` (either namespace). */
  whiteoutXattr?: boolean;
}

/** Read access to one layer: entries and directory listings by path relative to its root ("" is the root). */
export interface LayerTree {
  /** The entry at `rel`, or null when there is none (or a parent is not a directory). */
  entry(rel: string): LayerEntry | null;
  /** The names in directory `rel`, as stored (whiteout files included). */
  children(rel: string): string[];
}

/** The whiteout prefix of image layers and fuse-overlayfs. */
const WH = ".wh.";
/** The opaque-directory marker file of image layers and fuse-overlayfs. */
const WH_OPAQUE = ".wh..wh..opq";

/** Whether an entry is a whiteout in itself (a 0/0 character device, or an xwhiteout file). */
export function isWhiteoutEntry(e: LayerEntry): boolean {
  if (e.type === "char") return e.rdev?.major === 0 && e.rdev?.minor === 0;
  return e.type === "file" && e.whiteoutXattr === true;
}

const join = (dir: string, name: string) => (dir === "" ? name : `${dir}/${name}`);
const parentOf = (rel: string) => {
  const i = rel.lastIndexOf("/");
  return i < 0 ? "" : rel.slice(0, i);
};
const baseOf = (rel: string) => rel.slice(rel.lastIndexOf("/") + 1);

/** Whether directory `rel` of `tree` is opaque: by xattr, or by a `.wh..wh..opq` inside. */
function isOpaqueDir(tree: LayerTree, rel: string, e: LayerEntry): boolean {
  if (e.type !== "dir") return false;
  return e.opaque === "y" || tree.entry(join(rel, WH_OPAQUE)) !== null;
}

/** Whether `rel` is deleted in `tree` by a whiteout of either kind. */
function whitedOut(tree: LayerTree, rel: string, e: LayerEntry | null): boolean {
  if (e !== null && isWhiteoutEntry(e)) return true;
  return tree.entry(join(parentOf(rel), WH + baseOf(rel))) !== null;
}

/**
 * The entry the image shows at `rel`: the lower layers (top first) merged
 * as overlayfs merges them. Null when no layer has it, a whiteout or a
 * non-directory above hides it, or an opaque directory above stops the
 * layers below.
 */
export function lowerEntry(lowers: readonly LayerTree[], rel: string): LayerEntry | null {
  const parts = rel.split("/");
  for (const layer of lowers) {
    let stop = false;
    let prefix = "";
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = join(prefix, parts[i]!);
      const pe = layer.entry(prefix);
      if (whitedOut(layer, prefix, pe)) return null;
      if (pe === null) continue;
      // A file here hides anything the layers below have under this name.
      if (pe.type !== "dir") return null;
      if (isOpaqueDir(layer, prefix, pe)) stop = true;
    }
    const e = layer.entry(rel);
    if (whitedOut(layer, rel, e)) return null;
    if (e !== null) return e;
    if (stop) return null;
  }
  return null;
}

/** The names the image shows in directory `rel` (whiteouts and hidden entries left out). */
export function lowerChildren(lowers: readonly LayerTree[], rel: string): string[] {
  const names = new Set<string>();
  for (const layer of lowers) {
    for (const n of layer.children(rel)) if (!n.startsWith(WH)) names.add(n);
  }
  return [...names].filter((n) => lowerEntry(lowers, join(rel, n)) !== null);
}

/**
 * Whether a directory's own metadata differs between the writable layer
 * and the image: mode and owner, as Docker's two-tree comparison (its
 * mtime changes with every entry made or removed in it, and those are
 * reported, or are the runtime's mount points, which are not).
 */
function dirChanged(upper: LayerEntry, lower: LayerEntry): boolean {
  return upper.mode !== lower.mode || upper.uid !== lower.uid || upper.gid !== lower.gid;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The changes the writable layer `upper` makes to the image `lowers` (top
 * first), in Docker's order. `ignore` lists absolute paths the runtime
 * made as mount points (`/etc/hosts`, `/proc`…), which are no change of
 * the user's: Docker keeps them in a layer of their own ("init"), Podman
 * filters them out likewise.
 */
export function computeChanges(
  upper: LayerTree,
  lowers: readonly LayerTree[],
  ignore: ReadonlySet<string> = new Set(),
): Change[] {
  const out: Change[] = [];
  walk("", false);
  return out;

  // Reports what directory `rel` of the upper layer holds; `added` when the
  // directory itself is new (everything in it is then `A`). Returns whether
  // anything was reported.
  function walk(rel: string, added: boolean): boolean {
    const start = out.length;
    const groups = new Map<string, () => void>();
    const present = new Set<string>();
    for (const name of upper.children(rel)) {
      if (name === WH_OPAQUE || name.startsWith(WH + WH)) continue;
      if (ignore.has(`/${join(rel, name)}`)) continue;
      if (name.startsWith(WH)) {
        const victim = name.slice(WH.length);
        if (!added && victim !== "") {
          groups.set(victim, () => out.push({ kind: "D", path: `/${join(rel, victim)}` }));
        }
        continue;
      }
      const child = join(rel, name);
      const e = upper.entry(child);
      if (e === null) continue;
      if (isWhiteoutEntry(e)) {
        if (!added) groups.set(name, () => out.push({ kind: "D", path: `/${child}` }));
        continue;
      }
      present.add(name);
      groups.set(name, () => entry(child, e, added));
    }
    // An opaque directory hides what the image had in it: each hidden entry
    // the upper layer does not have again is deleted.
    const self = rel === "" ? null : upper.entry(rel);
    if (!added && self !== null && isOpaqueDir(upper, rel, self)) {
      for (const name of lowerChildren(lowers, rel)) {
        if (!present.has(name) && !groups.has(name)) {
          groups.set(name, () => out.push({ kind: "D", path: `/${join(rel, name)}` }));
        }
      }
    }
    for (const name of [...groups.keys()].sort(byName)) groups.get(name)!();
    return out.length > start;
  }

  function entry(child: string, e: LayerEntry, added: boolean): void {
    const lower = added ? null : lowerEntry(lowers, child);
    if (lower === null) {
      out.push({ kind: "A", path: `/${child}` });
      if (e.type === "dir") walk(child, true);
      return;
    }
    if (e.type !== "dir") {
      out.push({ kind: "C", path: `/${child}` });
      return;
    }
    // Reserve the directory's line, then keep it only if it is a change.
    const at = out.length;
    out.push({ kind: "C", path: `/${child}` });
    const inner = walk(child, false);
    const changed = lower.type !== "dir" || isOpaqueDir(upper, child, e) || dirChanged(e, lower);
    if (!inner && !changed) out.splice(at, 1);
  }
}

/** The lines `trun diff` prints: `C /etc`, one per change. */
export function formatChanges(changes: readonly Change[]): string[] {
  return changes.map((c) => `${c.kind} ${c.path}`);
}

/**
 * `trun diff` on disk: reads a container's writable layer and the lower
 * layers it was created on (`userdata/rootfs.json`) as {@link LayerTree}s
 * and hands them to the pure comparison in changes.ts. Rootless, the
 * layers hold files of subordinate ids, so this runs in the storage user
 * namespace (main.ts arranges it).
 */
import { lgetxattr } from "../../ffi/fs.ts";
import { decodeDev } from "../../ffi/syscalls.ts";
import { type Change, computeChanges, type LayerEntry, type LayerTree } from "./changes.ts";
import { normalizePath } from "../util/path.ts";
import { containerPaths, type RootfsLayout } from "./detached.ts";

const OPAQUE_XATTRS = ["user.overlay.opaque", "trusted.overlay.opaque"];
const WHITEOUT_XATTRS = ["user.overlay.whiteout", "trusted.overlay.whiteout"];

function typeOf(st: Deno.FileInfo): LayerEntry["type"] {
  if (st.isDirectory) return "dir";
  if (st.isFile) return "file";
  if (st.isSymlink) return "symlink";
  if (st.isCharDevice) return "char";
  if (st.isBlockDevice) return "block";
  if (st.isFifo) return "fifo";
  return "socket";
}

function firstXattr(path: string, names: readonly string[]): string | undefined {
  for (const n of names) {
    const v = lgetxattr(path, n);
    if (v !== null) return new TextDecoder().decode(v);
  }
  return undefined;
}

/** A layer directory on disk, read with lstat (never following a symlink), cached per path. */
export function diskLayer(root: string): LayerTree {
  const entries = new Map<string, LayerEntry | null>();
  return {
    entry(rel) {
      const cached = entries.get(rel);
      if (cached !== undefined) return cached;
      const path = rel === "" ? root : `${root}/${rel}`;
      let e: LayerEntry | null = null;
      try {
        const st = Deno.lstatSync(path);
        const type = typeOf(st);
        e = {
          type,
          mode: st.mode! & 0o7777,
          uid: st.uid!,
          gid: st.gid!,
        };
        if (type === "char" || type === "block") e.rdev = decodeDev(st.rdev ?? 0);
        if (type === "dir") {
          const opaque = firstXattr(path, OPAQUE_XATTRS);
          if (opaque !== undefined) e.opaque = opaque;
        }
        // An xwhiteout is an empty file; only those need the extra call.
        if (type === "file" && st.size === 0 && firstXattr(path, WHITEOUT_XATTRS) !== undefined) {
          e.whiteoutXattr = true;
        }
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) {
          throw err;
        }
      }
      entries.set(rel, e);
      return e;
    },
    children(rel) {
      const path = rel === "" ? root : `${root}/${rel}`;
      try {
        return [...Deno.readDirSync(path)].map((d) => d.name);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
          return [];
        }
        throw err;
      }
    },
  };
}

/** The mount destinations of a container's spec: the runtime makes any that the image lacks. */
function mountPoints(specPath: string): Set<string> {
  const spec = JSON.parse(Deno.readTextFileSync(specPath)) as {
    mounts?: { destination?: unknown }[];
  };
  const out = new Set<string>();
  for (const m of spec.mounts ?? []) {
    if (typeof m.destination === "string") out.add(normalizePath(m.destination));
  }
  return out;
}

/** The changes of the container whose directory is `dir` against its image (or `--rootfs` DIR). */
export function containerChanges(dir: string): Change[] {
  const p = containerPaths(dir);
  const layout = JSON.parse(Deno.readTextFileSync(p.rootfs)) as RootfsLayout;
  return computeChanges(diskLayer(p.upper), layout.lowers.map(diskLayer), mountPoints(p.spec));
}

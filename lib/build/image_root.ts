/**
 * An image's file system as one read-only tree, for the build steps that
 * read it without a container: what COPY and WORKDIR find at their
 * destination (to keep an existing directory's owner and mode), and the
 * sources of `COPY --from`. The layers are mounted as a lower-only overlay
 * with fsmount(2), attached nowhere and reached as `/proc/self/fd/N`, so
 * the kernel's own whiteout and opaque-directory rules apply. Rootless,
 * this runs in trun's storage user namespace, which has a mount namespace
 * of its own (as `trun cp` into a stopped container does).
 */
import { fsmountDetached } from "../../ffi/fs.ts";
import { closeFd } from "../../ffi/child_program.ts";
import { escapeOverlayPath } from "../engine/program.ts";
import { kernelAtLeast } from "../container/facts.ts";
import type { Store } from "../store/mod.ts";

/** A mounted image root: `path` reads it until `close()`. */
export interface ImageRoot {
  /** `/proc/self/fd/N` of the mount, or the single layer's directory. */
  path: string;
  /** Unmounts it. */
  close(): void;
}

/** Mounts image `imageId` read-only; an image without layers is an empty tree. */
export function openImageRoot(store: Store, imageId: string, emptyDir: string): ImageRoot {
  const lowers = store.layerPaths(imageId).slice().reverse();
  if (lowers.length === 0) return { path: emptyDir, close: () => {} };
  // overlayfs needs two lowers without an upper; one layer is its own tree.
  if (lowers.length === 1) return { path: lowers[0]!, close: () => {} };
  // fsconfig takes strings of at most 256 bytes: one `lowerdir+` per
  // layer where the kernel has it (6.8), else the colon-separated list.
  const layers: [string, string | null][] = kernelAtLeast(6, 8, Deno.osRelease())
    ? lowers.map((l) => ["lowerdir+", l])
    : [["lowerdir", lowers.map(escapeOverlayPath).join(":")]];
  const fd = fsmountDetached(
    "overlay",
    [...layers, ["userxattr", null]],
    `mounting the layers of image ${imageId.slice(7, 19)}`,
  );
  return { path: `/proc/self/fd/${fd}`, close: () => closeFd(fd) };
}

/**
 * A container's writable layer (its overlayfs upper directory) as an image
 * layer tar, for `trun commit` and the RUN steps of `trun build`: overlayfs
 * whiteouts become OCI `.wh.` entries and opaque directories get their
 * `.wh..wh..opq` marker (lib/oci/tree_tar.ts does the walk).
 */
import type { ContainerRecord } from "../store/mod.ts";

/** A layer tar being written, and how to stop reading it. */
export interface WritableLayer {
  /** The tar bytes. */
  stream: AsyncIterable<Uint8Array>;
  /** Settles when every entry is written. */
  done: Promise<void>;
  /** Releases the directory. */
  close(): void;
}

/** The writable layer at `upper` as an image layer tar (whiteouts in OCI's form). */
export async function upperLayer(upper: string, rec: ContainerRecord): Promise<WritableLayer> {
  const { openAt2 } = await import("../../ffi/fs.ts");
  const { AT, O } = await import("../../ffi/syscalls.ts");
  const { closeFd } = await import("../../ffi/child_program.ts");
  const { packTree } = await import("../oci/tree_tar.ts");
  let fd: number;
  try {
    fd = openAt2(AT.FDCWD, upper, O.PATH | O.DIRECTORY | O.CLOEXEC, 0, `opening "${upper}"`);
  } catch (e) {
    throw Object.assign(
      new Error(
        `reading the writable layer of container ${rec.id.slice(0, 12)}: ${(e as Error).message}`,
      ),
      { exitCode: 125 },
    );
  }
  const packed = await packTree([{ fd, name: null }], { layer: true });
  return { stream: packed.stream, done: packed.done, close: () => closeFd(fd) };
}

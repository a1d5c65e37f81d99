/**
 * Tar-split records in the store: `layers/<chain hex>.tar-split.gz` beside
 * each unpacked layer (never inside it: the layer directory is an overlay
 * lower layer, and a file there would show in containers). With a record,
 * the layer's uncompressed tar is rebuilt from the directory, so the
 * compressed blob is dropped once the layer is committed, unless the store
 * is set to keep blobs (`TRUN_KEEP_BLOBS=1`). Layers unpacked before
 * records existed have none and keep their blob; their tar comes from it.
 */

import { createGunzip, createGzip, createZstdDecompress, type Gzip } from "node:zlib";
import { createReadStream } from "node:fs";
import { type LayerFileReader, rebuildTar, TarSplitError } from "../oci/tar_split.ts";
import { blobPath, createHash, parseDigest, writeAll } from "./blobs.ts";
import { hasRecord, recordPath } from "./layer_record_paths.ts";
import { throughTransform } from "../util/stream.ts";

/**
 * Writes a record, gzip'd, to a new file as it is produced. `close()`
 * flushes it; the caller makes it durable (the syncfs(2) of the layer's
 * file system before the commit covers it: an fsync of its own cost a
 * pull about 0.1 s on a busy disk) and renames it into place.
 */
export class RecordFileWriter {
  readonly #file: Deno.FsFile;
  readonly #gzip: Gzip;
  #failure: unknown;

  /** Creates `path` (it must not exist). */
  constructor(path: string) {
    this.#file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
    // Level 1: headers compress well anyway, and this runs during every pull.
    this.#gzip = createGzip({ level: 1 });
    this.#gzip.on("data", (chunk: Uint8Array) => {
      try {
        writeAll(this.#file, chunk);
      } catch (err) {
        this.#failure ??= err;
      }
    });
    this.#gzip.on("error", (err) => this.#failure ??= err);
  }

  /** Appends record bytes. */
  write(bytes: Uint8Array): void {
    this.#gzip.write(bytes);
  }

  /** Ends the gzip stream and closes the file; throws what writing met. */
  async close(): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => {
        this.#gzip.once("end", resolve);
        this.#gzip.once("error", reject);
        this.#gzip.end();
      });
      if (this.#failure !== undefined) throw this.#failure;
    } finally {
      this.#file.close();
    }
  }

  /** Gives up (after a failed unpack); the caller removes the file. */
  abort(): void {
    this.#gzip.destroy();
    this.#file.close();
  }
}

/** Reads files of an unpacked layer directory for {@link rebuildTar}, never through a symlink. */
export function layerFiles(dir: string): LayerFileReader {
  return {
    open(rel) {
      const path = `${dir}/${rel}`;
      const st = Deno.lstatSync(path);
      if (!st.isFile) throw new Error("it is no longer a regular file");
      const f = Deno.openSync(path, { read: true });
      const now = f.statSync();
      if (now.ino !== st.ino || now.dev !== st.dev) {
        f.close();
        throw new Error("it was replaced while being opened");
      }
      return {
        size: now.size,
        async *chunks() {
          const buf = new Uint8Array(256 * 1024);
          for (;;) {
            const n = await f.read(buf);
            if (n === null) return;
            yield buf.slice(0, n);
          }
        },
        close: () => f.close(),
      };
    },
  };
}

/** A layer whose uncompressed tar {@link layerTar} can produce. */
export interface TarSource {
  /** The layer's chain id (names its directory and record). */
  chain: string;
  /** The diff id: the tar's sha256, checked at the end. */
  diffId: string;
  /** The blob it was unpacked from (used when there is no record). */
  blobDigest: string;
}

/**
 * The exact uncompressed tar of a stored layer: rebuilt from its record and
 * directory, or, for a layer without a record, decompressed from its blob.
 * The stream's sha256 is checked against the diff id before it ends; a
 * mismatch, a changed file or a missing blob throws, naming the layer.
 * Reading files of subordinate ids needs the storage user namespace.
 */
export async function* layerTar(root: string, layer: TarSource): AsyncGenerator<Uint8Array> {
  const what = `Layer ${layer.diffId}`;
  const hash = createHash(parseDigest(layer.diffId).algorithm);
  let source: AsyncIterable<Uint8Array>;
  if (hasRecord(root, layer.chain)) {
    const record = throughTransform(
      createReadStream(recordPath(root, layer.chain)) as AsyncIterable<Uint8Array>,
      createGunzip(),
    );
    const dir = `${root}/layers/${parseDigest(layer.chain).hex}`;
    source = rebuildTar(record, layerFiles(dir), what);
  } else {
    const path = blobPath(root, layer.blobDigest);
    const head = new Uint8Array(4);
    let n: number;
    try {
      using f = Deno.openSync(path, { read: true });
      n = f.readSync(head) ?? 0;
    } catch (err) {
      throw new TarSplitError(
        `${what} has neither a tar-split record nor its blob ${layer.blobDigest}: remove the image and pull it again (${
          (err as Error).message
        })`,
      );
    }
    const { detectCompression } = await import("../oci/layer_tar.ts");
    const compression = detectCompression(head.subarray(0, n));
    const blob = createReadStream(path, { highWaterMark: 256 * 1024 }) as AsyncIterable<
      Uint8Array
    >;
    source = compression === "none" ? blob : throughTransform(
      blob,
      compression === "gzip" ? createGunzip() : createZstdDecompress(),
    );
  }
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
  const actual = `${parseDigest(layer.diffId).algorithm}:${hash.digest("hex")}`;
  if (actual !== layer.diffId) {
    throw new TarSplitError(
      `${what} was rebuilt as ${actual}, not its diff id: the unpacked layer was changed; remove the image and pull it again`,
    );
  }
}

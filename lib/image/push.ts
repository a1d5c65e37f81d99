/**
 * `trun push`: upload a stored image to its registry. Blobs the registry
 * already has are skipped (HEAD), the others go up a few at a time, then
 * the manifest is put under the tag — last, so a tag never points at an
 * image whose blobs are missing.
 *
 * The store keeps a layer's compressed blob only on request (it rebuilds
 * the uncompressed tar from the unpacked layer instead). A layer whose blob
 * is gone is first offered to the registry by its original digest: it may
 * have it already, or mount it from the repository the image was pulled
 * from on the same registry (a cross-repository mount). Otherwise its tar
 * is compressed again (gzip, or zstd on request) into an unnamed scratch
 * file and uploaded under the new digest, and the manifest is rewritten
 * with the new digests and sizes, as Docker does. When every layer keeps
 * its digest, the manifest goes up as the exact bytes stored.
 */

import { createHash } from "node:crypto";
import type { Transform } from "node:stream";
import {
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_ZSTD,
  MEDIA_TYPE_OCI_MANIFEST,
  parseManifest,
} from "../oci/manifest.ts";
import { runBounded } from "./pull.ts";
import type { TarSource } from "../store/layer_records.ts";
import { throughTransform } from "../util/stream.ts";
import { type ImageReference, parseReference } from "../oci/reference.ts";
import { loadRegistriesConfig, type RegistriesConfig } from "./registries_config.ts";
import { RegistryClient, type RegistryClientOptions } from "./registry_client.ts";

/** The part of the store a push uses. */
export interface PushStore {
  /** The image a reference (or id) names, if any. */
  findImage(
    query: string,
  ): { id: string; manifestDigest: string; digests?: readonly string[] } | undefined;
  /** The stored bytes and media type of a manifest, if the store has it. */
  getManifest(digest: string): { mediaType: string; bytes: Uint8Array } | undefined;
  /** True when the blob is complete in the store. */
  hasBlob(digest: string): boolean;
  /** Final path of a stored blob. */
  blobPath(digest: string): string;
  /** An image's layers, bottom first, for {@link layerTar}. */
  imageTars?(imageId: string): (TarSource & { tarSize: number })[];
  /** A stored layer's exact uncompressed tar (checked against its diff id). */
  layerTar?(layer: TarSource): AsyncIterable<Uint8Array>;
  /** A new file with no name on disk, for a recompressed layer. */
  scratchFile?(): Deno.FsFile;
}

/** How a layer whose blob is gone is compressed again. */
export type CompressionFormat = "gzip" | "zstd";

/** What a push reports as it goes (same shape as pull events). */
export interface PushEvent {
  /** What happened. */
  type: "layer-start" | "layer-progress" | "layer-done" | "layer-exists" | "layer-mounted" | "done";
  /** The blob's digest; for `done`, the manifest's. */
  digest?: string;
  /** For `layer-mounted`: the repository it was mounted from. */
  from?: string;
  /** Bytes sent so far. */
  current?: number;
  /** Bytes to send. */
  total?: number;
}

/** Options for pushImage(). */
export interface PushOptions {
  /** Where the image's blobs and manifest come from. */
  store: PushStore;
  /** Progress callback. */
  onEvent?: (event: PushEvent) => void;
  /** Blobs uploaded at the same time (default 3). */
  maxParallel?: number;
  /** Cancels the push. */
  signal?: AbortSignal;
  /** Registry settings (default: loaded from registries.json). */
  config?: RegistriesConfig;
  /** Extra client options (credentials, retries, timeouts). */
  client?: Omit<RegistryClientOptions, "config" | "purpose">;
  /** Compression of layers whose blob must be made again (default gzip). */
  compression?: CompressionFormat;
}

/** The outcome of a push. */
export interface PushResult {
  /** Digest of the pushed manifest. */
  digest: string;
  /** Size of the manifest (Docker prints it). */
  size: number;
  /** Blobs uploaded (the rest were already there). */
  uploaded: number;
}

/** Pushes the stored image `reference` to its registry. */
export async function pushImage(
  reference: ImageReference | string,
  options: PushOptions,
): Promise<PushResult> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const { store, onEvent } = options;
  const emit = (e: PushEvent) => onEvent?.(e);
  const name = ref.familiar;

  const image = store.findImage(ref.toString());
  if (image === undefined) {
    throw new Error(
      `No image "${name}" in the store: pull it, or tag a local image with that name first`,
    );
  }
  const manifest = store.getManifest(image.manifestDigest);
  if (manifest === undefined) {
    throw new Error(
      `The manifest "${image.manifestDigest}" of "${name}" is not in the store: pull the image again`,
    );
  }
  const stored = `sha256:${createHash("sha256").update(manifest.bytes).digest("hex")}`;
  if (stored !== image.manifestDigest) {
    throw new Error(
      `The stored manifest of "${name}" hashes to "${stored}", not "${image.manifestDigest}": the store is damaged; pull the image again`,
    );
  }
  const parsed = parseManifest(manifest.bytes, manifest.mediaType, name);
  if (parsed.kind !== "manifest") {
    throw new Error(`The stored manifest of "${name}" is an index: trun pushes single images`);
  }
  const { config, layers } = parsed.manifest;
  // Layers whose blob is gone need their tar; old stores keep every blob.
  const missing = layers.filter((l) => !store.hasBlob(l.digest));
  const tars = missing.length > 0 ? store.imageTars?.(image.id) : undefined;
  if (!store.hasBlob(config.digest)) {
    throw new Error(
      `Cannot push "${name}": its config "${config.digest}" is not in the store; pull the image again`,
    );
  }
  for (const l of missing) {
    if (tars === undefined || tars.length !== layers.length) {
      throw new Error(
        `Cannot push "${name}": its blob "${l.digest}" is not in the store; pull the image again`,
      );
    }
  }
  const compression = options.compression ?? "gzip";
  if (compression === "zstd" && !zstdAvailable()) {
    throw new Error(`Cannot push "${name}" with zstd: this build has no zstd compressor`);
  }

  const settings = options.config ?? await loadRegistriesConfig();
  const client = new RegistryClient(ref.registry, {
    ...options.client,
    config: settings,
    purpose: "push",
  });
  await client.ping(options.signal);

  // Repositories of the same registry the image was pulled from: where a
  // dropped blob may be mounted from under its original digest.
  const sources = [
    ...new Set(
      (image.digests ?? []).map((d) => parseReference(d)).filter((r) =>
        r.registry === ref.registry && r.repository !== ref.repository
      ).map((r) => r.repository),
    ),
  ];
  const ctl = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, ctl.signal]) : ctl.signal;
  let uploaded = 0;
  // Layers pushed under a new digest: original digest → new descriptor.
  const remade = new Map<string, { digest: string; size: number }>();
  const work = [...new Map([...layers, config].map((d, i) => [d.digest, { d, i }])).values()];
  await runBounded(work, Math.max(1, options.maxParallel ?? 3), async ({ d: blob, i }) => {
    if (await client.blobExists(ref.repository, blob.digest, signal)) {
      emit({ type: "layer-exists", digest: blob.digest, total: blob.size });
      return;
    }
    if (store.hasBlob(blob.digest)) {
      emit({ type: "layer-start", digest: blob.digest, total: blob.size });
      const open = () =>
        countingStream(
          store.blobPath(blob.digest),
          (current) =>
            emit({ type: "layer-progress", digest: blob.digest, current, total: blob.size }),
        );
      await client.pushBlob(ref.repository, blob.digest, blob.size, open, { signal });
      uploaded++;
      emit({ type: "layer-done", digest: blob.digest, current: blob.size, total: blob.size });
      return;
    }
    for (const from of sources) {
      if (await client.mountBlob(ref.repository, blob.digest, from, signal)) {
        emit({ type: "layer-mounted", digest: blob.digest, from });
        return;
      }
    }
    emit({ type: "layer-start", digest: blob.digest });
    const file = store.scratchFile!();
    try {
      const made = await compressInto(store.layerTar!(tars![i]!), compression, file);
      const open = () =>
        fileStream(
          file,
          (current) =>
            emit({ type: "layer-progress", digest: blob.digest, current, total: made.size }),
        );
      remade.set(blob.digest, made);
      // The same tar compresses to the same blob: a second push finds it.
      if (await client.blobExists(ref.repository, made.digest, signal)) {
        emit({ type: "layer-exists", digest: blob.digest, total: made.size });
        return;
      }
      await client.pushBlob(ref.repository, made.digest, made.size, open, { signal });
      uploaded++;
      emit({ type: "layer-done", digest: blob.digest, current: made.size, total: made.size });
    } finally {
      file.close();
    }
  }, ctl);

  const bytes = remade.size === 0
    ? manifest.bytes
    : rewriteManifest(manifest.bytes, parsed.mediaType, remade, compression);
  const mediaType = remade.size === 0 ? parsed.mediaType : manifestMediaType(bytes);
  const digest = await client.pushManifest(
    ref.repository,
    ref.digest ?? ref.tag ?? "latest",
    mediaType,
    bytes,
    options.signal,
  );
  emit({ type: "done", digest });
  return { digest, size: bytes.length, uploaded };
}

/** True when node:zlib here can write zstd. */
export function zstdAvailable(): boolean {
  const zlib = process.getBuiltinModule("node:zlib") as typeof import("node:zlib");
  return typeof zlib.createZstdCompress === "function";
}

// Compresses `tar` into `file` (from its start), hashing the output.
async function compressInto(
  tar: AsyncIterable<Uint8Array>,
  format: CompressionFormat,
  file: Deno.FsFile,
): Promise<{ digest: string; size: number }> {
  const zlib = await import("node:zlib");
  const z: Transform = format === "zstd" ? zlib.createZstdCompress() : zlib.createGzip();
  const hash = createHash("sha256");
  let size = 0;
  // zlib's output depends on how its input is cut: fixed-size pieces make
  // the same tar compress to the same blob every time, so pushing the same
  // image again finds its layers already there.
  for await (const c of throughTransform(fixedChunks(tar, 1 << 20), z)) {
    hash.update(c);
    size += c.length;
    let off = 0;
    while (off < c.length) off += await file.write(c.subarray(off));
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

// `chunks` re-cut into pieces of exactly `size` bytes (the last one shorter).
async function* fixedChunks(
  chunks: AsyncIterable<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(size);
  let fill = 0;
  for await (const chunk of chunks) {
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(size - fill, chunk.length - off);
      buf.set(chunk.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === size) {
        yield buf;
        buf = new Uint8Array(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

// The stored manifest with recompressed layers' digests, sizes and media
// types. zstd layers need an OCI manifest: a Docker one is converted.
function rewriteManifest(
  bytes: Uint8Array,
  mediaType: string,
  remade: ReadonlyMap<string, { digest: string; size: number }>,
  compression: CompressionFormat,
): Uint8Array {
  const doc = JSON.parse(new TextDecoder().decode(bytes)) as {
    mediaType?: string;
    config: { mediaType: string };
    layers: { mediaType: string; digest: string; size: number; annotations?: unknown }[];
  };
  const docker = mediaType === MEDIA_TYPE_DOCKER_MANIFEST && compression === "gzip";
  if (mediaType === MEDIA_TYPE_DOCKER_MANIFEST && !docker) {
    doc.mediaType = MEDIA_TYPE_OCI_MANIFEST;
    doc.config.mediaType = MEDIA_TYPE_OCI_CONFIG;
  }
  const layerType = docker
    ? MEDIA_TYPE_DOCKER_LAYER_GZIP
    : compression === "zstd"
    ? MEDIA_TYPE_OCI_LAYER_ZSTD
    : MEDIA_TYPE_OCI_LAYER_GZIP;
  doc.layers = doc.layers.map((l) => {
    const m = remade.get(l.digest);
    if (m === undefined) {
      if (mediaType === MEDIA_TYPE_DOCKER_MANIFEST && !docker) {
        return {
          ...l,
          mediaType: l.mediaType.replace(/.*diff\.tar\.gzip$/, MEDIA_TYPE_OCI_LAYER_GZIP),
        };
      }
      return l;
    }
    // Annotations may describe the old blob (its compression, its digest).
    const { annotations: _, ...rest } = l;
    return { ...rest, mediaType: layerType, digest: m.digest, size: m.size };
  });
  return new TextEncoder().encode(JSON.stringify(doc));
}

function manifestMediaType(bytes: Uint8Array): string {
  const doc = JSON.parse(new TextDecoder().decode(bytes)) as { mediaType?: string };
  return doc.mediaType ?? MEDIA_TYPE_OCI_MANIFEST;
}

/** An open file's bytes from its start, as a stream, reporting the bytes read so far. */
function fileStream(
  file: Deno.FsFile,
  onProgress: (current: number) => void,
): ReadableStream<Uint8Array> {
  let sent = 0;
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        await file.seek(0, Deno.SeekMode.Start);
      }
      const buf = new Uint8Array(256 * 1024);
      const n = await file.read(buf);
      if (n === null) {
        controller.close();
        return;
      }
      sent += n;
      onProgress(sent);
      controller.enqueue(buf.subarray(0, n));
    },
  });
}

/** A file's bytes as a stream, reporting the bytes read so far. */
function countingStream(
  path: string,
  onProgress: (current: number) => void,
): ReadableStream<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (reader === undefined) {
        const file = await Deno.open(path, { read: true });
        reader = file.readable.getReader();
      }
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      sent += value.length;
      onProgress(sent);
      controller.enqueue(value);
    },
    async cancel(reason) {
      await reader?.cancel(reason);
    },
  });
}

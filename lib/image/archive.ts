/**
 * Image archives, as `docker save`/`docker load` and `podman save
 * --format oci-archive` make them:
 *
 * - an OCI image layout in a tar (image-spec image-layout.md: `oci-layout`,
 *   `index.json`, `blobs/<alg>/<hex>`);
 * - a docker-archive: the same layout plus Docker's `manifest.json`
 *   (`[{Config, RepoTags, Layers}]`), which is what Docker 25+ writes and
 *   what every `docker load` reads. Older archives (`<id>/layer.tar`,
 *   `<config>.json`, symlinked duplicate layers) load too.
 *
 * Saving writes each layer as its uncompressed tar, rebuilt from the
 * unpacked layer and its tar-split record (lib/store/layer_records.ts) and
 * named by its diff id, with an OCI manifest made for the archive, as
 * Docker 25+ does; the output file has no name until it is complete.
 * Loading streams every file of the archive into the store while hashing it
 * (nothing is held in memory but the small JSON documents), checks every
 * digest the archive claims, then unpacks and records the images as a pull
 * does, so config diff ids are checked too.
 */

import { createReadStream } from "node:fs";
import { createGunzip, createZstdDecompress } from "node:zlib";
import type { Transform } from "node:stream";
import { createHash } from "node:crypto";
import tarStream from "tar-stream";
import type { Store } from "../store/mod.ts";
import type { LayerDescriptor } from "../store/layers.ts";
import type { TarSource } from "../store/layer_records.ts";
import { detectCompression, normalizeEntryPath } from "../oci/layer_tar.ts";
import { concat } from "../util/bytes.ts";
import { drain, drained } from "../util/stream.ts";
import { createOutputFile } from "../util/fs.ts";
import { parseReference } from "../oci/reference.ts";
import {
  type Descriptor,
  hostPlatform,
  type ImageManifest,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_ZSTD,
  MEDIA_TYPE_OCI_MANIFEST,
  parseManifest,
  type Platform,
  selectManifest,
} from "../oci/manifest.ts";

/** The two archive formats trun writes. */
export type ArchiveFormat = "docker-archive" | "oci-archive";

/** One image a load recorded. */
export interface LoadedImage {
  /** Its id (config digest). */
  id: string;
  /** The references it was tagged with, fully qualified; empty when untagged. */
  references: string[];
}

/** Options for {@link loadArchive}. */
export interface LoadOptions {
  /** Which manifest to take from a multi-platform OCI index (default: this machine's). */
  platform?: Platform;
  /** Give unpacked files this owner (rootless without subordinate ids). */
  squashOwnership?: { uid: number; gid: number };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// The JSON documents of an archive are small; anything bigger is not one.
const MAX_JSON = 16 << 20;
const BLOB_PATH = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/;

/**
 * Writes the images named by `refs` (references or ids) to `out` (a path,
 * replaced atomically, or a stream such as stdout) as a docker-archive or an
 * OCI archive. A reference becomes the image's tag in the archive; an id
 * saves the image untagged.
 */
export async function saveImages(
  store: Store,
  refs: readonly string[],
  out: string | WritableStream<Uint8Array>,
  format: ArchiveFormat,
): Promise<void> {
  if (refs.length === 0) throw new Error("Nothing to save: name at least one image");
  // Configs are blob files; layers are their uncompressed tars, as Docker
  // 25+ saves them, so an archive names them by diff id.
  const blobs = new Map<string, number>();
  const tars = new Map<string, TarSource & { tarSize: number }>();
  // Manifests are made for the archive (its layers are not the registry's).
  const manifests = new Map<string, Uint8Array>();
  const index: Descriptor[] = [];
  const dockerManifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const seen = new Map<string, { Config: string; RepoTags: string[] | null; Layers: string[] }>();
  for (const query of refs) {
    const image = store.findImage(query);
    if (image === undefined) throw new Error(`Cannot save "${query}": no such image`);
    const stored = store.manifest(image.id);
    const manifest = parseManifest(stored.bytes, stored.mediaType, query);
    if (manifest.kind !== "manifest") {
      throw new Error(`Cannot save "${query}": its stored manifest is an index`);
    }
    const m = manifest.manifest;
    const layers = store.imageTars(image.id);
    blobs.set(m.config.digest, m.config.size);
    for (const t of layers) tars.set(t.diffId, t);
    const archived = json({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: m.config.digest, size: m.config.size },
      layers: layers.map((t) => ({
        mediaType: MEDIA_TYPE_OCI_LAYER,
        digest: t.diffId,
        size: t.tarSize,
      })),
    });
    const archivedDigest = `sha256:${sha256Hex(archived)}`;
    manifests.set(archivedDigest, archived);
    const ref = isId(query, image.id) ? undefined : parseReference(query);
    const tag = ref?.tag !== undefined ? ref : undefined;
    index.push({
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      digest: archivedDigest,
      size: archived.length,
      ...(tag !== undefined
        ? {
          annotations: {
            "io.containerd.image.name": tag.toString(),
            "org.opencontainers.image.ref.name": tag.tag!,
          },
        }
        : {}),
    });
    let entry = seen.get(image.id);
    if (entry === undefined) {
      entry = {
        Config: blobName(m.config.digest),
        RepoTags: null,
        Layers: layers.map((t) => blobName(t.diffId)),
      };
      seen.set(image.id, entry);
      dockerManifest.push(entry);
    }
    if (tag !== undefined) (entry.RepoTags ??= []).push(tag.familiar);
  }
  for (const digest of blobs.keys()) {
    if (!store.hasBlob(digest)) {
      throw new Error(
        `Cannot save: blob ${digest} is not in the store; pull the image again first`,
      );
    }
  }

  const files: {
    name: string;
    bytes?: Uint8Array;
    blob?: string;
    tar?: TarSource;
    size: number;
  }[] = [
    { name: "oci-layout", bytes: json({ imageLayoutVersion: "1.0.0" }), size: 0 },
  ];
  for (const [digest, bytes] of manifests) {
    if (!blobs.has(digest)) files.push({ name: blobName(digest), bytes, size: 0 });
  }
  for (const [digest, size] of blobs) files.push({ name: blobName(digest), blob: digest, size });
  for (const [diffId, t] of tars) files.push({ name: blobName(diffId), tar: t, size: t.tarSize });
  files.push({
    name: "index.json",
    bytes: json({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: index }),
    size: 0,
  });
  if (format === "docker-archive") {
    files.push({ name: "manifest.json", bytes: json(dockerManifest), size: 0 });
  }
  await writeTar(out, async (add) => {
    for (const f of files) {
      if (f.bytes !== undefined) await add(f.name, f.bytes.length, [f.bytes]);
      else if (f.tar !== undefined) await add(f.name, f.size, store.layerTar(f.tar));
      else await add(f.name, f.size, readChunks(store.blobPath(f.blob!)));
    }
  });
}

/**
 * Loads a docker-archive or an OCI archive (plain, gzip or zstd) from
 * `input` (a path or a stream) into the store: imports its blobs with digest
 * checks, unpacks the layers and records the images with their tags.
 */
export async function loadArchive(
  store: Store,
  input: string | ReadableStream<Uint8Array>,
  opts: LoadOptions = {},
): Promise<LoadedImage[]> {
  const what = typeof input === "string" ? `"${input}"` : "the archive";
  const files = await importEntries(store, input, what);
  const docker = files.json.get("manifest.json");
  const ociIndex = files.json.get("index.json");
  if (docker === undefined && ociIndex === undefined) {
    throw new Error(
      `${
        cap(what)
      } is neither a docker-archive nor an OCI archive: it has no "manifest.json" or "index.json"`,
    );
  }
  const oci = ociIndex !== undefined ? ociImages(store, files, ociIndex, what, opts) : [];
  const loaded: LoadedImage[] = [];
  if (docker !== undefined) {
    const entries = parseJson(docker, `"manifest.json" in ${what}`);
    if (!Array.isArray(entries)) throw new Error(`"manifest.json" in ${what} is not a list`);
    // Every entry is read before any is recorded: recording drops the
    // layer blobs, which a later entry may share.
    const todo: [Candidate, string[]][] = [];
    for (const [i, raw] of entries.entries()) {
      const e = raw as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
      if (typeof e.Config !== "string" || !Array.isArray(e.Layers)) {
        throw new Error(`Entry ${i} of "manifest.json" in ${what} has no "Config" or "Layers"`);
      }
      const configDigest = files.resolve(e.Config);
      const layers = (e.Layers as unknown[]).map((l) => {
        if (typeof l !== "string") throw new Error(`Entry ${i} of "manifest.json" has a bad layer`);
        const digest = files.resolve(l);
        return { digest, mediaType: layerMediaType(store, digest), size: blobSize(store, digest) };
      });
      const tags = Array.isArray(e.RepoTags)
        ? e.RepoTags.filter((t): t is string => typeof t === "string")
        : [];
      // Prefer the registry manifest Docker 25+ also put in the layout, so
      // the image keeps its manifest digest.
      const match = oci.find((o) =>
        o.manifest.config.digest === configDigest &&
        o.manifest.layers.map((l) => l.digest).join() === layers.map((l) => l.digest).join()
      );
      todo.push([match ?? synthesize(store, configDigest, layers), tags]);
    }
    for (const [manifest, tags] of todo) loaded.push(await record(store, manifest, tags, opts));
    return loaded;
  }
  for (const o of oci) loaded.push(await record(store, o, o.refs, opts));
  return loaded;
}

/** A manifest to record, with where it came from. */
interface Candidate {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
  manifest: ImageManifest;
  refs: string[];
}

async function record(
  store: Store,
  c: Candidate,
  refs: readonly string[],
  opts: LoadOptions,
): Promise<LoadedImage> {
  const layers: LayerDescriptor[] = c.manifest.layers.map((l) => ({
    digest: l.digest,
    mediaType: l.mediaType,
    size: l.size,
  }));
  // An earlier image of the archive may have unpacked (and dropped) a blob.
  const unpacked = store.unpackedBlobs(layers);
  for (const d of [c.manifest.config, ...layers]) {
    if (!unpacked.has(d.digest) && !store.hasBlob(d.digest)) {
      throw new Error(`The archive lacks blob ${d.digest}, which its manifest ${c.digest} needs`);
    }
  }
  await store.ensureLayers(
    layers,
    opts.squashOwnership ? { squashOwnership: opts.squashOwnership } : {},
  );
  const configBytes = Deno.readFileSync(store.blobPath(c.manifest.config.digest));
  const [first, ...rest] = refs;
  const rec = store.recordImage({
    ...(first !== undefined ? { reference: first } : {}),
    manifestDigest: c.digest,
    manifestBytes: c.bytes,
    manifestMediaType: c.mediaType,
    configDigest: c.manifest.config.digest,
    configBytes,
    layers,
  });
  for (const r of rest) store.tagImage(rec.id, r);
  return { id: rec.id, references: refs.map((r) => qualify(r)) };
}

// The images an OCI index.json points at (one per entry; an index entry is
// resolved to this platform's manifest).
function ociImages(
  store: Store,
  files: Imported,
  indexBytes: Uint8Array,
  what: string,
  opts: LoadOptions,
): Candidate[] {
  const layout = files.json.get("oci-layout");
  if (layout !== undefined) {
    const v = (parseJson(layout, `"oci-layout" in ${what}`) as { imageLayoutVersion?: unknown })
      .imageLayoutVersion;
    if (typeof v !== "string" || !v.startsWith("1.")) {
      throw new Error(`${cap(what)} has OCI layout version ${JSON.stringify(v)}; trun reads 1.x`);
    }
  }
  const parsed = parseManifest(indexBytes, MEDIA_TYPE_OCI_INDEX, `index.json in ${what}`);
  if (parsed.kind !== "index") throw new Error(`"index.json" in ${what} is not an image index`);
  const out: Candidate[] = [];
  for (const d of parsed.index.manifests) {
    const ref = d.annotations?.["io.containerd.image.name"] ??
      fullReference(d.annotations?.["org.opencontainers.image.ref.name"]);
    let desc = d;
    let doc = parseManifest(readBlob(store, d, what), d.mediaType, d.digest);
    if (doc.kind === "index") {
      desc = selectManifest(doc.index, opts.platform ?? hostPlatform(), `${what} ${d.digest}`);
      doc = parseManifest(readBlob(store, desc, what), desc.mediaType, desc.digest);
    }
    if (doc.kind !== "manifest") continue;
    out.push({
      digest: desc.digest,
      mediaType: doc.mediaType,
      bytes: readBlob(store, desc, what),
      manifest: doc.manifest,
      refs: ref !== undefined ? [ref] : [],
    });
  }
  return out;
}

// Old docker-archives carry no registry manifest: make an OCI one, with
// layer media types told by each blob's magic bytes.
function synthesize(store: Store, configDigest: string, layers: LayerDescriptor[]): Candidate {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: {
      mediaType: MEDIA_TYPE_OCI_CONFIG,
      digest: configDigest,
      size: blobSize(store, configDigest),
    },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const bytes = json(manifest);
  return {
    digest: `sha256:${sha256Hex(bytes)}`,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    bytes,
    manifest,
    refs: [],
  };
}

/** What importEntries() found: JSON documents, and archive paths mapped to blob digests. */
interface Imported {
  json: Map<string, Uint8Array>;
  resolve(path: string): string;
}

// Streams every file of the archive into the store. Paths under blobs/ are
// checked against the digest their name claims; other files (old-style
// layers and configs) are hashed to learn theirs.
async function importEntries(
  store: Store,
  input: string | ReadableStream<Uint8Array>,
  what: string,
): Promise<Imported> {
  const json = new Map<string, Uint8Array>();
  const paths = new Map<string, string>();
  const links = new Map<string, string>();
  const extract = tarStream.extract();
  const raw: AsyncIterable<Uint8Array> = typeof input === "string"
    ? createReadStream(input, { highWaterMark: 256 * 1024 }) as AsyncIterable<Uint8Array>
    : input;
  const source = raw[Symbol.asyncIterator]();
  const first = await source.next();
  const head = first.done ? new Uint8Array() : first.value;
  async function* all(): AsyncGenerator<Uint8Array> {
    if (head.length > 0) yield head;
    for (let r = await source.next(); !r.done; r = await source.next()) yield r.value;
  }
  const compression = detectCompression(head);
  // `docker save | gzip` archives are common; docker load takes them too.
  const d: Transform | undefined = compression === "gzip"
    ? createGunzip()
    : compression === "zstd"
    ? createZstdDecompress()
    : undefined;
  let stopped = false;
  const stop = (err?: unknown) => {
    stopped = true;
    d?.destroy();
    extract.destroy(err as Error | undefined);
    Promise.resolve(source.return?.()).catch(() => {});
  };
  const feeding = Promise.all([
    d ? pumpInto(all(), d, () => stopped) : Promise.resolve(),
    pumpInto(d ?? all(), extract, () => stopped),
  ]).catch((err) => stop(err));
  const entries = extract[Symbol.asyncIterator]();
  try {
    for (let r = await entries.next(); !r.done; r = await entries.next()) {
      const entry = r.value;
      const body = entry as unknown as AsyncIterable<Uint8Array>;
      const name = normalizeEntryPath(entry.header.name);
      if (name === undefined) {
        throw new Error(`${cap(what)} has an entry "${entry.header.name}" outside the archive`);
      }
      const type = entry.header.type;
      if (type === "symlink" || type === "link") {
        const target = type === "link"
          ? normalizeEntryPath(entry.header.linkname ?? "")
          : normalizeEntryPath(
            `${name.slice(0, name.lastIndexOf("/") + 1)}${entry.header.linkname}`,
          );
        if (target !== undefined) links.set(name, target);
        await drain(body);
        continue;
      }
      if (type !== "file" && type !== "contiguous-file") {
        await drain(body);
        continue;
      }
      if (["manifest.json", "index.json", "oci-layout", "repositories"].includes(name)) {
        if (entry.header.size > MAX_JSON) {
          throw new Error(`"${name}" in ${what} is ${entry.header.size} bytes: too big`);
        }
        json.set(name, await readAll(body));
        continue;
      }
      const blob = BLOB_PATH.exec(name);
      if (blob) {
        const digest = `${blob[1]}:${blob[2]}`;
        if (store.hasBlob(digest)) {
          await drain(body);
        } else {
          await store.importBlob(body, { digest, what: `"${name}" in ${what}` });
        }
        paths.set(name, digest);
      } else if (/(^|\/)(json|VERSION)$/.test(name)) {
        // Old docker-archive per-layer metadata: nothing reads it.
        await drain(body);
      } else {
        paths.set(name, (await store.importBlob(body)).digest);
      }
    }
  } catch (err) {
    stop();
    await feeding;
    throw err;
  }
  await feeding;
  return {
    json,
    resolve(path: string): string {
      let p = normalizeEntryPath(path);
      for (let hops = 0; p !== undefined && links.has(p) && hops < 16; hops++) p = links.get(p);
      const digest = p !== undefined ? paths.get(p) : undefined;
      if (digest === undefined) {
        throw new Error(`${cap(what)} names "${path}" in its manifest, but has no such file`);
      }
      return digest;
    },
  };
}

/** The parts of a node or streamx writable that pumpInto() uses. */
interface Sink {
  write(chunk: Uint8Array): boolean;
  end(): unknown;
  once(event: string, fn: (...args: unknown[]) => void): unknown;
  off(event: string, fn: (...args: unknown[]) => void): unknown;
}

// Copies `source` into `sink` with back-pressure until the source ends or
// `stopped()` says the consumer gave up.
async function pumpInto(
  source: AsyncIterable<Uint8Array>,
  sink: Transform | tarStream.Extract,
  stopped: () => boolean,
): Promise<void> {
  const s = sink as unknown as Sink;
  const it = source[Symbol.asyncIterator]();
  for (let r = await it.next(); !r.done; r = await it.next()) {
    if (stopped()) return;
    if (!s.write(r.value)) await drained(s);
  }
  s.end();
}

type AddEntry = (
  name: string,
  size: number,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
) => Promise<void>;

// Runs `produce`, which adds entries, while a second loop writes the packed
// bytes to `out`.
async function writeTar(
  out: string | WritableStream<Uint8Array>,
  produce: (add: AddEntry) => Promise<void>,
): Promise<void> {
  const pack = tarStream.pack();
  // A killed save leaves no partial archive: the file has no name until done.
  const output = typeof out === "string" ? createOutputFile(out) : undefined;
  const file = output?.file;
  const writer = typeof out === "string" ? undefined : out.getWriter();
  let failure: unknown;
  // If the output fails, the packer is destroyed; this settles any wait on it.
  const packGone = new Promise<never>((_, reject) => {
    pack.once("close", () => reject(failure ?? new Error("the archive writer stopped")));
  });
  packGone.catch(() => {});
  const add: AddEntry = async (name, size, chunks) => {
    const finished = new Promise<void>((resolve, reject) => {
      const sink = pack.entry(
        { name, size, mode: 0o644, mtime: new Date(0), type: "file" },
        (err) => err ? reject(err) : resolve(),
      );
      (async () => {
        for await (const c of chunks) {
          if (!sink.write(c)) await drained(sink as unknown as Sink);
        }
        sink.end(null);
      })().catch(reject);
    });
    await Promise.race([finished, packGone]);
  };
  const consuming = (async () => {
    for await (const chunk of pack) {
      const c = chunk as Uint8Array;
      if (file) {
        let off = 0;
        while (off < c.length) off += await file.write(c.subarray(off));
      } else await writer!.write(c);
    }
  })().catch((err) => {
    failure = err;
    pack.destroy(err);
  });
  try {
    await produce(add);
    pack.finalize();
    await consuming;
    if (failure !== undefined) throw failure;
    if (output) {
      output.commit();
    } else {
      await writer!.close();
    }
  } catch (err) {
    pack.destroy();
    await consuming;
    if (output) {
      try {
        output.discard();
      } catch {
        // Already closed.
      }
    } else {
      writer!.releaseLock();
    }
    throw err;
  }
}

async function* readChunks(path: string): AsyncGenerator<Uint8Array> {
  for await (const c of createReadStream(path, { highWaterMark: 256 * 1024 })) {
    yield c as Uint8Array;
  }
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  return concat(await Array.fromAsync(body));
}

function readBlob(store: Store, d: Descriptor, what: string): Uint8Array {
  if (!store.hasBlob(d.digest)) {
    throw new Error(`${cap(what)} lacks blob ${d.digest}, which its index names`);
  }
  return Deno.readFileSync(store.blobPath(d.digest));
}

function layerMediaType(store: Store, digest: string): string {
  const f = Deno.openSync(store.blobPath(digest), { read: true });
  try {
    const head = new Uint8Array(4);
    const n = f.readSync(head) ?? 0;
    const c = detectCompression(head.subarray(0, n));
    return c === "gzip"
      ? MEDIA_TYPE_OCI_LAYER_GZIP
      : c === "zstd"
      ? MEDIA_TYPE_OCI_LAYER_ZSTD
      : MEDIA_TYPE_OCI_LAYER;
  } finally {
    f.close();
  }
}

function blobSize(store: Store, digest: string): number {
  return Deno.statSync(store.blobPath(digest)).size;
}

function blobName(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

function json(v: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(v));
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

// An OCI ref.name is usually just a tag; only a name with a repository in it
// can become a reference.
function fullReference(name: string | undefined): string | undefined {
  if (name === undefined || !/[/:]/.test(name)) return undefined;
  try {
    return parseReference(name).toString();
  } catch {
    return undefined;
  }
}

function qualify(ref: string): string {
  try {
    return parseReference(ref).toString();
  } catch {
    return ref;
  }
}

function isId(query: string, id: string): boolean {
  const hex = query.replace(/^sha256:/, "");
  return /^[a-f0-9]+$/.test(hex) && id.startsWith(`sha256:${hex}`);
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

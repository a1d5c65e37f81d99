/**
 * The tar-split record of a layer: what is needed to rebuild the layer's
 * uncompressed tar stream byte for byte from the unpacked directory, so the
 * store can drop the compressed blob (as containers/storage does with its
 * own tar-split). Every byte that is not regular-file content (headers,
 * PAX and GNU long-name records with their data, padding, end-of-archive
 * blocks, trailing bytes) is kept raw and in order; file content is kept as
 * a reference: the path in the unpacked layer and the size.
 *
 * The recorder watches the same uncompressed bytes the tar parser gets and
 * frames them itself (it mirrors tar-stream's framing: null blocks are
 * skipped, directories carry no data, a PAX `size` overrides the header),
 * so no header is ever re-encoded. The unpacker tells it which entry it
 * wrote where, and which paths it later removed: a record is complete only
 * if every referenced file is still the one that entry wrote (a layer that
 * writes one path twice, or whites out its own file, cannot be rebuilt from
 * disk, and then the caller keeps the blob).
 *
 * The record format (before gzip): the magic `TRUNTSP1`, then segments,
 * each a tag byte and unsigned LEB128 numbers:
 * - `1 len bytes…`: raw tar bytes;
 * - `2 size pathLen path…`: `size` bytes of the file at `path` (UTF-8,
 *   relative to the layer directory);
 * - `0 tarSize`: the end, with the length of the whole tar (a record cut
 *   short has no end and is refused).
 */

import { normalizeEntryPath } from "./layer_tar.ts";
import { concat } from "../util/bytes.ts";

/** What the unpacker tells a recorder about the tar it applies (see applyLayer's `recorder`). */
export interface LayerRecorder {
  /** The next chunk of the uncompressed tar, in order, before the parser sees it. */
  data(chunk: Uint8Array): void;
  /** Entry `entry` (0-based, as the parser yields them) had its content written at `rel`. */
  wrote(entry: number, rel: string, mode: number): void;
  /** Whatever was at `rel` was removed (a whole tree when `dir`). */
  removed(rel: string, dir: boolean): void;
}

const MAGIC = new TextEncoder().encode("TRUNTSP1");
const TAG_END = 0;
const TAG_RAW = 1;
const TAG_FILE = 2;
// Raw bytes are collected up to this size before a segment is written.
const RAW_FLUSH = 256 * 1024;
const decoder = new TextDecoder();

/** A file-content segment the framer found, waiting for the unpacker's word. */
interface FileRef {
  entry: number;
  path: string;
  size: number;
}

/**
 * Frames the uncompressed tar stream into raw and file segments and writes
 * the encoded record to `sink` as it goes. After the stream, call
 * {@link finish}: it says whether the record can rebuild the tar.
 */
export class TarSplitRecorder implements LayerRecorder {
  readonly #sink: (bytes: Uint8Array) => void;
  readonly #ownerReadOnly: boolean;
  // Raw bytes collected in one buffer until a segment is written: a layer
  // has thousands of small headers, and one copy each is what it costs.
  #raw = new Uint8Array(RAW_FLUSH + 1024);
  #rawLength = 0;
  #tarSize = 0;
  // Header assembly and the framer's state.
  #head = new Uint8Array(512);
  #headFill = 0;
  #skip = 0; // raw bytes to pass through (long-header data, padding, odd data)
  #collect: Uint8Array[] | undefined; // PAX/GNU long data being gathered
  #collectLeft = 0;
  #collectType = 0;
  #file: FileRef | undefined; // file content being passed
  #fileLeft = 0;
  #padAfter = 0;
  #entry = 0;
  #pax: Record<string, string> | undefined;
  #paxGlobal: Record<string, string> | undefined;
  #longPath: string | undefined;
  #broken: string | undefined;
  // What the unpacker reported.
  readonly #files: FileRef[] = [];
  readonly #written = new Map<number, string>();
  readonly #byPath = new Map<string, number>();
  readonly #spoiled = new Map<number, string>();

  /**
   * `sink` receives the encoded record. With `ownerReadOnly` (files are
   * owned by the caller, who has no override of permissions), a file
   * whose mode denies its owner reading spoils the record: it could not be
   * read back.
   */
  constructor(sink: (bytes: Uint8Array) => void, opts: { ownerReadOnly?: boolean } = {}) {
    this.#sink = sink;
    this.#ownerReadOnly = opts.ownerReadOnly ?? false;
    sink(MAGIC);
  }

  /** Feeds the next chunk of the uncompressed tar. */
  data(chunk: Uint8Array): void {
    this.#tarSize += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      if (this.#broken !== undefined) {
        this.#addRaw(chunk.subarray(off));
        return;
      }
      if (this.#file !== undefined) {
        const n = Math.min(this.#fileLeft, chunk.length - off);
        this.#fileLeft -= n;
        off += n;
        if (this.#fileLeft === 0) {
          this.#file = undefined;
          this.#skip = this.#padAfter;
        }
        continue;
      }
      if (this.#collect !== undefined) {
        const n = Math.min(this.#collectLeft, chunk.length - off);
        const part = chunk.subarray(off, off + n);
        this.#collect.push(part.slice());
        this.#addRaw(part);
        this.#collectLeft -= n;
        off += n;
        if (this.#collectLeft === 0) this.#endLongHeader();
        continue;
      }
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - off);
        this.#addRaw(chunk.subarray(off, off + n));
        this.#skip -= n;
        off += n;
        continue;
      }
      const n = Math.min(512 - this.#headFill, chunk.length - off);
      this.#head.set(chunk.subarray(off, off + n), this.#headFill);
      this.#headFill += n;
      off += n;
      if (this.#headFill === 512) {
        this.#headFill = 0;
        this.#addRaw(this.#head);
        this.#header(this.#head);
      }
    }
  }

  /** The unpacker wrote entry `entry`'s content at `rel` with permission bits `mode`. */
  wrote(entry: number, rel: string, mode: number): void {
    this.#written.set(entry, rel);
    this.#byPath.set(rel, entry);
    if (this.#ownerReadOnly && (mode & 0o400) === 0) {
      this.#spoiled.set(entry, `"${rel}" is not readable by its owner (mode ${mode.toString(8)})`);
    }
  }

  /** The unpacker removed `rel` (and everything under it when `dir`). */
  removed(rel: string, dir: boolean): void {
    const spoil = (path: string, entry: number) => {
      this.#spoiled.set(entry, `"${path}" is replaced or removed later in the same layer`);
      this.#byPath.delete(path);
    };
    const at = this.#byPath.get(rel);
    if (at !== undefined) spoil(rel, at);
    if (!dir) return;
    const prefix = `${rel}/`;
    for (const [path, entry] of this.#byPath) if (path.startsWith(prefix)) spoil(path, entry);
  }

  /**
   * Ends the record. Returns `undefined` when it rebuilds the tar, or the
   * reason it cannot (then the record must not be kept).
   */
  finish(): string | undefined {
    if (this.#headFill > 0) this.#addRaw(this.#head.subarray(0, this.#headFill));
    this.#flushRaw();
    this.#sink(segment(TAG_END, [this.#tarSize]));
    if (this.#broken !== undefined) return this.#broken;
    if (this.#file !== undefined) return "the tar ends inside a file";
    for (const f of this.#files) {
      const why = this.#spoiled.get(f.entry);
      if (why !== undefined) return why;
      const rel = this.#written.get(f.entry);
      if (rel !== f.path) {
        return `the content of "${f.path}" was not unpacked to that path (${
          rel === undefined ? "not written" : `written at "${rel}"`
        })`;
      }
    }
    return undefined;
  }

  #addRaw(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.#rawLength + bytes.length > this.#raw.length) {
      this.#flushRaw();
      if (bytes.length > this.#raw.length) {
        this.#sink(segment(TAG_RAW, [bytes.length], bytes));
        return;
      }
    }
    this.#raw.set(bytes, this.#rawLength);
    this.#rawLength += bytes.length;
    if (this.#rawLength >= RAW_FLUSH) this.#flushRaw();
  }

  #flushRaw(): void {
    if (this.#rawLength === 0) return;
    this.#sink(segment(TAG_RAW, [this.#rawLength], this.#raw.subarray(0, this.#rawLength)));
    this.#rawLength = 0;
  }

  // One 512-byte header block, already kept raw: decides what follows it.
  #header(b: Uint8Array): void {
    if (isNullBlock(b)) return;
    const typeflag = b[156]!;
    let size = octalField(b, 124, 12);
    if (size === undefined) {
      this.#broken = "a tar header has a size that cannot be read";
      return;
    }
    const pad = (512 - (size % 512)) % 512;
    // PAX (x, g) and GNU long names (L, K): their data stays raw.
    if (typeflag === 0x78 || typeflag === 0x67 || typeflag === 0x4c || typeflag === 0x4b) {
      if (size > 16 << 20) {
        this.#broken = "a tar extension header is too large";
        return;
      }
      this.#collect = [];
      this.#collectLeft = size;
      this.#collectType = typeflag;
      this.#padAfter = pad;
      if (size === 0) this.#endLongHeader();
      return;
    }
    const entry = this.#entry++;
    let name = cString(b, 0, 100);
    if (b[345] !== 0 && isUstar(b)) name = `${cString(b, 345, 155)}/${name}`;
    const isDirectory = typeflag === 0x35 || ((typeflag === 0 || typeflag === 0x30) &&
      name.endsWith("/"));
    if (this.#longPath !== undefined) name = this.#longPath;
    const pax = this.#pax;
    this.#longPath = undefined;
    this.#pax = undefined;
    if (pax?.path) name = pax.path;
    if (pax?.size) size = parseInt(pax.size, 10);
    if (!(size >= 0)) {
      this.#broken = `entry "${name}" has an invalid size`;
      return;
    }
    // tar-stream reads no data for a directory, whatever its size says.
    if (isDirectory || size === 0) return;
    const after = (512 - (size % 512)) % 512;
    const regular = typeflag === 0 || typeflag === 0x30 || typeflag === 0x37;
    if (!regular) {
      this.#skip = size + after;
      return;
    }
    this.#flushRaw();
    const path = normalizeEntryPath(name);
    if (path === undefined || path === "") {
      this.#broken = `entry "${name}" has content but no path inside the layer`;
      return;
    }
    const ref = { entry, path, size };
    this.#files.push(ref);
    const p = new TextEncoder().encode(path);
    this.#sink(segment(TAG_FILE, [size, p.length], p));
    this.#file = ref;
    this.#fileLeft = size;
    this.#padAfter = after;
  }

  #endLongHeader(): void {
    const data = concat(this.#collect ?? []);
    this.#collect = undefined;
    this.#skip = this.#padAfter;
    if (this.#collectType === 0x4c) {
      this.#longPath = cString(data, 0, data.length);
    } else if (this.#collectType === 0x67) {
      this.#paxGlobal = decodePax(data);
    } else if (this.#collectType === 0x78) {
      this.#pax = { ...this.#paxGlobal, ...decodePax(data) };
    }
  }
}

/** A record could not be read back, or the layer on disk no longer matches it. */
export class TarSplitError extends Error {
  /** The path in the layer at fault, when one is. */
  readonly path: string | undefined;
  /** Builds the error. */
  constructor(message: string, path?: string) {
    super(message);
    this.name = "TarSplitError";
    this.path = path;
  }
}

/** Reads a file of the unpacked layer: its size, and its bytes in order. */
export interface LayerFileReader {
  /** Opens `rel`; throws when it is missing or not a regular file. */
  open(rel: string): { size: number; chunks(): AsyncIterable<Uint8Array>; close(): void };
}

/**
 * Rebuilds the tar stream from a decoded record (`record`: the record bytes
 * after gunzip) and the files `files` gives. Every file must still have the
 * recorded size and yield exactly that many bytes; `what` names the layer
 * in errors.
 */
export async function* rebuildTar(
  record: AsyncIterable<Uint8Array>,
  files: LayerFileReader,
  what: string,
): AsyncGenerator<Uint8Array> {
  const r = new ByteReader(record[Symbol.asyncIterator]());
  const magic = await r.take(MAGIC.length, what);
  if (!magic.every((x, i) => x === MAGIC[i])) {
    throw new TarSplitError(`${what}: its tar-split record is not in trun's format`);
  }
  let produced = 0;
  for (;;) {
    const tag = (await r.take(1, what))[0];
    if (tag === TAG_END) {
      const total = await r.number(what);
      if (total !== produced) {
        throw new TarSplitError(
          `${what}: its tar-split record describes ${total} bytes but holds ${produced}`,
        );
      }
      return;
    }
    if (tag === TAG_RAW) {
      let left = await r.number(what);
      while (left > 0) {
        const part = await r.some(left, what);
        left -= part.length;
        produced += part.length;
        yield part;
      }
      continue;
    }
    if (tag !== TAG_FILE) throw new TarSplitError(`${what}: its tar-split record is damaged`);
    const size = await r.number(what);
    const path = decoder.decode(await r.take(await r.number(what), what));
    const changed = (detail: string) =>
      new TarSplitError(
        `${what} cannot be rebuilt: "${path}" ${detail}; the unpacked layer was changed: remove the image and pull it again`,
        path,
      );
    let f;
    try {
      f = files.open(path);
    } catch (err) {
      throw changed(
        err instanceof Deno.errors.NotFound
          ? "is missing"
          : `cannot be read (${(err as Error).message})`,
      );
    }
    try {
      if (f.size !== size) throw changed(`has ${f.size} bytes instead of ${size}`);
      let got = 0;
      for await (const chunk of f.chunks()) {
        const part = chunk.subarray(0, Math.max(0, size - got));
        got += chunk.length;
        if (part.length > 0) yield part;
        if (got > size) break;
      }
      if (got !== size) throw changed(`has ${got} bytes instead of ${size}`);
      produced += size;
    } finally {
      f.close();
    }
  }
}

/** Pulls exact byte counts and numbers out of an async chunk stream. */
class ByteReader {
  readonly #source: AsyncIterator<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  constructor(source: AsyncIterator<Uint8Array>) {
    this.#source = source;
  }

  async #fill(what: string): Promise<void> {
    const r = await this.#source.next();
    if (r.done) throw new TarSplitError(`${what}: its tar-split record is cut short`);
    this.#buf = this.#buf.length === 0 ? r.value : concat([this.#buf, r.value]);
  }

  /** Exactly `n` bytes. */
  async take(n: number, what: string): Promise<Uint8Array> {
    while (this.#buf.length < n) await this.#fill(what);
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Between 1 and `max` bytes (what is buffered, or the next chunk). */
  async some(max: number, what: string): Promise<Uint8Array> {
    if (this.#buf.length === 0) await this.#fill(what);
    const out = this.#buf.subarray(0, Math.min(max, this.#buf.length));
    this.#buf = this.#buf.subarray(out.length);
    return out;
  }

  /** One unsigned LEB128 number. */
  async number(what: string): Promise<number> {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = (await this.take(1, what))[0]!;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
      if (scale > 2 ** 56) throw new TarSplitError(`${what}: its tar-split record is damaged`);
    }
  }
}

/** One encoded segment: the tag, its numbers as unsigned LEB128, then `bytes`. */
function segment(tag: number, numbers: number[], bytes?: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + 8 * numbers.length + (bytes?.length ?? 0));
  out[0] = tag;
  let at = 1;
  for (let n of numbers) {
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      out[at++] = b;
    } while (n > 0);
  }
  if (bytes !== undefined) out.set(bytes, at);
  return out.subarray(0, at + (bytes?.length ?? 0));
}

// tar-stream's rule: a header whose checksum is that of a zeroed block is
// no entry (end-of-archive and padding blocks).
function isNullBlock(b: Uint8Array): boolean {
  // Any entry has a name, and its first byte alone breaks the sum.
  if (b[0] !== 0) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  return sum === 8 * 32;
}

function isUstar(b: Uint8Array): boolean {
  return b[257] === 0x75 && b[258] === 0x73 && b[259] === 0x74 && b[260] === 0x61 &&
    b[261] === 0x72 && b[262] === 0;
}

function cString(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return decoder.decode(b.subarray(off, end));
}

// An octal number field, or GNU's base-256 form (high bit set).
function octalField(b: Uint8Array, off: number, len: number): number | undefined {
  if (b[off]! & 0x80) {
    let n = b[off]! & 0x7f;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + b[i]!;
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const text = cString(b, off, len).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) return undefined;
  return parseInt(text, 8);
}

// PAX records `LEN key=value\n`, read as tar-stream reads them.
function decodePax(buf: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  while (buf.length > 0) {
    let i = 0;
    while (i < buf.length && buf[i] !== 32) i++;
    const len = parseInt(decoder.decode(buf.subarray(0, i)), 10);
    if (!len) return out;
    const rec = decoder.decode(buf.subarray(i + 1, len - 1));
    const eq = rec.indexOf("=");
    if (eq === -1) return out;
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    buf = buf.subarray(len);
  }
  return out;
}

/**
 * Reads a tar stream into entries (header and body), pulling the bytes it
 * needs from an async iterable of chunks. Bodies are views of the input
 * chunks, never copies.
 *
 * Hand-written, not tar-stream: unpacking a layer is a pull's critical
 * path, and tar-stream's stream machinery (a writable, an event and a
 * readable per entry) cost about as much JavaScript time as the file
 * creation it feeds. The framing and header decoding follow tar-stream 3
 * exactly (what it refuses, with its messages; pax and GNU long names;
 * base-256 numbers; no data read for a directory), because the tar-split
 * recorder (lib/oci/tar_split.ts) frames the same stream with the same
 * rules, and the two must agree on every boundary.
 */

/** An entry's kind, as tar-stream names it; null for a typeflag trun does not know. */
export type TarType =
  | "file"
  | "link"
  | "symlink"
  | "character-device"
  | "block-device"
  | "directory"
  | "fifo"
  | "contiguous-file"
  | "pax-header"
  | "pax-global-header"
  | "gnu-long-link-path"
  | "gnu-long-path";

/** A decoded header, with pax and GNU long names applied. */
export interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  type: TarType | null;
  linkname: string | null;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** The entry's pax records (global ones merged in), or null. */
  pax: Record<string, string> | null;
}

/** One entry: its header and its data. The body must be read (or left) before the next entry. */
export interface TarEntry {
  header: TarHeader;
  body: AsyncIterable<Uint8Array>;
}

/** Long-name and pax records larger than this are refused (tar-stream's limit). */
const MAX_HEADER_SIZE = 4 * 1024 * 1024;

const utf8 = new TextDecoder();

// The body of an entry without data.
const NO_DATA: AsyncIterable<Uint8Array> = {
  [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }),
};

// The input's bytes, taken in order: whole chunks when they fit, copies
// only for a header that spans two chunks.
class ByteQueue {
  readonly #source: AsyncIterator<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  get buffered(): number {
    return this.#buffered;
  }

  /** Waits until `n` bytes are buffered; false when the input ends first. */
  async fill(n: number): Promise<boolean> {
    while (this.#buffered < n) {
      if (this.#ended) return false;
      const r = await this.#source.next();
      if (r.done) {
        this.#ended = true;
        return false;
      }
      if (r.value.length === 0) continue;
      this.#chunks.push(r.value);
      this.#buffered += r.value.length;
    }
    return true;
  }

  /** Takes `n` buffered bytes (a view when they lie in one chunk). */
  take(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= n) return this.#first(n);
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const part = this.#first(Math.min(n - at, this.#chunks[0]!.length));
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** Takes up to `n` bytes from the first buffered chunk (at least one byte when any is buffered). */
  takeSome(n: number): Uint8Array {
    return this.#first(Math.min(n, this.#chunks[0]!.length));
  }

  #first(n: number): Uint8Array {
    const c = this.#chunks[0]!;
    this.#buffered -= n;
    if (n === c.length) {
      this.#chunks.shift();
      return c;
    }
    this.#chunks[0] = c.subarray(n);
    return c.subarray(0, n);
  }
}

function unexpectedEnd(): Error {
  return new Error("Unexpected end of data");
}

/**
 * The entries of the tar in `chunks`, in order. Throws tar-stream's errors
 * ("Invalid tar header…", "Unexpected end of data", "Header exceeds max
 * size", "Invalid header") for input it would refuse.
 */
export async function* readTar(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const q = new ByteQueue(chunks);
  let pax: Record<string, string> | null = null;
  let paxGlobal: Record<string, string> | null = null;
  let longPath: string | null = null;
  let longLinkPath: string | null = null;
  for (;;) {
    if (!await q.fill(512)) {
      if (q.buffered > 0) throw unexpectedEnd();
      return;
    }
    const h = decodeHeader(q.take(512));
    if (h === null) continue; // a zero block: the end marker, or padding after it
    switch (h.type) {
      case "gnu-long-path":
      case "gnu-long-link-path":
      case "pax-global-header":
      case "pax-header": {
        if (h.size > MAX_HEADER_SIZE) throw new Error("Header exceeds max size");
        if (!await q.fill(h.size)) throw unexpectedEnd();
        const data = q.take(h.size);
        if (h.type === "gnu-long-path") longPath = decodeStr(data, 0, data.length);
        else if (h.type === "gnu-long-link-path") longLinkPath = decodeStr(data, 0, data.length);
        else if (h.type === "pax-global-header") paxGlobal = decodePax(data);
        else pax = paxGlobal === null ? decodePax(data) : { ...paxGlobal, ...decodePax(data) };
        await skip(q, padding(h.size));
        continue;
      }
    }
    if (longPath !== null) {
      h.name = longPath;
      longPath = null;
    }
    if (longLinkPath !== null) {
      h.linkname = longLinkPath;
      longLinkPath = null;
    }
    if (pax !== null) {
      if (pax.path) h.name = pax.path;
      if (pax.linkpath) h.linkname = pax.linkpath;
      if (pax.size) h.size = parseInt(pax.size, 10);
      h.pax = pax;
      pax = null;
    }
    if (!(h.size >= 0)) throw new Error("Invalid header");
    // tar-stream reads no data for a directory, whatever its size says.
    const size = h.type === "directory" ? 0 : h.size;
    let left = size;
    const body = size === 0 ? NO_DATA : (async function* () {
      while (left > 0) {
        if (!await q.fill(1)) throw unexpectedEnd();
        const part = q.takeSome(left);
        left -= part.length;
        yield part;
      }
    })();
    yield { header: h, body };
    // What the consumer left of the body, then the padding to a block.
    while (left > 0) {
      if (!await q.fill(1)) throw unexpectedEnd();
      left -= q.takeSome(left).length;
    }
    if (size > 0) await skip(q, padding(size));
  }
}

async function skip(q: ByteQueue, n: number): Promise<void> {
  while (n > 0) {
    if (!await q.fill(1)) throw unexpectedEnd();
    n -= q.takeSome(n).length;
  }
}

// Bytes from the end of `size` bytes of data to the next 512-byte block.
function padding(size: number): number {
  const r = size % 512;
  return r === 0 ? 0 : 512 - r;
}

/** Decodes one 512-byte header block; null for an all-zero block. */
export function decodeHeader(buf: Uint8Array): TarHeader | null {
  const c = cksum(buf);
  // A zeroed block's checksum is the initial value (the field counted as spaces).
  if (c === 8 * 32) return null;
  if (c !== decodeOct(buf, 148, 8)) {
    throw new Error("Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?");
  }
  const typeflag = buf[156] === 0 ? 0 : buf[156]! - 48;
  let name = decodeStr(buf, 0, 100);
  if (isUstar(buf)) {
    if (buf[345]) name = `${decodeStr(buf, 345, 155)}/${name}`;
  } else if (!isGnu(buf)) {
    throw new Error("Invalid tar header: unknown format.");
  }
  // An old-style directory (a file entry whose name ends in a slash) stays
  // a file here, data and all, as in tar-stream; the caller decides.
  return {
    name,
    mode: decodeOct(buf, 100, 8),
    uid: decodeOct(buf, 108, 8),
    gid: decodeOct(buf, 116, 8),
    size: decodeOct(buf, 124, 12),
    mtime: new Date(1000 * decodeOct(buf, 136, 12)),
    type: toType(typeflag),
    linkname: buf[157] === 0 ? null : decodeStr(buf, 157, 100),
    uname: decodeStr(buf, 265, 32),
    gname: decodeStr(buf, 297, 32),
    devmajor: decodeOct(buf, 329, 8),
    devminor: decodeOct(buf, 337, 8),
    pax: null,
  };
}

/** Pax records (`LEN key=value\n`…) into an object; stops at the first malformed one. */
export function decodePax(buf: Uint8Array): Record<string, string> {
  const result: Record<string, string> = {};
  while (buf.length > 0) {
    let i = 0;
    while (i < buf.length && buf[i] !== 32) i++;
    const len = parseInt(text(buf, 0, i), 10);
    if (!len) return result;
    const b = text(buf, i + 1, len - 1);
    const eq = b.indexOf("=");
    if (eq === -1) return result;
    result[b.slice(0, eq)] = b.slice(eq + 1);
    buf = buf.subarray(len);
  }
  return result;
}

function toType(flag: number): TarType | null {
  switch (flag) {
    case 0:
      return "file";
    case 1:
      return "link";
    case 2:
      return "symlink";
    case 3:
      return "character-device";
    case 4:
      return "block-device";
    case 5:
      return "directory";
    case 6:
      return "fifo";
    case 7:
      return "contiguous-file";
    case 72: // 'x'
      return "pax-header";
    case 55: // 'g'
      return "pax-global-header";
    case 27: // 'K'
      return "gnu-long-link-path";
    case 28: // 'L'
    case 30: // 'N'
      return "gnu-long-path";
  }
  return null;
}

const USTAR = [0x75, 0x73, 0x74, 0x61, 0x72, 0x00]; // "ustar\0"
const GNU = [0x75, 0x73, 0x74, 0x61, 0x72, 0x20]; // "ustar "

function isUstar(buf: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (buf[257 + i] !== USTAR[i]) return false;
  return true;
}

function isGnu(buf: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (buf[257 + i] !== GNU[i]) return false;
  return buf[263] === 0x20 && buf[264] === 0x00;
}

function cksum(block: Uint8Array): number {
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let j = 156; j < 512; j++) sum += block[j]!;
  return sum;
}

// A NUL-terminated string field.
function decodeStr(buf: Uint8Array, offset: number, length: number): string {
  let end = offset;
  const limit = offset + length;
  while (end < limit && buf[end] !== 0) end++;
  return text(buf, offset, end);
}

// UTF-8 bytes `start` to `end` (clamped) as text; plain ASCII, by far the
// common case, without the decoder's cost.
function text(buf: Uint8Array, start: number, end: number): string {
  end = Math.min(end, buf.length);
  if (start >= end) return "";
  // Long values (a pax record may hold kilobytes) go to the decoder: an
  // argument list that long could overflow the stack.
  if (end - start > 1024) return utf8.decode(buf.subarray(start, end));
  for (let i = start; i < end; i++) {
    if (buf[i]! >= 0x80) return utf8.decode(buf.subarray(start, end));
  }
  return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
}

// A numeric field: octal text (leading spaces and NULs skipped, ended by a
// space), or base-256 when its first byte has the top bit set.
function decodeOct(buf: Uint8Array, offset: number, length: number): number {
  if (buf[offset]! & 0x80) return parse256(buf.subarray(offset, offset + length));
  const limit = offset + length;
  let i = offset;
  while (i < limit && buf[i] === 32) i++;
  let end = i;
  while (end < limit && buf[end] !== 32) end++;
  while (i < end && buf[i] === 0) i++;
  if (i === end) return 0;
  // parseInt(…, 8): the leading octal digits; none is NaN.
  let n = 0;
  let digits = 0;
  for (; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 7) break;
    n = n * 8 + d;
    digits++;
  }
  return digits === 0 ? NaN : n;
}

// Base-256 (GNU) numbers: 0x80 first for positive, 0xff for negative.
function parse256(buf: Uint8Array): number {
  let positive: boolean;
  if (buf[0] === 0x80) positive = true;
  else if (buf[0] === 0xff) positive = false;
  else return NaN;
  let sum = 0;
  for (let i = 1; i < buf.length; i++) {
    const byte = positive ? buf[i]! : 0xff - buf[i]!;
    sum = sum * 256 + byte;
  }
  return positive ? sum : -sum;
}

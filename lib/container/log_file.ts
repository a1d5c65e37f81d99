/**
 * A container's log file: the CRI (Kubernetes) text format that conmon's
 * `k8s-file` driver writes and Podman reads, one record per line:
 *
 *     2026-12-02T05:53:27.123456789Z stdout F hello
 *
 * a time (RFC 3339 with nanoseconds), the stream, a tag (`F`: the record
 * ends a line; `P`: the line goes on in the stream's next record) and the
 * content without its newline.
 *
 * The monitor writes it through {@link LogWriter}, which turns chunks of a
 * pipe's bytes into records; `trun logs` reads it through
 * {@link LogReader} / {@link readLogs}, which join partial records back
 * into lines and apply Docker's `--tail`, `--since`, `--until` and `-t`.
 * Everything but {@link fileSink} is pure: the clock is a parameter.
 */

/** Which of a container's output streams a record holds. */
export type LogStream = "stdout" | "stderr";

/** One record of a log file, as {@link parseLogRecord} reads it. */
export interface LogRecord {
  /** When the bytes were read: RFC 3339 in UTC with nine fraction digits. */
  time: string;
  /** The stream the bytes came from. */
  stream: LogStream;
  /** Tag `P`: the line goes on in the stream's next record. */
  partial: boolean;
  /** The bytes of the record, without a newline. */
  content: string;
}

/** A line fragment held by {@link LogWriter} longer than this many bytes is written as a `P` record. */
export const MAX_PARTIAL_BYTES = 16 * 1024;

const STREAMS: readonly LogStream[] = ["stdout", "stderr"];

// RFC 3339 with seconds and a zone, as in CRI log files (conmon writes a
// local offset, the kubelet and trun write Z).
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Seconds since the epoch of a UTC calendar time, or undefined when a field is out of range. */
function utcSeconds(y: number, mo: number, d: number, h: number, mi: number, s: number) {
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || s > 59) return undefined;
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  // Date.UTC rolls 31 April over to 1 May: a changed day means no such date.
  return back.getUTCDate() === d && d >= 1 ? ms / 1000 : undefined;
}

/** Minutes east of UTC of an RFC 3339 zone (`Z`, `+01:00`), or undefined when out of range. */
function zoneMinutes(zone: string): number | undefined {
  if (zone === "Z") return 0;
  const h = Number(zone.slice(1, 3));
  const m = Number(zone.slice(4, 6));
  if (h > 23 || m > 59) return undefined;
  return (zone[0] === "-" ? -1 : 1) * (h * 60 + m);
}

/** A whole second (epoch seconds) and nine fraction digits as RFC3339Nano in UTC. */
function utcText(seconds: number, nanos: string): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${nanos}Z`;
}

/**
 * `time` as the log file writes it: RFC 3339 in UTC with nine fraction
 * digits (`2026-12-02T05:53:27.123456789Z`), from any RFC 3339 time with
 * seconds, up to nine fraction digits and a zone; undefined for anything
 * else. The fixed form sorts as text in time order.
 */
export function normalizeLogTime(time: string): string | undefined {
  const m = RFC3339.exec(time);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = "", zone = "Z"] = m;
  const seconds = utcSeconds(+y!, +mo!, +d!, +h!, +mi!, +s!);
  const offset = zoneMinutes(zone);
  if (seconds === undefined || offset === undefined) return undefined;
  return utcText(seconds - offset * 60, frac.padEnd(9, "0"));
}

/** A Date as the log file writes times: its milliseconds padded to nine digits. */
export function logTime(date: Date): string {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new RangeError("Invalid log time: the Date is invalid");
  return `${date.toISOString().slice(0, 23)}000000Z`;
}

/** The text of one record; `time` is already normalized, `content` has no newline. */
function recordText(time: string, stream: LogStream, content: string, partial: boolean): string {
  return `${time} ${stream} ${partial ? "P" : "F"} ${content}\n`;
}

/**
 * One record of the log file, newline included. `time` is a Date (its
 * milliseconds are padded with zeros) or an RFC 3339 string from a finer
 * clock (kept to the nanosecond, converted to UTC). Throws a RangeError for
 * a time that is neither, or content holding a newline (one record is at
 * most one line).
 */
export function formatLogRecord(
  time: Date | string,
  stream: LogStream,
  content: string,
  partial: boolean,
): string {
  const t = typeof time === "string" ? normalizeLogTime(time) : logTime(time);
  if (t === undefined) {
    throw new RangeError(`Invalid log time "${time}": expected an RFC 3339 time with seconds`);
  }
  if (content.includes("\n")) {
    throw new RangeError("Invalid log record content: it holds a newline, a record is one line");
  }
  return recordText(t, stream, content, partial);
}

/**
 * Reads one line of a log file (with or without its newline); null for a
 * malformed line: no valid time, an unknown stream, a tag other than `F`
 * or `P`. Tags may carry `:`-separated extensions (`F:x`), as the CRI
 * format allows; the time comes back in the fixed UTC form.
 */
export function parseLogRecord(line: string): LogRecord | null {
  const text = line.endsWith("\n") ? line.slice(0, -1) : line;
  if (text.includes("\n")) return null;
  const a = text.indexOf(" ");
  const b = a < 0 ? -1 : text.indexOf(" ", a + 1);
  if (b < 0) return null;
  const time = normalizeLogTime(text.slice(0, a));
  const stream = text.slice(a + 1, b);
  if (time === undefined || (stream !== "stdout" && stream !== "stderr")) return null;
  const c = text.indexOf(" ", b + 1);
  const tag = (c < 0 ? text.slice(b + 1) : text.slice(b + 1, c)).split(":")[0];
  if (tag !== "F" && tag !== "P") return null;
  return { time, stream, partial: tag === "P", content: c < 0 ? "" : text.slice(c + 1) };
}

/** Bytes of `s` in UTF-8 (a surrogate pair is one 4-byte character). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Options of a {@link LogWriter}. */
export interface LogWriterOptions {
  /** The clock: a Date, or an RFC 3339 string from a finer source (default `new Date()`). */
  now?: () => Date | string;
  /** Bytes a held fragment may reach before it is written as `P` (default {@link MAX_PARTIAL_BYTES}). */
  maxPartialBytes?: number;
}

/** What {@link LogWriter} keeps per stream between chunks. */
interface StreamState {
  /** Decodes with `stream: true`, so a character split across chunks stays whole. */
  decoder: TextDecoder;
  /** The start of a line not yet ended by a newline. */
  pending: string;
  /** UTF-8 bytes of `pending`. */
  pendingBytes: number;
}

/**
 * Turns chunks of a container's stdout and stderr into log records, as
 * conmon does: every complete line becomes an `F` record (a `\r` before
 * the newline is content), an unterminated fragment is held until its
 * newline comes, and written as a `P` record when it grows beyond
 * `maxPartialBytes` or on {@link LogWriter.flush} / {@link LogWriter.close}.
 * The records of one `write()` share its time and go to `sink` in one
 * call; invalid UTF-8 becomes U+FFFD.
 */
export class LogWriter {
  readonly #sink: (text: string) => void;
  readonly #now: () => Date | string;
  readonly #max: number;
  readonly #streams: Record<LogStream, StreamState>;
  #closed = false;

  /** A writer that hands record text to `sink` (see {@link fileSink}). */
  constructor(sink: (text: string) => void, opts: LogWriterOptions = {}) {
    this.#sink = sink;
    this.#now = opts.now ?? (() => new Date());
    this.#max = opts.maxPartialBytes ?? MAX_PARTIAL_BYTES;
    const state = (): StreamState => ({
      decoder: new TextDecoder(),
      pending: "",
      pendingBytes: 0,
    });
    this.#streams = { stdout: state(), stderr: state() };
  }

  /** Adds bytes read from `stream`; writes the records they complete. */
  write(stream: LogStream, chunk: Uint8Array): void {
    if (this.#closed) throw new Error(`Cannot write ${stream} to the log: the writer is closed`);
    const s = this.#streams[stream];
    const text = s.decoder.decode(chunk, { stream: true });
    if (text === "") return;
    this.#emit(this.#split(this.#time(), stream, text));
  }

  /** Writes every held fragment as a `P` record (the line goes on in a later record). */
  flush(): void {
    const time = this.#time();
    this.#emit(STREAMS.map((stream) => this.#flushStream(time, stream)).join(""));
  }

  /**
   * Ends both streams: a character cut short becomes U+FFFD and held
   * fragments are written as `P` records. Later writes throw; closing
   * again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const time = this.#time();
    let out = "";
    for (const stream of STREAMS) {
      const rest = this.#streams[stream].decoder.decode();
      out += this.#split(time, stream, rest) + this.#flushStream(time, stream);
    }
    this.#emit(out);
  }

  #time(): string {
    const t = this.#now();
    if (typeof t !== "string") return logTime(t);
    const n = normalizeLogTime(t);
    if (n === undefined) throw new RangeError(`Invalid log time "${t}" from the clock`);
    return n;
  }

  #emit(text: string): void {
    if (text !== "") this.#sink(text);
  }

  /** The records `text` completes on `stream`, holding what follows its last newline. */
  #split(time: string, stream: LogStream, text: string): string {
    const s = this.#streams[stream];
    let out = "";
    let start = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
      out += recordText(time, stream, s.pending + text.slice(start, nl), false);
      s.pending = "";
      s.pendingBytes = 0;
      start = nl + 1;
    }
    const rest = text.slice(start);
    s.pending += rest;
    s.pendingBytes += utf8Length(rest);
    if (s.pendingBytes > this.#max) out += this.#flushStream(time, stream);
    return out;
  }

  #flushStream(time: string, stream: LogStream): string {
    const s = this.#streams[stream];
    if (s.pending === "") return "";
    const out = recordText(time, stream, s.pending, true);
    s.pending = "";
    s.pendingBytes = 0;
    return out;
  }
}

/**
 * A {@link LogWriter} sink that writes to an open file (open it with
 * `append: true`), all of the text or an error.
 */
export function fileSink(file: { writeSync(p: Uint8Array): number }): (text: string) => void {
  const encoder = new TextEncoder();
  return (text) => {
    const bytes = encoder.encode(text);
    let off = 0;
    while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
  };
}

/** What `trun logs` shows of a log, Docker's flags. */
export interface ReadLogsOptions {
  /** Lines to show from the end (`--tail`); undefined or negative: all. */
  tail?: number;
  /** Show lines from this time on (`--since`, inclusive). */
  since?: Date;
  /** Show lines up to this time (`--until`, inclusive). */
  until?: Date;
  /** Start every line with its time (`-t`): `<RFC3339Nano> <content>`. */
  timestamps: boolean;
  /** The streams to show (default both). */
  streams?: readonly LogStream[];
}

/** Text to print on one stream. */
export interface LogOutput {
  /** Where it goes. */
  stream: LogStream;
  /** What to print, newlines included. */
  text: string;
}

/** Per stream: whether the last record was `P`, and whether the line it belongs to is shown. */
interface LineState {
  open: boolean;
  shown: boolean;
}

/**
 * Reads a log file as it grows (`trun logs -f`) and returns what to print.
 * A line made of `P` records and the record ending it is one line: its
 * time is its first record's (when it started), and `--since`, `--until`
 * and `--tail` keep or drop it whole. Its parts print as they come, so a
 * prompt without a newline shows once the monitor flushes it. `tail`
 * counts the lines of the first {@link LogReader.feed} (what the file
 * holds when reading starts), as Docker does, before the time filters.
 * Malformed lines are skipped.
 */
export class LogReader {
  readonly #timestamps: boolean;
  readonly #streams: readonly LogStream[];
  readonly #since: string | undefined;
  readonly #until: string | undefined;
  #tail: number | undefined;
  #rest = "";
  readonly #lines: Record<LogStream, LineState> = {
    stdout: { open: false, shown: false },
    stderr: { open: false, shown: false },
  };

  /** A reader showing what `opts` selects. */
  constructor(opts: ReadLogsOptions) {
    this.#timestamps = opts.timestamps;
    this.#streams = opts.streams ?? STREAMS;
    this.#since = opts.since && logTime(opts.since);
    this.#until = opts.until && logTime(opts.until);
    this.#tail = opts.tail !== undefined && opts.tail >= 0 ? opts.tail : undefined;
  }

  /**
   * Takes the next text of the file (any cut: an unfinished last line is
   * held for the next call or {@link LogReader.end}) and returns what to
   * print, in file order.
   */
  feed(text: string): LogOutput[] {
    const all = this.#rest + text;
    const cut = all.lastIndexOf("\n") + 1;
    this.#rest = all.slice(cut);
    return this.#render(all.slice(0, cut).split("\n"));
  }

  /** Ends the file: reads a last line that has no newline; returns what to print. */
  end(): LogOutput[] {
    const rest = this.#rest;
    this.#rest = "";
    return this.#render([rest]);
  }

  #render(lines: readonly string[]): LogOutput[] {
    const records: LogRecord[] = [];
    for (const line of lines) {
      const r = line === "" ? null : parseLogRecord(line);
      if (r !== null && this.#streams.includes(r.stream)) records.push(r);
    }
    let firstKept = 0;
    if (this.#tail !== undefined) {
      // Tail counts the lines that start in this batch: records that do not
      // continue a P record of their stream.
      const open = { stdout: this.#lines.stdout.open, stderr: this.#lines.stderr.open };
      let starts = 0;
      for (const r of records) {
        if (!open[r.stream]) starts++;
        open[r.stream] = r.partial;
      }
      firstKept = Math.max(0, starts - this.#tail);
      this.#tail = undefined;
    }
    const out: LogOutput[] = [];
    let lineNo = 0;
    for (const r of records) {
      const st = this.#lines[r.stream];
      let text = "";
      if (!st.open) {
        st.shown = lineNo++ >= firstKept && this.#inTime(r.time);
        if (this.#timestamps) text = `${r.time} `;
      }
      st.open = r.partial;
      if (!st.shown) continue;
      text += r.partial ? r.content : `${r.content}\n`;
      const last = out.at(-1);
      if (last?.stream === r.stream) last.text += text;
      else out.push({ stream: r.stream, text });
    }
    return out;
  }

  #inTime(time: string): boolean {
    return (this.#since === undefined || time >= this.#since) &&
      (this.#until === undefined || time <= this.#until);
  }
}

/**
 * What `trun logs` prints of a whole log file `text`: per stream, in file
 * order (see {@link LogReader} for how lines, `tail` and the time filters
 * work). A last line without a newline is read too.
 */
export function readLogs(text: string, opts: ReadLogsOptions): LogOutput[] {
  const reader = new LogReader(opts);
  const out = reader.feed(text);
  out.push(...reader.end());
  return out;
}

// Go's time.ParseDuration units, in milliseconds.
const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds of a Go duration (`10m`, `1h30m`, `1.5h`, `-42s`), or undefined. */
function goDuration(value: string): number | undefined {
  const m = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(value);
  if (!m) return /^[-+]0$/.test(value) ? 0 : undefined;
  let ms = 0;
  for (const [, n, unit] of m[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    ms += Number(n) * DURATION_UNITS[unit!]!;
  }
  return m[1] === "-" ? -ms : ms;
}

// Docker's accepted times: a date, optionally hours, minutes, seconds and
// a fraction, optionally a zone; without a zone the time is local.
const DOCKER_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * A `--since` / `--until` value as Docker's CLI reads it
 * (`GetTimestamp`): a Go duration before `now` (`10m`, `1h30m`, `42s`,
 * truncated to the second), an RFC 3339 time or a prefix of one
 * (`2013-01-02`, `2013-01-02T13:23`, local time without a zone), or Unix
 * seconds (`1136073600.5`). Dates keep milliseconds. Throws an Error
 * naming the value otherwise.
 */
export function parseTimeArg(value: string, now: Date = new Date()): Date {
  // Docker reads a bare "0" as the Unix epoch, not as a zero duration.
  const d = value === "0" ? undefined : goDuration(value);
  if (d !== undefined) return new Date(Math.floor((now.getTime() - d) / 1000) * 1000);
  const m = DOCKER_TIME.exec(value);
  if (m) {
    const [, y, mo, day, h = "0", mi = "0", s = "0", frac = "", zone] = m;
    const ms = Math.floor(Number(frac.padEnd(9, "0")) / 1e6);
    // Field ranges and the day of the month are checked on the UTC calendar.
    const seconds = utcSeconds(+y!, +mo!, +day!, +h, +mi, +s);
    if (seconds !== undefined && zone === undefined) {
      const t = new Date(0);
      t.setFullYear(+y!, +mo! - 1, +day!);
      t.setHours(+h, +mi, +s, ms);
      return t;
    }
    const offset = zone === undefined ? undefined : zoneMinutes(zone);
    if (seconds !== undefined && offset !== undefined) {
      return new Date((seconds - offset * 60) * 1000 + ms);
    }
  }
  if (value.includes("-")) {
    throw new Error(
      `cannot parse "${value}" as an RFC 3339 time such as "2013-01-02T13:23:37Z"`,
    );
  }
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(value);
  if (unix) {
    return new Date(
      Number(unix[1]) * 1000 + Math.floor(Number((unix[2] ?? "").padEnd(9, "0")) / 1e6),
    );
  }
  throw new Error(`failed to parse value as time or duration: "${value}"`);
}

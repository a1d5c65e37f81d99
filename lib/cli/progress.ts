/**
 * The pull and push progress display, drawn the way Docker's CLI draws its
 * JSON message stream (moby's `jsonmessage.DisplayJSONMessagesStream`).
 *
 * On a terminal each layer owns one line, redrawn in place: a new layer
 * adds a line, an update moves the cursor up to the layer's line, clears
 * it, writes `<12 hex>: <status> <progress>` and moves back down, so the
 * cursor always rests below the last layer line. Without a terminal there
 * is no redrawing and no byte counts (as in Docker's logs): one line each
 * time a layer reaches a new state (`Downloading` once, not per chunk). A
 * line without a layer id (`Digest: …`) ends the redrawn block.
 *
 * The renderer is pure: it writes through a callback and reads the time
 * from a parameter, so tests compare its exact output.
 */
import type { PullEvent } from "../image/pull.ts";
import type { PushEvent } from "../image/push.ts";
import { humanSize, shortId } from "./format.ts";

/** Byte counts of one layer's transfer. */
export interface Progress {
  /** Bytes done. */
  current: number;
  /** Bytes expected (0 or absent when unknown). */
  total?: number;
  /** When the transfer started (ms since the epoch), for the time-left estimate. */
  start?: number;
}

/** Options of {@link ProgressRenderer}. */
export interface RendererOptions {
  /** Where the text goes. */
  write: (text: string) => void;
  /** Draw in place with cursor movements (a terminal), or plain lines. */
  tty: boolean;
  /** Terminal columns: the bar shows above 110, the time left above 50 (default 200, Docker's). */
  width?: number;
  /** The clock (default Date.now). */
  now?: () => number;
  /** Redraw a layer's progress at most this often (default 100 ms); status changes always draw. */
  minIntervalMs?: number;
}

const ESC = "\x1b";

/**
 * Docker's `JSONProgress.String()`: `[=====>     ]  1.2MB/5.3MB 3s`, the bar
 * only when the terminal is wider than 110 columns, the time left only
 * above 50 and while unfinished; only the count when the total is unknown.
 */
export function progressText(p: Progress, width = 200, now: number = Date.now()): string {
  const total = p.total ?? 0;
  if (p.current <= 0 && total <= 0) return "";
  if (total <= 0) return humanSize(p.current).padStart(8);
  const percentage = Math.min(50, Math.trunc(Math.trunc((p.current / total) * 100) / 2));
  let bar = "";
  if (width > 110) {
    bar = `[${"=".repeat(percentage)}>${" ".repeat(Math.max(0, 50 - percentage))}] `;
  }
  const numbers = p.current > total
    ? humanSize(p.current).padStart(8)
    : `${humanSize(p.current).padStart(8)}/${humanSize(total)}`;
  let left = "";
  if (p.current > 0 && p.start !== undefined && percentage < 50 && width > 50) {
    const perByte = Math.max(0, now - p.start) / p.current;
    left = ` ${goDuration(Math.trunc(((total - p.current) * perByte) / 1000))}`;
  }
  return bar + numbers + left;
}

/** Whole seconds as Go's `time.Duration.String()`: `0s`, `45s`, `1m5s`, `2h0m3s`. */
export function goDuration(seconds: number): string {
  const s = Math.max(0, Math.trunc(seconds));
  const h = Math.trunc(s / 3600);
  const m = Math.trunc((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h${m}m${rest}s`;
  if (m > 0) return `${m}m${rest}s`;
  return `${rest}s`;
}

/** Draws per-layer status lines and plain lines, Docker style. */
export class ProgressRenderer {
  readonly #opts: RendererOptions;
  // Layer id → its line number in the current block (0 is the top line).
  #lines = new Map<string, number>();
  #last = new Map<string, { status: string; at: number }>();

  /** Builds a renderer writing through `opts.write`. */
  constructor(opts: RendererOptions) {
    this.#opts = opts;
  }

  /**
   * Shows `status` for layer `id`, with byte counts when given. Repeated
   * progress for the same status is drawn at most every `minIntervalMs`.
   */
  status(id: string, status: string, progress?: Progress): void {
    const now = (this.#opts.now ?? Date.now)();
    const counts = progress !== undefined && (progress.current > 0 || (progress.total ?? 0) > 0);
    const last = this.#last.get(id);
    if (!this.#opts.tty) {
      // No byte counts in logs (Docker's "disable progressbar in
      // non-terminal"): a status is printed once, when it is reached.
      if (last?.status === status) return;
      this.#last.set(id, { status, at: now });
      this.#opts.write(`${id}: ${status}\n`);
      return;
    }
    if (
      counts && last !== undefined && last.status === status &&
      now - last.at < (this.#opts.minIntervalMs ?? 100) &&
      progress.current !== progress.total
    ) {
      return;
    }
    this.#last.set(id, { status, at: now });
    let line = this.#lines.get(id);
    let out = "";
    if (line === undefined) {
      line = this.#lines.size;
      this.#lines.set(id, line);
      out += "\n";
    }
    const diff = this.#lines.size - line;
    const text = progress !== undefined ? progressText(progress, this.#opts.width ?? 200, now) : "";
    out += cursorUp(diff) + `${ESC}[2K\r${id}: ${status} ${text}\r` + cursorDown(diff);
    this.#opts.write(out);
  }

  /** Prints a line that belongs to no layer; the layer lines above are final from now on. */
  line(text: string): void {
    this.#lines.clear();
    this.#last.clear();
    this.#opts.write(`${text}\n`);
  }
}

function cursorUp(n: number): string {
  return n === 0 ? "" : `${ESC}[${n}A`;
}

function cursorDown(n: number): string {
  return n === 0 ? "" : `${ESC}[${n}B`;
}

/**
 * Turns pull events into Docker's layer lines: `Pulling fs layer`,
 * `Downloading`, `Download complete`, `Extracting`, `Pull complete`,
 * `Already exists`. "Already exists" lines are held back until the pull
 * turns out to fetch or unpack something, because an image that is up to
 * date shows no layer lines in Docker.
 */
export class PullDisplay {
  readonly #r: ProgressRenderer;
  readonly #now: () => number;
  #held: string[] = [];
  #changed = false;
  #starts = new Map<string, number>();
  #downloaded: string[] = [];
  #extracting: string | undefined;
  #completed = new Set<string>();

  /** Builds the display over a renderer. */
  constructor(renderer: ProgressRenderer, now: () => number = Date.now) {
    this.#r = renderer;
    this.#now = now;
  }

  /** Whether anything was fetched or unpacked (so the image was not up to date). */
  get changed(): boolean {
    return this.#changed;
  }

  /** Takes one event of pullImage(). */
  event(e: PullEvent): void {
    const id = e.digest !== undefined ? shortId(e.digest) : undefined;
    switch (e.type) {
      case "layer-exists":
        if (id === undefined) return;
        if (this.#changed) this.#r.status(id, "Already exists");
        else this.#held.push(id);
        return;
      case "layer-start":
        if (id === undefined) return;
        this.#change();
        this.#starts.set(id, this.#now());
        this.#r.status(id, "Pulling fs layer");
        return;
      case "layer-progress":
        if (id === undefined) return;
        this.#r.status(id, "Downloading", {
          current: e.current ?? 0,
          ...(e.total !== undefined ? { total: e.total } : {}),
          ...(this.#starts.has(id) ? { start: this.#starts.get(id)! } : {}),
        });
        return;
      case "layer-done":
        if (id === undefined) return;
        this.#downloaded.push(id);
        this.#r.status(id, "Download complete");
        return;
      case "unpacking":
        if (id === undefined) return;
        this.#change();
        this.#complete(this.#extracting);
        this.#extracting = id;
        this.#r.status(id, "Extracting");
        return;
      default:
        return;
    }
  }

  /**
   * Ends the layer lines once the pull is recorded: the last layer being
   * unpacked, and any downloaded layer the store already had unpacked, are
   * complete. Held "Already exists" lines are shown unless `upToDate`.
   */
  finish(upToDate: boolean): void {
    if (!upToDate) this.#change();
    this.#complete(this.#extracting);
    this.#extracting = undefined;
    for (const id of this.#downloaded) this.#complete(id);
  }

  #change(): void {
    if (this.#changed) return;
    this.#changed = true;
    for (const id of this.#held) this.#r.status(id, "Already exists");
    this.#held = [];
  }

  #complete(id: string | undefined): void {
    if (id === undefined || this.#completed.has(id)) return;
    this.#completed.add(id);
    this.#r.status(id, "Pull complete");
  }
}

/**
 * Turns push events into Docker's layer lines: `Preparing`, `Pushing`,
 * `Pushed`, `Layer already exists`. Blobs in `hidden` (the image config)
 * get no line, as in Docker.
 */
export class PushDisplay {
  readonly #r: ProgressRenderer;
  readonly #hidden: ReadonlySet<string>;
  readonly #now: () => number;
  #starts = new Map<string, number>();

  /** Builds the display over a renderer; `hidden` lists digests to leave out. */
  constructor(
    renderer: ProgressRenderer,
    hidden: ReadonlySet<string> = new Set(),
    now: () => number = Date.now,
  ) {
    this.#r = renderer;
    this.#hidden = hidden;
    this.#now = now;
  }

  /** Takes one event of pushImage(). */
  event(e: PushEvent): void {
    if (e.digest === undefined || this.#hidden.has(e.digest) || e.type === "done") return;
    const id = shortId(e.digest);
    switch (e.type) {
      case "layer-exists":
        this.#r.status(id, "Layer already exists");
        return;
      case "layer-mounted":
        this.#r.status(id, `Mounted from ${e.from ?? "another repository"}`);
        return;
      case "layer-start":
        this.#starts.set(id, this.#now());
        this.#r.status(id, "Preparing");
        return;
      case "layer-progress":
        this.#r.status(id, "Pushing", {
          current: e.current ?? 0,
          ...(e.total !== undefined ? { total: e.total } : {}),
          ...(this.#starts.has(id) ? { start: this.#starts.get(id)! } : {}),
        });
        return;
      case "layer-done":
        this.#r.status(id, "Pushed");
        return;
    }
  }
}

/**
 * A renderer on trun's stdout: in place when stdout is a terminal (with
 * its width), plain lines otherwise.
 */
export function stdoutRenderer(): ProgressRenderer {
  const tty = Deno.stdout.isTerminal();
  let width = 200;
  if (tty) {
    try {
      width = Deno.consoleSize().columns;
    } catch {
      // Not a real console after all: keep Docker's default width.
    }
  }
  const enc = new TextEncoder();
  return new ProgressRenderer({
    tty,
    width,
    write: (text) => {
      const bytes = enc.encode(text);
      let off = 0;
      while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
    },
  });
}

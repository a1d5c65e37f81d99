/**
 * Writes a file system's dirty data out while a layer is still being
 * unpacked, so that the syncfs(2) that makes the layer durable before it is
 * committed finds little left to write. Measured on a 117 MB Debian layer:
 * that final flush took about 0.5 s when it started from nothing.
 */
import { syncfsInBackground } from "../../ffi/fs.ts";

/** How often the background flush runs while a layer is written. */
export const FLUSH_INTERVAL_MS = 250;

/** A repeating background syncfs(2) of the file system holding a directory. */
export class BackgroundFlush {
  #stopped = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  readonly #loop: Promise<void>;

  /** Starts flushing the file system of `dir` every `intervalMs`. */
  constructor(dir: string, intervalMs = FLUSH_INTERVAL_MS) {
    this.#loop = (async () => {
      while (!this.#stopped) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          this.#timer = setTimeout(resolve, intervalMs);
        });
        if (this.#stopped) break;
        // A failed flush costs only the head start; the final syncfs reports.
        await syncfsInBackground(dir).catch(() => false);
      }
    })();
  }

  /** Stops; resolves once no flush is running. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    await this.#loop;
  }
}

/**
 * Detach keys (`--detach-keys`, Ctrl-P Ctrl-Q by default): parsing Docker's
 * notation and spotting the sequence in what the user types, so that the
 * attach relay can let go of the container without stopping it.
 */

/** Docker's and Podman's default: Ctrl-P, then Ctrl-Q. */
export const DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q";

/** The bytes `ctrl-X` sends for the X Docker accepts besides letters. */
const CTRL_SYMBOLS: Record<string, number> = {
  "@": 0,
  "[": 27,
  "\\": 28,
  "]": 29,
  "^": 30,
  "_": 31,
};

/**
 * The byte sequence of a `--detach-keys` value: comma-separated keys, each a
 * single character or `ctrl-` and a letter or one of `@[\]^_`. An empty
 * value means no detach keys (an empty sequence), as Podman's.
 */
export function parseDetachKeys(spec: string): Uint8Array {
  if (spec === "") return new Uint8Array(0);
  const out: number[] = [];
  for (const key of spec.split(",")) {
    if (key.length === 1) {
      out.push(key.charCodeAt(0));
      continue;
    }
    const k = key.toLowerCase();
    const c = k.startsWith("ctrl-") && k.length === 6 ? k[5]! : undefined;
    if (c !== undefined && c >= "a" && c <= "z") out.push(c.charCodeAt(0) - 96);
    else if (c !== undefined && c in CTRL_SYMBOLS) out.push(CTRL_SYMBOLS[c]!);
    else {
      throw new Error(
        `invalid detach keys "${spec}": unknown key "${key}" (use a character, or ctrl- and a-z, @, [, \\, ], ^ or _)`,
      );
    }
  }
  if (out.some((b) => b > 0x7f)) throw new Error(`invalid detach keys "${spec}": ASCII only`);
  return new Uint8Array(out);
}

/** What the scanner makes of a chunk of input. */
export interface ScanResult {
  /** Bytes to pass on to the container. */
  forward: Uint8Array;
  /** The whole sequence was typed: detach (nothing after it is passed on). */
  detached: boolean;
}

/**
 * Watches input for the detach sequence. Bytes that could be the start of
 * it are held back until the next byte tells; if it is not the sequence
 * after all, they go on with it, as Docker's escape proxy does.
 */
export class DetachScanner {
  #keys: Uint8Array;
  #matched = 0;

  /** A scanner for `keys` (empty: never detaches). */
  constructor(keys: Uint8Array) {
    this.#keys = keys;
  }

  /** Scans `chunk`; returns what to forward and whether to detach. */
  feed(chunk: Uint8Array): ScanResult {
    if (this.#keys.length === 0) return { forward: chunk, detached: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.#keys[this.#matched]) {
        this.#matched++;
        if (this.#matched === this.#keys.length) {
          this.#matched = 0;
          return { forward: new Uint8Array(out), detached: true };
        }
        continue;
      }
      // Not the sequence: release what was held, then look at `b` afresh.
      for (let i = 0; i < this.#matched; i++) out.push(this.#keys[i]!);
      this.#matched = 0;
      if (b === this.#keys[0]) {
        this.#matched = 1;
        if (this.#keys.length === 1) return { forward: new Uint8Array(out), detached: true };
      } else out.push(b);
    }
    return { forward: new Uint8Array(out), detached: false };
  }
}

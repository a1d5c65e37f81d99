/**
 * The error of a layer that was refused or failed to apply, on its own so
 * that the store can tell it apart without loading the tar code (`run`
 * and the container monitor open the store but apply no layer).
 */

/** A layer refused or failed to apply; the message names the layer and the entry. */
export class LayerError extends Error {
  /** The entry's name as written in the tar, when one is to blame. */
  readonly entry: string | undefined;
  /** Builds the error; `entry` is the tar entry at fault, if any. */
  constructor(message: string, entry?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LayerError";
    this.entry = entry;
  }
}

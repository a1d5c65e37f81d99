/**
 * Where tar-split records live and whether the store keeps compressed
 * blobs: the cheap half of lib/store/layer_records.ts, kept apart so that
 * commands that only look (`run`, `ps`) do not load zlib and the tar code.
 */

import { parseDigest } from "./blobs.ts";

/** The environment variable that keeps compressed layer blobs after unpacking. */
export const KEEP_BLOBS_ENV = "TRUN_KEEP_BLOBS";

/** True when the store keeps compressed layer blobs (for people who push the same image a lot). */
export function keepBlobs(): boolean {
  const v = Deno.env.get(KEEP_BLOBS_ENV);
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

/** Where layer `chain`'s tar-split record lives. */
export function recordPath(root: string, chain: string): string {
  return `${root}/layers/${parseDigest(chain).hex}.tar-split.gz`;
}

/** True when layer `chain` has a tar-split record. */
export function hasRecord(root: string, chain: string): boolean {
  try {
    return Deno.statSync(recordPath(root, chain)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

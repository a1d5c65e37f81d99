/**
 * trun build's layer cache: which image a build step made, by the step's
 * key. The images are ordinary ones; an untagged image the cache holds is
 * an intermediate image (Docker's term), which `images` hides without
 * `-a` and `image prune` keeps without `-a`.
 */
import type { StoreContext } from "./db.ts";

/** The image step `key` made, if it is still in the store. */
export function cachedStep(ctx: StoreContext, key: string): string | undefined {
  const row = ctx.db.prepare(
    "SELECT c.image_id FROM build_cache c JOIN images i ON i.id = c.image_id WHERE c.key = ?",
  ).get(key) as { image_id: string } | undefined;
  return row?.image_id;
}

/** Remembers that step `key` made image `imageId`. */
export function rememberStep(ctx: StoreContext, key: string, imageId: string): void {
  ctx.db.prepare("INSERT OR REPLACE INTO build_cache (key, image_id, created) VALUES (?, ?, ?)")
    .run(key, imageId, Date.now());
}

/** Ids of the images the build cache holds. */
export function buildCacheImages(ctx: StoreContext): Set<string> {
  const rows = ctx.db.prepare("SELECT DISTINCT image_id FROM build_cache").all() as {
    image_id: string;
  }[];
  return new Set(rows.map((r) => r.image_id));
}

/** Forgets the cache rows of images no longer in the store; returns how many. */
export function dropStaleSteps(ctx: StoreContext): number {
  const r = ctx.db.prepare(
    "DELETE FROM build_cache WHERE image_id NOT IN (SELECT id FROM images)",
  ).run();
  return Number(r.changes);
}

/**
 * Helpers the image commands share: `--format` checked as a usage error,
 * references in Docker's familiar form (`busybox:latest`,
 * `localhost:5000/x:1`), and the message of a caught error.
 */
import { type CommandDef, UsageError } from "./args.ts";
import { type OutputFormat, parseFormat, TemplateError } from "./format.ts";
import { parseReference } from "../oci/reference.ts";
import type { ImageRecord } from "../store/mod.ts";

/** `--format` parsed, with template mistakes as usage errors of `def`. */
export function formatFlag(def: CommandDef, value: string | undefined): OutputFormat {
  try {
    return parseFormat(value);
  } catch (e) {
    if (e instanceof TemplateError) throw new UsageError(def, e.message);
    throw e;
  }
}

/** A fully qualified reference in Docker's short form; unparsable ones as stored. */
export function familiar(reference: string): string {
  try {
    return parseReference(reference).familiar;
  } catch {
    return reference;
  }
}

/** The message of an error, for the per-argument errors some commands print and go on after. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The intermediate images among `images`: untagged ones that trun build's
 * cache holds (`cached`) and that another image builds on (its layers and
 * history continue theirs), as Docker hides images with children.
 */
export function intermediateImages(
  images: readonly ImageRecord[],
  cached: ReadonlySet<string>,
): Set<string> {
  const out = new Set<string>();
  const steps = (i: ImageRecord) =>
    (i.config.history ?? []).map((h) => `${h.created ?? ""} ${h.created_by ?? ""}`);
  for (const a of images) {
    if (!cached.has(a.id) || a.tags.length > 0 || a.digests.length > 0) continue;
    const mine = steps(a);
    const child = images.some((b) => {
      if (b.id === a.id) return false;
      const theirs = steps(b);
      return theirs.length > mine.length && mine.every((s, k) => theirs[k] === s) &&
        a.layers.every((l, k) => b.layers[k] === l);
    });
    if (child) out.add(a.id);
  }
  return out;
}

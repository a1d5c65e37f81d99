/**
 * Helpers the image commands share: `--format` checked as a usage error,
 * references in Docker's familiar form (`busybox:latest`,
 * `localhost:5000/x:1`), and the message of a caught error.
 */
import { type CommandDef, UsageError } from "./args.ts";
import { type OutputFormat, parseFormat, TemplateError } from "./format.ts";
import { parseReference } from "../oci/reference.ts";

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

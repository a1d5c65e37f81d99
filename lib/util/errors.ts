/** Error helpers shared across layers. */

/** The message of anything thrown: an Error's message, else its text. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * What the system said, without Deno's own decoration: "No such file or
 * directory (os error 2): readfile '/x'" reads "no such file or
 * directory". For messages that already name the path.
 */
export function systemErrorText(err: unknown): string {
  const text = errorMessage(err).replace(/\s*\(os error \d+\)(:.*)?$/s, "");
  return text.charAt(0).toLowerCase() + text.slice(1);
}

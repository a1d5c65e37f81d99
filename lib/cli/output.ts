/**
 * Writing to the terminal: warnings, errors and help go to stderr with the
 * `trun:` prefix Docker users expect; results go to stdout.
 */
import { type CommandDef, helpText } from "./args.ts";

const encoder = new TextEncoder();

/** Prints a warning line to stderr. */
export function warn(message: string): void {
  Deno.stderr.writeSync(encoder.encode(`trun: warning: ${message}\n`));
}

/** Prints an error line to stderr. */
export function printError(message: string): void {
  Deno.stderr.writeSync(encoder.encode(`trun: ${message}\n`));
}

/** Prints a line to stdout. */
export function println(line = ""): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

/** Prints a command's help to stdout; returns exit status 0. */
export function printHelp(def: CommandDef): number {
  println(helpText(def));
  return 0;
}

/** `trun version` (and `--version`): prints the version, as text or `--format json`. */
import { type CommandDef, parseArgs, stringFlag, UsageError } from "./args.ts";
import { printHelp, println } from "./output.ts";
import { versionInfo, versionText } from "../version.ts";

/** The grammar of `trun version`. */
export const VERSION_COMMAND: CommandDef = {
  name: "version",
  usage: "[OPTIONS]",
  summary: "Show the trun version",
  interspersed: true,
  maxArgs: 0,
  flags: [{
    long: "format",
    short: "f",
    kind: "string",
    value: "FORMAT",
    help: "json for machine-readable output",
  }],
};

/** Runs `trun version`. */
export function main(argv: string[]): Promise<number> {
  const p = parseArgs(VERSION_COMMAND, argv);
  if (p.help) return Promise.resolve(printHelp(VERSION_COMMAND));
  const format = stringFlag(p, "format");
  if (format === "json") println(JSON.stringify(versionInfo(), null, 2));
  else if (format === undefined) println(versionText());
  else throw new UsageError(VERSION_COMMAND, `unknown --format "${format}": use json`);
  return Promise.resolve(0);
}

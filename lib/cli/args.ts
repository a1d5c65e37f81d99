/**
 * A small declarative command-line parser with Docker's conventions.
 *
 * Why not a library: trun needs option parsing to stop at the first
 * positional argument (`trun run -it IMAGE sh -c "x"`: `-c` belongs to the
 * container, Docker's `SetInterspersed(false)`). `@stricli/core` and
 * `node:util.parseArgs` have no such mode and parse every `-x` on the line;
 * `commander`/`cac` cost 45–75 ms of startup on the `run` path. This parser
 * is ~150 lines with no imports.
 */

/** One flag of a command. */
export interface FlagDef {
  /** Long name without dashes: `env` for `--env`. */
  long: string;
  /** One-letter short name without the dash: `e`. */
  short?: string;
  /** `bool` takes no value; `string` takes one (last wins); `list` repeats. */
  kind: "bool" | "string" | "list";
  /** One line of help. */
  help: string;
  /** Name of the value in help (`NAME=VALUE`). */
  value?: string;
}

/** A command's grammar. */
export interface CommandDef {
  /** `run`, `image ls`. */
  name: string;
  /** `[OPTIONS] IMAGE [COMMAND] [ARG...]`. */
  usage: string;
  /** One line on what it does. */
  summary: string;
  /** Flags. */
  flags: FlagDef[];
  /** Whether flags may follow positionals (false: the first positional ends flags). */
  interspersed: boolean;
  /** Fewest positionals. */
  minArgs?: number;
  /** Most positionals. */
  maxArgs?: number;
}

/** Parsed flags and positionals. */
export interface ParsedArgs {
  /** Flag values by long name: boolean, string or string[]. */
  flags: Record<string, boolean | string | string[]>;
  /** Positional arguments. */
  args: string[];
  /** `-h`/`--help` was given. */
  help: boolean;
}

/** A mistake on the command line; main prints it with the command's usage. */
export class UsageError extends Error {
  /** The command whose usage to show. */
  readonly command: CommandDef;
  /** Builds a usage error for `command`. */
  constructor(command: CommandDef, message: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

const BOOL_VALUES: Record<string, boolean> = { true: true, false: false, "1": true, "0": false };

/** Parses `argv` (the words after the command name) by `def`. */
export function parseArgs(def: CommandDef, argv: readonly string[]): ParsedArgs {
  const byLong = new Map(def.flags.map((f) => [f.long, f]));
  const byShort = new Map(def.flags.filter((f) => f.short).map((f) => [f.short!, f]));
  const flags: ParsedArgs["flags"] = {};
  const args: string[] = [];
  let help = false;

  const set = (f: FlagDef, value: string | undefined, shown: string) => {
    if (f.kind === "bool") {
      if (value === undefined) flags[f.long] = true;
      else {
        const b = BOOL_VALUES[value];
        if (b === undefined) {
          throw new UsageError(
            def,
            `invalid value "${value}" for flag ${shown}: expected true or false`,
          );
        }
        flags[f.long] = b;
      }
      return;
    }
    if (value === undefined) throw new UsageError(def, `flag needs an argument: ${shown}`);
    if (f.kind === "string") flags[f.long] = value;
    else {
      const list = (flags[f.long] as string[] | undefined) ?? [];
      list.push(value);
      flags[f.long] = list;
    }
  };

  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (name === "help") {
        help = true;
        continue;
      }
      const f = byLong.get(name);
      if (!f) throw new UsageError(def, `unknown flag: --${name}`);
      let value = eq < 0 ? undefined : a.slice(eq + 1);
      if (value === undefined && f.kind !== "bool") {
        if (i + 1 >= argv.length) throw new UsageError(def, `flag needs an argument: --${name}`);
        value = argv[++i];
      }
      set(f, value, `--${name}`);
    } else if (a.startsWith("-") && a.length > 1) {
      // A cluster of short flags: `-it`, `-eFOO=1`, `-e FOO=1`.
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        if (c === "h" && !byShort.has("h")) {
          help = true;
          continue;
        }
        const f = byShort.get(c);
        if (!f) throw new UsageError(def, `unknown shorthand flag: '${c}' in ${a}`);
        if (f.kind === "bool") {
          set(f, undefined, `-${c}`);
          continue;
        }
        let value: string | undefined = a.slice(j + 1);
        if (value === "") {
          if (i + 1 >= argv.length) {
            throw new UsageError(def, `flag needs an argument: '${c}' in -${c}`);
          }
          value = argv[++i];
        } else if (value.startsWith("=")) value = value.slice(1);
        set(f, value, `-${c}`);
        break;
      }
    } else {
      args.push(a);
      if (!def.interspersed) {
        i++;
        break;
      }
    }
  }
  for (; i < argv.length; i++) args.push(argv[i]!);

  if (!help) {
    if (def.minArgs !== undefined && args.length < def.minArgs) {
      throw new UsageError(
        def,
        `"trun ${def.name}" requires at least ${def.minArgs} argument${
          def.minArgs === 1 ? "" : "s"
        }`,
      );
    }
    if (def.maxArgs !== undefined && args.length > def.maxArgs) {
      throw new UsageError(
        def,
        def.maxArgs === 0
          ? `"trun ${def.name}" accepts no arguments`
          : `"trun ${def.name}" accepts at most ${def.maxArgs} argument${
            def.maxArgs === 1 ? "" : "s"
          }`,
      );
    }
  }
  return { flags, args, help };
}

/** A string flag's value. */
export function stringFlag(p: ParsedArgs, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === "string" ? v : undefined;
}

/** A boolean flag's value (false when absent). */
export function boolFlag(p: ParsedArgs, name: string): boolean {
  return p.flags[name] === true;
}

/** A repeated flag's values (empty when absent). */
export function listFlag(p: ParsedArgs, name: string): string[] {
  const v = p.flags[name];
  return Array.isArray(v) ? v : [];
}

/** The help text of a command, Docker style. */
export function helpText(def: CommandDef): string {
  const lines = [`Usage:  trun ${def.name} ${def.usage}`, "", def.summary];
  if (def.flags.length) {
    lines.push("", "Options:");
    const rows = def.flags.map((f) => {
      const left = `${f.short ? `-${f.short}, ` : "    "}--${f.long}${
        f.kind === "bool" ? "" : ` ${f.value ?? "string"}`
      }`;
      return [left, f.help] as const;
    });
    const width = Math.max(...rows.map(([l]) => l.length)) + 3;
    for (const [l, h] of rows) lines.push(`  ${l.padEnd(width)}${h}`);
  }
  return lines.join("\n");
}

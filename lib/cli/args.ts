/**
 * A small declarative command-line parser with Docker's conventions, typed
 * by its definitions: a command declares its flags once with
 * {@link defineCommand}, and {@link parseArgs} returns their values under
 * those names with types derived from each flag's kind (`bool` →
 * `boolean`, `string` → `string | undefined`, `list` → `string[]`), so a
 * misspelled flag name fails `deno check`.
 *
 * Why not a library: trun needs option parsing to stop at the first
 * positional argument (`trun run -it IMAGE sh -c "x"`: `-c` belongs to the
 * container, Docker's `SetInterspersed(false)`). `@stricli/core` and
 * `node:util.parseArgs` have no such mode and parse every `-x` on the line;
 * `commander`/`cac` cost 45–75 ms of startup on the `run` path. This parser
 * is ~200 lines with no imports.
 */

/** What a flag takes: `bool` no value; `string` one (last wins); `list` one per use. */
export type FlagKind = "bool" | "string" | "list";

/** One flag of a command; its long name (`env` for `--env`) is its key in {@link FlagDefs}. */
export interface FlagDef {
  /** What the flag takes. */
  kind: FlagKind;
  /** One-letter short name without the dash: `e`. */
  short?: string;
  /** One line of help. */
  help: string;
  /** Name of the value in help (`NAME=VALUE`); `string` when absent. */
  value?: string;
  /** A `bool` flag's value when it is not given (false when absent). */
  default?: boolean;
}

/** A command's flags by long name, in the order help lists them. */
export type FlagDefs = Readonly<Record<string, FlagDef>>;

/** The parsed value of one flag, by its kind. */
export type FlagValue<D extends FlagDef> = D["kind"] extends "bool" ? boolean
  : D["kind"] extends "list" ? string[]
  : string | undefined;

/** The parsed values of a command's flags, one property per declared flag. */
export type FlagValues<F extends FlagDefs> = { -readonly [N in keyof F]: FlagValue<F[N]> };

/** A command's grammar. */
export interface CommandDef<F extends FlagDefs = FlagDefs> {
  /** `run`, `image ls`: the name help and errors show. */
  name: string;
  /** `[OPTIONS] IMAGE [COMMAND] [ARG...]`. */
  usage: string;
  /** What it does, under the usage line of its help. */
  summary: string;
  /** Flags by long name. */
  flags: F;
  /** Whether flags may follow positionals (default true; false: the first positional ends flags). */
  interspersed?: boolean;
  /** Fewest positionals. */
  minArgs?: number;
  /** Most positionals. */
  maxArgs?: number;
}

/**
 * Declares a command; the flag names and kinds given here type the
 * `flags` that {@link parseArgs} returns for it.
 */
export function defineCommand<const F extends FlagDefs>(def: CommandDef<F>): CommandDef<F> {
  return def;
}

/** Parsed flags and positionals. */
export interface ParsedArgs<F extends FlagDefs = FlagDefs> {
  /** Every declared flag's value: given, or its default (false, [] or undefined). */
  flags: FlagValues<F>;
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
export function parseArgs<F extends FlagDefs>(
  def: CommandDef<F>,
  argv: readonly string[],
): ParsedArgs<F> {
  const defs: [string, FlagDef][] = Object.entries(def.flags);
  const byLong = new Map(defs);
  const byShort = new Map<string, [string, FlagDef]>();
  for (const d of defs) if (d[1].short !== undefined) byShort.set(d[1].short, d);
  const flags: Record<string, boolean | string | string[] | undefined> = {};
  for (const [name, f] of defs) {
    flags[name] = f.kind === "bool" ? f.default ?? false : f.kind === "list" ? [] : undefined;
  }
  const args: string[] = [];
  let help = false;

  const set = (name: string, f: FlagDef, value: string | undefined, shown: string) => {
    if (f.kind === "bool") {
      if (value === undefined) flags[name] = true;
      else {
        const b = BOOL_VALUES[value];
        if (b === undefined) {
          throw new UsageError(
            def,
            `invalid value "${value}" for flag ${shown}: expected true or false`,
          );
        }
        flags[name] = b;
      }
      return;
    }
    if (value === undefined) throw new UsageError(def, `flag needs an argument: ${shown}`);
    if (f.kind === "string") flags[name] = value;
    else (flags[name] as string[]).push(value);
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
      set(name, f, value, `--${name}`);
    } else if (a.startsWith("-") && a.length > 1) {
      // A cluster of short flags: `-it`, `-eFOO=1`, `-e FOO=1`.
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        if (c === "h" && !byShort.has("h")) {
          help = true;
          continue;
        }
        const found = byShort.get(c);
        if (!found) throw new UsageError(def, `unknown shorthand flag: '${c}' in ${a}`);
        const [name, f] = found;
        if (f.kind === "bool") {
          set(name, f, undefined, `-${c}`);
          continue;
        }
        let value: string | undefined = a.slice(j + 1);
        if (value === "") {
          if (i + 1 >= argv.length) {
            throw new UsageError(def, `flag needs an argument: '${c}' in -${c}`);
          }
          value = argv[++i];
        } else if (value.startsWith("=")) value = value.slice(1);
        set(name, f, value, `-${c}`);
        break;
      }
    } else {
      args.push(a);
      if (def.interspersed === false) {
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
  // Every declared name was given a value of its kind above.
  return { flags: flags as FlagValues<F>, args, help };
}

/** The help text of a command, Docker style; flags in the order they are declared. */
export function helpText(def: CommandDef): string {
  const lines = [`Usage:  trun ${def.name} ${def.usage}`, "", def.summary];
  const flags = Object.entries(def.flags);
  if (flags.length) {
    lines.push("", "Options:");
    const rows = flags.map(([long, f]) => {
      const left = `${f.short ? `-${f.short}, ` : "    "}--${long}${
        f.kind === "bool" ? "" : ` ${f.value ?? "string"}`
      }`;
      return [left, f.help] as const;
    });
    const width = Math.max(...rows.map(([l]) => l.length)) + 3;
    for (const [l, h] of rows) lines.push(`  ${l.padEnd(width)}${h}`);
  }
  return lines.join("\n");
}

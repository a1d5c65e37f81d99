/**
 * What shell completion knows about trun, built from the command table
 * and each command's grammar: the words at the top level and in each
 * family (`container`, `image`), each command's flags (and which take a
 * value), and what each operand position is (a container, an image, a
 * volume, one of a few words, or anything). Pure: `trun completion` loads
 * the grammars and the shell generators (completion_scripts.ts) render
 * this.
 *
 * Operands come from the usage line a command's help shows, so that help
 * and completion agree: a word naming CONTAINER, IMAGE or VOLUME (also as
 * its tail, `SOURCE_IMAGE[:TAG]`, or an image reference `NAME[:TAG]`)
 * completes those names, `NAME|ID` completes containers and images,
 * `bash|zsh|fish` completes those words, and a word with `...` repeats.
 */
import type { CommandDef } from "./args.ts";
import type { CommandEntry } from "./commands.ts";

/** Names a live trun lists for completion. */
export type NameKind = "container" | "image" | "volume";

/** What may stand at one operand position. */
export interface Operand {
  /** Live names to offer there. */
  kinds: NameKind[];
  /** Fixed words to offer there (`bash`, `zsh`, `fish`). */
  words: string[];
}

/** A word to offer, with one line of help (zsh and fish show it). */
export interface Choice {
  /** What is completed. */
  word: string;
  /** Its description. */
  help: string;
}

/** One flag of a command. */
export interface CompletionFlag {
  /** `--all`, then `-a` when it has a short name. */
  names: string[];
  /** It takes a value: the next word is that value, never a flag. */
  takesValue: boolean;
  /** One line of help. */
  help: string;
}

/** One command and every name it is typed by. */
export interface CompletionCommand {
  /** `container ls`, `ps`, `container list`, …: the words after `trun`. */
  names: string[];
  /** Its flags, `--help` last. */
  flags: CompletionFlag[];
  /** What each operand position takes. */
  operands: Operand[];
  /** What the positions after those take (nothing unless the last repeats). */
  rest: Operand;
  /** Flags may follow operands; false: the first operand ends the flags (`run`, `exec`). */
  interspersed: boolean;
}

/** Everything a completion script needs. */
export interface CompletionSpec {
  /** Words after `trun`: commands, their top-level aliases and the families. */
  topLevel: Choice[];
  /** Each family's subcommands (aliases included), alphabetically. */
  families: { name: string; subcommands: Choice[] }[];
  /** Every visible command with its grammar. */
  commands: CompletionCommand[];
}

/** A table entry with its grammar, loaded (undefined when it has none). */
export interface EntryGrammar {
  /** The row of the command table. */
  entry: CommandEntry;
  /** Its grammar. */
  grammar: CommandDef | undefined;
}

const NOTHING: Operand = { kinds: [], words: [] };

/** The kinds of name a usage word stands for. */
function kindsOf(word: string): NameKind[] {
  if (/^NAME\|ID$/.test(word)) return ["container", "image"];
  if (/^NAME\[:TAG/.test(word)) return ["image"];
  const m = /^(?:[A-Z]+_)*(CONTAINER|IMAGE|VOLUME)(?![A-Z_])/.exec(word);
  return m ? [m[1]!.toLowerCase() as NameKind] : [];
}

/**
 * The operand positions of a usage line (its first line only): `[OPTIONS]
 * CONTAINER [CONTAINER...]` is one container, then more containers;
 * `[OPTIONS] IMAGE [COMMAND] [ARG...]` is an image, then anything.
 */
export function usageOperands(usage: string): { operands: Operand[]; rest: Operand } {
  const operands: Operand[] = [];
  let rest = NOTHING;
  const line = usage.split("\n")[0] ?? "";
  // A bracketed group (`[ps OPTIONS]`, `[ARG...]`) is one position, as is a bare word.
  for (const group of line.match(/\[[^\]]*\]?|[^\s[]\S*/g) ?? []) {
    const text = group.replace(/^\[/, "").replace(/\]+$/, "").trim();
    if (text === "OPTIONS" || text === "") continue;
    const repeats = text.endsWith("...");
    const word = repeats ? text.slice(0, -3) : text;
    const alternatives = word.split("|");
    const operand: Operand = alternatives.length > 1 &&
        alternatives.every((a) => /^[a-z][a-z0-9-]*$/.test(a))
      ? { kinds: [], words: alternatives }
      : { kinds: kindsOf(word), words: [] };
    if (repeats) {
      rest = operand;
      break;
    }
    operands.push(operand);
  }
  return { operands, rest };
}

/** A grammar's flags as completion offers them, `--help` last. */
export function completionFlags(def: CommandDef): CompletionFlag[] {
  const flags = Object.entries(def.flags).map(([long, f]) => ({
    names: f.short === undefined ? [`--${long}`] : [`--${long}`, `-${f.short}`],
    takesValue: f.kind !== "bool",
    help: f.help,
  }));
  const helpShort = Object.values(def.flags).some((f) => f.short === "h") ? [] : ["-h"];
  return [...flags, { names: ["--help", ...helpShort], takesValue: false, help: "Print usage" }];
}

/** The family of a name (`image` for `image ls`), or "" at the top level. */
function familyOf(name: string): string {
  const space = name.indexOf(" ");
  return space < 0 ? "" : name.slice(0, space);
}

const byWord = (a: Choice, b: Choice) => (a.word < b.word ? -1 : a.word > b.word ? 1 : 0);

/** The completion spec of the visible entries of a command table and their grammars. */
export function completionSpec(table: readonly EntryGrammar[]): CompletionSpec {
  const visible = table.filter(({ entry }) => !entry.hidden);
  const topLevel: Choice[] = [];
  const families = new Map<string, Choice[]>();
  const commands: CompletionCommand[] = [];
  for (const { entry } of visible) {
    if (entry.load === undefined) families.set(entry.name, []);
  }
  for (const { entry, grammar } of visible) {
    const names = [entry.name, ...(entry.aliases ?? [])];
    for (const name of names) {
      const family = familyOf(name);
      if (family === "") topLevel.push({ word: name, help: entry.summary });
      else families.get(family)?.push({ word: name.slice(family.length + 1), help: entry.summary });
    }
    if (entry.load === undefined) continue;
    commands.push({
      names,
      ...(grammar ? usageOperands(grammar.usage) : { operands: [], rest: NOTHING }),
      flags: grammar ? completionFlags(grammar) : [],
      interspersed: grammar?.interspersed ?? true,
    });
  }
  return {
    topLevel,
    families: [...families].map(([name, subcommands]) => ({
      name,
      subcommands: subcommands.sort(byWord),
    })),
    commands,
  };
}

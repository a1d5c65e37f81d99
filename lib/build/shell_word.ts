/**
 * Variable substitution and quote removal in Dockerfile instructions, as
 * Docker's builder does it (its "shell lexer"): `$VAR`, `${VAR}`,
 * `${VAR:-default}`, `${VAR:+alt}`, `${VAR:?message}` and their forms
 * without the colon; single quotes keep text as written, double quotes
 * allow substitution, and the escape character (`\` or the `# escape`
 * directive's backtick) keeps the next character as it is.
 *
 * Hand-written: the npm Dockerfile parsers are made for editors (ranges,
 * diagnostics) and leave these rules to their callers.
 */

/** Looks a variable up: its value, or undefined when unset. */
export type VariableLookup = (name: string) => string | undefined;

/** A Dockerfile word that cannot be processed (an unmatched quote, `${` without `}`). */
export class WordError extends Error {
  /** Names the failing text in the message. */
  constructor(message: string) {
    super(message);
    this.name = "WordError";
  }
}

/**
 * One word with variables substituted and quotes removed. Whitespace is kept
 * as it is (ENV and LABEL values, WORKDIR, USER).
 */
export function expandWord(text: string, lookup: VariableLookup, escape = "\\"): string {
  return new Lexer(text, lookup, escape).words(false).join("");
}

/**
 * The words of `text`, split on whitespace outside quotes, each with
 * variables substituted and quotes removed. An unquoted variable whose value
 * holds whitespace gives several words, as in a shell (`EXPOSE $PORTS`).
 */
export function expandWords(text: string, lookup: VariableLookup, escape = "\\"): string[] {
  return new Lexer(text, lookup, escape).words(true);
}

/** Whether `text` refers to a variable at all (so that expansion can be skipped). */
export function mentionsVariable(text: string): boolean {
  return text.includes("$");
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const SPACE = /[ \t\r\n]/;

class Lexer {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly lookup: VariableLookup,
    private readonly escape: string,
  ) {}

  /** Reads to the end; `split`: words break on unquoted whitespace. */
  words(split: boolean): string[] {
    const out: string[] = [];
    let word = "";
    let started = false;
    const flush = () => {
      if (started) out.push(word);
      word = "";
      started = false;
    };
    while (this.i < this.s.length) {
      const c = this.s[this.i]!;
      if (split && SPACE.test(c)) {
        flush();
        this.i++;
        continue;
      }
      if (c === "$") {
        const value = this.dollar();
        if (!split) {
          word += value;
          started = true;
          continue;
        }
        // Unquoted: the value's own whitespace splits words, and an empty
        // value makes no word, as in a shell.
        const parts = value.split(/[ \t\r\n]+/);
        word += parts[0]!;
        if (parts[0] !== "") started = true;
        for (const part of parts.slice(1)) {
          flush();
          word = part;
          started = part !== "";
        }
        continue;
      }
      started = true;
      if (c === this.escape) {
        this.i++;
        // A trailing escape character stays, as Docker keeps it.
        word += this.i < this.s.length ? this.s[this.i++] : c;
      } else if (c === "'") {
        word += this.singleQuoted();
      } else if (c === '"') {
        word += this.doubleQuoted();
      } else {
        word += c;
        this.i++;
      }
    }
    flush();
    return out;
  }

  private singleQuoted(): string {
    const end = this.s.indexOf("'", this.i + 1);
    if (end < 0) {
      throw new WordError(
        `unexpected end of statement while looking for matching single-quote in "${this.s}"`,
      );
    }
    const text = this.s.slice(this.i + 1, end);
    this.i = end + 1;
    return text;
  }

  private doubleQuoted(): string {
    this.i++;
    let text = "";
    while (this.i < this.s.length) {
      const c = this.s[this.i]!;
      if (c === '"') {
        this.i++;
        return text;
      }
      if (c === "$") {
        text += this.dollar();
      } else if (c === this.escape && this.i + 1 < this.s.length) {
        const next = this.s[this.i + 1]!;
        // In double quotes only these are escaped; elsewhere both stay.
        text += next === '"' || next === "$" || next === this.escape ? next : c + next;
        this.i += 2;
      } else {
        text += c;
        this.i++;
      }
    }
    throw new WordError(
      `unexpected end of statement while looking for matching double-quote in "${this.s}"`,
    );
  }

  /** `$NAME`, `${NAME}`, `${NAME<op>word}`; a lone `$` is itself. */
  private dollar(): string {
    this.i++;
    const c = this.s[this.i];
    if (c === "{") return this.braced();
    if (c === undefined || !NAME_START.test(c)) return "$";
    const name = this.name();
    return this.lookup(name) ?? "";
  }

  private name(): string {
    const start = this.i;
    while (this.i < this.s.length && NAME_CHAR.test(this.s[this.i]!)) this.i++;
    return this.s.slice(start, this.i);
  }

  private braced(): string {
    this.i++;
    const name = this.name();
    if (name === "") {
      throw new WordError(`bad substitution in "${this.s}": a variable name must follow "\${"`);
    }
    const value = this.lookup(name);
    if (this.i >= this.s.length) {
      throw new WordError(`missing "}" in the substitution of "${name}" in "${this.s}"`);
    }
    if (this.s[this.i] === "}") {
      this.i++;
      return value ?? "";
    }
    let op = "";
    if (this.s[this.i] === ":") {
      op = ":";
      this.i++;
    }
    const kind = this.s[this.i];
    if (kind !== "-" && kind !== "+" && kind !== "?") {
      throw new WordError(
        `unsupported modifier (${op}${kind ?? "end"}) in substitution of "${name}" in "${this.s}"`,
      );
    }
    this.i++;
    const word = this.untilBrace(name);
    // With the colon an empty value counts as unset (POSIX).
    const set = op === ":" ? value !== undefined && value !== "" : value !== undefined;
    if (kind === "-") return set ? value! : word;
    if (kind === "+") return set ? word : "";
    if (set) return value!;
    throw new WordError(`${name}: ${word === "" ? "is not allowed to be unset" : word}`);
  }

  /** The modifier's word up to the matching `}`, itself expanded. */
  private untilBrace(name: string): string {
    let text = "";
    while (this.i < this.s.length) {
      const c = this.s[this.i]!;
      if (c === "}") {
        this.i++;
        return text;
      }
      if (c === "$") text += this.dollar();
      else if (c === "'") text += this.singleQuoted();
      else if (c === '"') text += this.doubleQuoted();
      else if (c === this.escape && this.i + 1 < this.s.length) {
        text += this.s[this.i + 1];
        this.i += 2;
      } else {
        text += c;
        this.i++;
      }
    }
    throw new WordError(`missing "}" in the substitution of "${name}" in "${this.s}"`);
  }
}

/**
 * Reading a Dockerfile into instructions with Docker's rules: parser
 * directives (`# syntax`, `# escape`, `# check`) at the top, comments, line
 * continuations with the escape character, here-documents (`RUN <<EOF`,
 * `<<-EOF`, quoted delimiters), leading `--flags`, and the JSON (exec) form
 * beside the shell form. Each instruction keeps the lines it came from, so
 * errors can name them.
 *
 * Hand-written: the npm Dockerfile parsers are made for editors (ranges and
 * diagnostics, experimental here-documents) and leave Docker's semantics to
 * their callers; this file is those semantics, and nothing else.
 */

/** The parser directives of a Dockerfile. */
export interface Directives {
  /** `# escape=`: `\` (default) or `` ` ``. */
  escape: string;
  /** `# syntax=`: recorded, not acted on (trun has one frontend). */
  syntax?: string;
  /** `# check=`: recorded, not acted on. */
  check?: string;
}

/** A here-document attached to RUN, COPY or ADD. */
export interface Heredoc {
  /** The delimiter word (`EOF`). */
  name: string;
  /** The lines between the instruction and the delimiter, each ending in a newline. */
  content: string;
  /** False when the delimiter was quoted (`<<"EOF"`): no variable substitution. */
  expand: boolean;
  /** `<<-EOF`: leading tabs were removed from each line. */
  chomp: boolean;
  /** A file descriptor written before `<<` (`3<<EOF`), if any. */
  fd?: number;
}

/** A `--name[=value]` flag before an instruction's arguments. */
export interface InstructionFlag {
  /** Without the dashes. */
  name: string;
  /** The value as written (variables not yet substituted); null for a bare `--name`. */
  value: string | null;
}

/** One instruction, as written. */
export interface Instruction {
  /** Lower-case keyword: `from`, `run`, `copy`… */
  keyword: string;
  /** The first line it came from (1-based). */
  line: number;
  /** The last line (continuations and here-documents included). */
  endLine: number;
  /** The instruction's text, continuation lines joined, as Docker's history shows it. */
  original: string;
  /** Leading flags, in order. */
  flags: InstructionFlag[];
  /** The arguments after the flags, as written. */
  args: string;
  /** The arguments as a JSON array of strings (exec form), or null (shell form). */
  json: string[] | null;
  /** Here-documents, in the order of their `<<` markers. */
  heredocs: Heredoc[];
  /** ONBUILD's trigger. */
  trigger?: Instruction;
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  /** The parser directives. */
  directives: Directives;
  /** Instructions in order. */
  instructions: Instruction[];
  /** Things Docker warns about (empty continuation lines). */
  warnings: string[];
}

/** A Dockerfile that cannot be read, with the line it failed on. */
export class DockerfileError extends Error {
  /** The 1-based line, or 0 when the error is not about one line. */
  readonly line: number;
  /** `message` is prefixed with the line number. */
  constructor(line: number, message: string) {
    super(line > 0 ? `Dockerfile:${line}: ${message}` : `Dockerfile: ${message}`);
    this.name = "DockerfileError";
    this.line = line;
  }
}

/** Every instruction keyword Docker knows. */
export const KEYWORDS = new Set([
  "add",
  "arg",
  "cmd",
  "copy",
  "entrypoint",
  "env",
  "expose",
  "from",
  "healthcheck",
  "label",
  "maintainer",
  "onbuild",
  "run",
  "shell",
  "stopsignal",
  "user",
  "volume",
  "workdir",
]);

/** Instructions whose arguments may hold here-documents. */
const HEREDOC_KEYWORDS = new Set(["run", "copy", "add"]);

const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(["syntax", "escape", "check"]);
const HEREDOC_MARKER = /^(\d*)<<(-?)(['"]?)([A-Za-z0-9_./-]+)\3$/;

/** Reads a Dockerfile's text. Throws {@link DockerfileError} naming the line. */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const { directives, next } = readDirectives(lines);
  const escape = directives.escape;
  const continuation = new RegExp(`${escapeRegExp(escape)}[ \\t]*$`);
  const warnings: string[] = [];
  const instructions: Instruction[] = [];
  let i = next;
  while (i < lines.length) {
    const first = lines[i]!;
    if (isBlank(first) || isComment(first)) {
      i++;
      continue;
    }
    const start = i;
    let joined = "";
    let line = first;
    for (;;) {
      if (!continuation.test(line)) {
        joined += line;
        break;
      }
      joined += line.replace(continuation, "");
      i++;
      // Comment lines inside a continuation are dropped; blank ones too,
      // with Docker's warning.
      while (i < lines.length && (isComment(lines[i]!) || isBlank(lines[i]!))) {
        if (isBlank(lines[i]!)) {
          warnings.push(`Dockerfile:${i + 1}: empty continuation line`);
        }
        i++;
      }
      if (i >= lines.length) break;
      line = lines[i]!;
    }
    let end = i;
    i++;
    const head = splitInstruction(joined.trim(), start + 1);
    const heredocs: Heredoc[] = [];
    if (HEREDOC_KEYWORDS.has(head.keyword)) {
      for (const marker of heredocMarkers(head.rest)) {
        const { doc, after } = readHeredoc(lines, i, marker, start + 1);
        heredocs.push(doc);
        i = after;
        end = after - 1;
      }
    }
    instructions.push(buildInstruction(head, start + 1, end + 1, joined.trim(), heredocs));
  }
  return { directives, instructions, warnings };
}

function readDirectives(lines: string[]): { directives: Directives; next: number } {
  const directives: Directives = { escape: "\\" };
  const seen = new Set<string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const m = lines[i]!.match(DIRECTIVE);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    // An unknown directive is a comment, and ends the directives.
    if (!KNOWN_DIRECTIVES.has(key)) break;
    if (seen.has(key)) {
      throw new DockerfileError(i + 1, `only one ${key} parser directive can be used`);
    }
    seen.add(key);
    const value = m[2]!;
    if (key === "escape") {
      if (value !== "\\" && value !== "`") {
        throw new DockerfileError(
          i + 1,
          `invalid escape token '${value}' does not match \` or \\`,
        );
      }
      directives.escape = value;
    } else if (key === "syntax") {
      directives.syntax = value;
    } else {
      directives.check = value;
    }
  }
  return { directives, next: i };
}

function isBlank(line: string): boolean {
  return line.trim() === "";
}

function isComment(line: string): boolean {
  return line.trimStart().startsWith("#");
}

function escapeRegExp(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

interface Head {
  keyword: string;
  flags: InstructionFlag[];
  rest: string;
}

/** Keyword, leading flags and the rest of one instruction's text. */
function splitInstruction(text: string, line: number): Head {
  const m = text.match(/^(\S+)\s*([\s\S]*)$/);
  if (!m) throw new DockerfileError(line, "empty instruction");
  const keyword = m[1]!.toLowerCase();
  if (!KEYWORDS.has(keyword)) {
    throw new DockerfileError(line, `unknown instruction: ${m[1]!.toUpperCase()}`);
  }
  let rest = m[2]!;
  const flags: InstructionFlag[] = [];
  for (;;) {
    const fm = rest.match(/^--([A-Za-z][A-Za-z0-9-]*)(=((?:"[^"]*"|'[^']*'|[^\s"'])*))?(\s+|$)/);
    if (!fm) break;
    flags.push({ name: fm[1]!, value: fm[2] === undefined ? null : fm[3]! });
    rest = rest.slice(fm[0].length);
  }
  if (/^--(\s|$)/.test(rest)) rest = rest.slice(2).trimStart();
  return { keyword, flags, rest: rest.trim() };
}

/** The JSON exec form, when the arguments are a JSON array of strings. */
function jsonForm(args: string): string[] | null {
  if (!args.startsWith("[")) return null;
  try {
    const v: unknown = JSON.parse(args);
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  } catch {
    // Not JSON: the shell form, as Docker falls back.
  }
  return null;
}

interface Marker {
  name: string;
  quoted: boolean;
  chomp: boolean;
  fd?: number;
}

/** The `<<NAME` words of an instruction's arguments, outside quotes. */
function heredocMarkers(args: string): Marker[] {
  const out: Marker[] = [];
  for (const word of rawWords(args)) {
    const m = word.match(HEREDOC_MARKER);
    if (!m) continue;
    out.push({
      name: m[4]!,
      quoted: m[3] !== "",
      chomp: m[2] === "-",
      ...(m[1] ? { fd: Number(m[1]) } : {}),
    });
  }
  return out;
}

/** Words split on whitespace outside quotes, quotes kept. */
function rawWords(s: string): string[] {
  return s.match(/(?:"(?:\\.|[^"\\])*"|'[^']*'|[^\s"'])+/g) ?? [];
}

function readHeredoc(
  lines: string[],
  from: number,
  marker: Marker,
  line: number,
): { doc: Heredoc; after: number } {
  let content = "";
  for (let i = from; i < lines.length; i++) {
    const raw = marker.chomp ? lines[i]!.replace(/^\t+/, "") : lines[i]!;
    if (raw === marker.name) {
      return {
        doc: {
          name: marker.name,
          content,
          expand: !marker.quoted,
          chomp: marker.chomp,
          ...(marker.fd !== undefined ? { fd: marker.fd } : {}),
        },
        after: i + 1,
      };
    }
    content += raw + "\n";
  }
  throw new DockerfileError(line, `unterminated heredoc: no line "${marker.name}" ends it`);
}

function buildInstruction(
  head: Head,
  line: number,
  endLine: number,
  original: string,
  heredocs: Heredoc[],
): Instruction {
  const ins: Instruction = {
    keyword: head.keyword,
    line,
    endLine,
    original,
    flags: head.flags,
    args: head.rest,
    json: jsonForm(head.rest),
    heredocs,
  };
  if (head.keyword === "onbuild") {
    if (head.rest === "") throw new DockerfileError(line, "ONBUILD requires at least one argument");
    const inner = splitInstruction(head.rest, line);
    if (inner.keyword === "onbuild" || inner.keyword === "from" || inner.keyword === "maintainer") {
      throw new DockerfileError(
        line,
        `${inner.keyword.toUpperCase()} isn't allowed as an ONBUILD trigger`,
      );
    }
    ins.trigger = buildInstruction(inner, line, endLine, head.rest, []);
  }
  return ins;
}

/** The value of flag `name` (the last one given), undefined when absent. */
export function flagValue(ins: Instruction, name: string): string | null | undefined {
  const found = ins.flags.filter((f) => f.name === name);
  return found.length === 0 ? undefined : found.at(-1)!.value;
}

/** Every value of a repeatable flag (`RUN --mount`). */
export function flagValues(ins: Instruction, name: string): string[] {
  return ins.flags.filter((f) => f.name === name).map((f) => f.value ?? "");
}

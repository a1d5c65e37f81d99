/**
 * How the image commands render values the way Docker's CLI does, so
 * scripts and eyes trained on `docker images` read trun's output unchanged:
 * sizes as go-units' `HumanSizeWithPrecision` ("7.8MB", "1.2GB", decimal
 * units), ages as its `HumanDuration` ("2 hours ago"), columns as Go's
 * `text/tabwriter` with Docker's settings (minimum width 10, padding 3),
 * JSON as Go's encoder writes it (`<`, `>`, `&` escaped), and the small
 * subset of Go templates that `--format` is used with in practice
 * (`{{.Field}}`, `{{.A.B}}`, `{{json .}}`, a `table` prefix).
 *
 * Everything here is pure: the current time is a parameter.
 */

const DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/**
 * A byte count the way go-units' `HumanSizeWithPrecision` prints it:
 * divided by 1000 until below 1000, then `%.<precision>g` and the unit, no
 * space. Docker uses precision 4 (`HumanSize`) for progress and reclaimed
 * space, 3 for the SIZE columns of `images` and `history`.
 */
export function humanSize(bytes: number, precision = 4): string {
  let size = bytes;
  let unit = 0;
  while (size >= 1000 && unit < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    unit++;
  }
  return `${goFormatG(size, precision)}${DECIMAL_UNITS[unit]}`;
}

const BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/**
 * A byte count the way go-units' `BytesSize` prints it: divided by 1024
 * until below 1024, then `%.4g` and the binary unit ("1.5MiB",
 * "7.629GiB"); Docker's MEM USAGE / LIMIT column.
 */
export function binarySize(bytes: number): string {
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < BINARY_UNITS.length - 1) {
    size /= 1024;
    unit++;
  }
  return `${goFormatG(size, 4)}${BINARY_UNITS[unit]}`;
}

/**
 * Go's `%.<precision>g`: `precision` significant digits, trailing zeros of
 * the fraction dropped, exponent form (`1e+04`, two exponent digits at
 * least) when the exponent reaches the precision. Only sizes beyond the
 * largest unit get there ("1e+04YB").
 */
export function goFormatG(value: number, precision: number): string {
  if (value === 0) return "0";
  const strip = (s: string) => s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  // The exponent after rounding to `precision` digits decides the form, as in Go.
  const [mantissa, expText] = value.toExponential(precision - 1).split("e") as [string, string];
  const exp = Number(expText);
  if (exp < -4 || exp >= precision) {
    const sign = exp < 0 ? "-" : "+";
    return `${strip(mantissa)}e${sign}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  return strip(value.toFixed(Math.max(0, precision - 1 - exp)));
}

/**
 * A duration the way go-units' `HumanDuration` words it ("Less than a
 * second", "About a minute", "3 hours", "2 weeks", "3 years").
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  // go-units rounds hours (math.Round), unlike the smaller units.
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3_600_000) / 24 / 365)} years`;
}

/**
 * "2 hours ago" for an RFC 3339 time, as Docker's CREATED columns; "N/A"
 * when the time is missing or unreadable (images built without one).
 */
export function timeAgo(created: string | undefined, now: number = Date.now()): string {
  const t = parseTime(created);
  if (t === undefined) return "N/A";
  return `${humanDuration(Math.max(0, now - t))} ago`;
}

/**
 * An RFC 3339 time as Go's `time.Time.String()` prints it in UTC
 * ("2023-11-14 22:13:20 +0000 UTC"), the `CreatedAt` of Docker's JSON
 * lines; "" when missing.
 */
export function goTimeString(created: string | undefined): string {
  const t = parseTime(created);
  if (t === undefined) return "";
  const iso = new Date(Math.floor(t / 1000) * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000 UTC`;
}

/** Milliseconds since the epoch of an RFC 3339 time, or undefined when missing or unreadable. */
export function parseTime(created: string | undefined): number | undefined {
  if (created === undefined || created === "") return undefined;
  const t = Date.parse(created);
  // Go's zero time (year 1) means "unknown" in image configs.
  return Number.isNaN(t) || t <= Date.UTC(1970, 0, 1) ? undefined : t;
}

/**
 * Aligns rows into columns as Docker's `tabwriter.NewWriter(out, 10, 1, 3,
 * ' ', 0)`: each column is as wide as its widest cell plus 3 spaces, at
 * least `minWidth` (10; `docker top` uses 20); the last column is not
 * padded.
 */
export function table(rows: readonly (readonly string[])[], minWidth = 10): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i === row.length - 1) return;
      widths[i] = Math.max(widths[i] ?? 0, Math.max(textWidth(cell) + 3, minWidth));
    });
  }
  return rows.map((row) =>
    row.map((cell, i) =>
      i === row.length - 1 ? cell : cell + " ".repeat((widths[i] ?? 0) - textWidth(cell))
    ).join("")
  ).join("\n");
}

/** Characters (code points) in `s`: tabwriter counts runes, not UTF-16 units. */
function textWidth(s: string): number {
  return [...s].length;
}

/** Cuts `s` to `max` characters, the last one being "…", as Docker's `Ellipsis`. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  if (max <= 0) return "";
  return chars.slice(0, max - 1).join("") + "…";
}

/** An image or layer id as Docker's `TruncateID`: no `sha256:`, 12 hex digits. */
export function shortId(id: string): string {
  const colon = id.indexOf(":");
  return (colon >= 0 ? id.slice(colon + 1) : id).slice(0, 12);
}

/**
 * JSON as Go's `encoding/json` writes it: `<`, `>` and `&` escaped as
 * `\u003c`, `\u003e`, `\u0026` (Docker's output is full of `<none>`), and
 * with `indent` like `json.MarshalIndent`.
 */
export function goJson(value: unknown, indent?: string): string {
  return JSON.stringify(value, null, indent)
    .replaceAll("<", "\\u003c")
    .replaceAll(">", "\\u003e")
    .replaceAll("&", "\\u0026");
}

/** A `--format` value that does not fit the template subset trun supports. */
export class TemplateError extends Error {
  /** Builds the error; `message` says what is unsupported. */
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

/** A parsed `--format`: the kind of output, and for templates, the compiled template. */
export type OutputFormat =
  | { kind: "table" }
  | { kind: "json" }
  | { kind: "template"; table: boolean; render: (value: unknown) => string; source: string };

/**
 * Reads a `--format` value the way Docker's CLI does: empty or `table` is
 * the default table, `json` one JSON document per item, `table TEMPLATE`
 * a table of the template's fields, anything else a template per line.
 * `\t` and `\n` written literally in the value mean tab and newline.
 */
export function parseFormat(format: string | undefined): OutputFormat {
  const f = (format ?? "").trim();
  if (f === "" || f === "table") return { kind: "table" };
  if (f === "json" || f === "{{json .}}") return { kind: "json" };
  const isTable = f.startsWith("table ");
  const source = (isTable ? f.slice(6) : f).trim().replaceAll("\\t", "\t").replaceAll(
    "\\n",
    "\n",
  );
  return { kind: "template", table: isTable, render: compileTemplate(source), source };
}

type TemplatePart = string | { json: boolean; path: string[] };

/**
 * Compiles the Go template subset `--format` is used with: literal text,
 * `{{.}}`, `{{.Field}}`, `{{.A.B}}` and `{{json .X}}`. Anything else
 * (pipelines, `range`, functions other than json) is a TemplateError that
 * names the action, rather than output that silently differs from Docker's.
 */
export function compileTemplate(source: string): (value: unknown) => string {
  const parts: TemplatePart[] = [];
  let rest = source;
  while (rest.length > 0) {
    const open = rest.indexOf("{{");
    if (open < 0) {
      parts.push(rest);
      break;
    }
    if (open > 0) parts.push(rest.slice(0, open));
    const close = rest.indexOf("}}", open);
    if (close < 0) throw new TemplateError(`template "${source}" has "{{" without "}}"`);
    const action = rest.slice(open + 2, close).trim().replace(/^-\s*/, "").replace(/\s*-$/, "");
    const m = /^(json\s+)?(\.[A-Za-z0-9_.]*)$/.exec(action);
    if (!m) {
      throw new TemplateError(
        `template action "{{${action}}}" is not supported: use {{.Field}}, {{.A.B}} or {{json .Field}}`,
      );
    }
    const path = m[2] === "." ? [] : m[2]!.slice(1).split(".");
    if (path.some((p) => p === "")) {
      throw new TemplateError(`template action "{{${action}}}" has an empty field name`);
    }
    parts.push({ json: m[1] !== undefined, path });
    rest = rest.slice(close + 2);
  }
  return (value) =>
    parts.map((p) => {
      if (typeof p === "string") return p;
      let v: unknown = value;
      for (const key of p.path) {
        v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[key] : undefined;
      }
      if (p.json) return goJson(v === undefined ? null : v);
      return templateText(v);
    }).join("");
}

/** How Go's text/template prints a value: strings as is, missing as `<no value>`, objects as Go would. */
function templateText(v: unknown): string {
  if (v === undefined) return "<no value>";
  if (v === null) return "<nil>";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(templateText).join(" ")}]`;
  const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a < b ? -1 : 1);
  return `map[${entries.map(([k, x]) => `${k}:${templateText(x)}`).join(" ")}]`;
}

/**
 * Renders items with a parsed `--format`: the default table (`headers`
 * and `row`), JSON lines, or the template per item; a `table` template
 * gets a header row made of `labels` for its fields, aligned like the
 * default table.
 */
export function renderItems<T>(
  format: OutputFormat,
  items: readonly T[],
  view: {
    headers: readonly string[];
    row: (item: T) => readonly string[];
    json: (item: T) => Record<string, unknown>;
    labels: Readonly<Record<string, string>>;
  },
): string[] {
  if (format.kind === "table") return lines(table([view.headers, ...items.map(view.row)]));
  if (format.kind === "json") return items.map((i) => goJson(view.json(i)));
  const out = items.map((i) => format.render(view.json(i)));
  if (!format.table) return out;
  const header = format.source.replace(
    /\{\{\s*(?:json\s+)?\.([A-Za-z0-9_]+)[A-Za-z0-9_.]*\s*\}\}/g,
    (_, field: string) => view.labels[field] ?? field.toUpperCase(),
  );
  // A table template separates columns with tabs: align them as tabwriter does.
  const rows = [header, ...out].map((l) => l.split("\t"));
  return lines(table(rows));
}

function lines(text: string): string[] {
  return text === "" ? [] : text.split("\n");
}

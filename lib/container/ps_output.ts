/**
 * The host's `ps` output cut down to one container's processes, as
 * Docker's `top` does it: the header's `PID` column says which process a
 * row is, rows whose pid belongs to the container are kept, and the thread
 * rows of `ps m` (pid `-`) follow the process row above them. Pure: the
 * caller runs `ps` and knows the container's pids.
 */

/** What `top` shows: `ps`'s column titles and the container's rows, one cell per title. */
export interface ProcessTable {
  /** The header's words (`UID`, `PID`, `PPID`, …). */
  titles: string[];
  /** One row per process (or thread), as many cells as titles. */
  processes: string[][];
}

/** A mistake in the `ps` output or options, with Docker's wording. */
export class PsOutputError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "PsOutputError";
  }
}

/** The `ps` options `top` uses when none are given. */
export const DEFAULT_PS_ARGS: readonly string[] = ["-ef"];

/**
 * Refuses `ps` options that rename another column to `PID` (`-o
 * user=PID`): `top` would then read the wrong column as the pid. Only
 * `pid=…` may carry such a header (Docker's rule).
 */
export function checkPsArgs(args: readonly string[]): void {
  for (const arg of args) {
    const m = /^([^\s=]*)=\s*(PID\S*)$/.exec(arg);
    if (m && m[1] !== "pid") {
      throw new PsOutputError(`specifying "${m[1]}=${m[2]}" is not allowed`);
    }
  }
}

/** The words of `line` split at ASCII white space (Go's `strings.Fields` on ASCII, as Docker). */
function fields(line: string): string[] {
  return line.split(/[ \t\n\v\f\r]+/).filter((f) => f !== "");
}

/**
 * The rows of `output` (what `ps` printed, header first) whose PID column
 * holds one of `pids`. A row with more words than titles has its extra
 * words joined into the last cell (a command line with spaces). Throws
 * when the header has no `PID` column or a row's pid is not a number.
 */
export function containerRows(output: string, pids: ReadonlySet<number>): ProcessTable {
  const lines = output.split("\n");
  const titles = fields(lines[0] ?? "");
  const pidIndex = titles.indexOf("PID");
  if (pidIndex < 0) throw new PsOutputError("Couldn't find PID field in ps output");
  const processes: string[][] = [];
  // Whether the last process row was kept: thread rows (`ps m`) follow it.
  let keptLast = false;
  for (const line of lines.slice(1)) {
    const cells = fields(line);
    const pidCell = cells[pidIndex];
    if (pidCell === undefined) continue;
    if (pidCell === "-") {
      if (keptLast) processes.push(fitToTitles(cells, titles.length));
      continue;
    }
    if (!/^\d+$/.test(pidCell)) throw new PsOutputError(`Unexpected pid "${pidCell}" in ps output`);
    keptLast = pids.has(Number(pidCell));
    if (keptLast) processes.push(fitToTitles(cells, titles.length));
  }
  return { titles, processes };
}

/** `cells` with the words past the last title joined into one last cell. */
function fitToTitles(cells: string[], count: number): string[] {
  if (cells.length <= count) return cells;
  return [...cells.slice(0, count - 1), cells.slice(count - 1).join(" ")];
}

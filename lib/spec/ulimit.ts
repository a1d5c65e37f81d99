/** `--ulimit NAME=SOFT[:HARD]` into `process.rlimits`, with Docker's names and checks. */
import type { Rlimit } from "./types.ts";

/** Docker's ulimit names (go-units), each an `RLIMIT_*` resource. */
export const ULIMIT_NAMES: readonly string[] = [
  "core",
  "cpu",
  "data",
  "fsize",
  "locks",
  "memlock",
  "msgqueue",
  "nice",
  "nofile",
  "nproc",
  "rss",
  "rtprio",
  "rttime",
  "sigpending",
  "stack",
  "as",
];

/** `RLIM_INFINITY` as a JSON number (the engine reads anything at or above 2^63 as unlimited). */
export const UNLIMITED = 2 ** 64 - 1;

function limitValue(text: string, arg: string): number {
  if (text === "unlimited" || text === "-1") return UNLIMITED;
  if (!/^\d+$/.test(text)) throw new Error(`invalid ulimit argument: "${arg}"`);
  return Number(text);
}

/** Parses one `--ulimit` value. */
export function parseUlimit(arg: string): Rlimit {
  const eq = arg.indexOf("=");
  if (eq < 0) throw new Error(`invalid ulimit argument: "${arg}": use NAME=SOFT[:HARD]`);
  const name = arg.slice(0, eq);
  if (!ULIMIT_NAMES.includes(name)) {
    throw new Error(`invalid ulimit type: "${name}" (one of ${ULIMIT_NAMES.join(", ")})`);
  }
  const parts = arg.slice(eq + 1).split(":");
  if (parts.length > 2) {
    throw new Error(
      `too many limit value arguments - "${arg.slice(eq + 1)}", can only have up to two, soft:hard`,
    );
  }
  const soft = limitValue(parts[0]!, arg);
  const hard = parts[1] === undefined ? soft : limitValue(parts[1], arg);
  if (soft > hard) {
    throw new Error(`ulimit soft limit must be less than or equal to hard limit: "${arg}"`);
  }
  return { type: `RLIMIT_${name.toUpperCase()}`, soft, hard };
}

/** Parses every `--ulimit`; a later one for the same name replaces an earlier one. */
export function parseUlimits(list: readonly string[]): Rlimit[] {
  const byType = new Map<string, Rlimit>();
  for (const arg of list) {
    const r = parseUlimit(arg);
    byType.set(r.type, r);
  }
  return [...byType.values()];
}

// Id mappings for unit tests of spec generation and the engine: rootless
// with subordinate ids, rootless with a single id, and root without a user
// namespace, all for a user whose uid and gid are 1000.
import type { IdMapping, IdRange } from "../../lib/runtime/idmap.ts";

/** One map line. */
export function range(inside: number, outside: number, count: number): IdRange {
  return { inside, outside, count };
}

/** Rootless with /etc/subuid ranges: 0 → 1000, 1.. → 100000... */
export function subordinate(): IdMapping {
  return {
    mode: "subordinate",
    uid: [range(0, 1000, 1), range(1, 100000, 65536)],
    gid: [range(0, 1000, 1), range(1, 100000, 65536)],
    helpers: { newuidmap: "/usr/bin/newuidmap", newgidmap: "/usr/bin/newgidmap" },
  };
}

/** Rootless without subordinate ids: only 0 → 1000. */
export function single(): IdMapping {
  return { mode: "single", uid: [range(0, 1000, 1)], gid: [range(0, 1000, 1)] };
}

/** Root without a user namespace. */
export function hostMode(): IdMapping {
  return { mode: "host", uid: [range(0, 0, 4294967295)], gid: [range(0, 0, 4294967295)] };
}

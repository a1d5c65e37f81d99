// Table tests of --detach-keys parsing and of spotting the sequence in input.
import assert from "node:assert/strict";
import {
  DEFAULT_DETACH_KEYS,
  DetachScanner,
  parseDetachKeys,
} from "../../lib/container/detach_keys.ts";

const KEYS: [string, number[]][] = [
  [DEFAULT_DETACH_KEYS, [16, 17]],
  ["ctrl-a", [1]],
  ["CTRL-Z", [26]],
  ["ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", [0, 27, 28, 29, 30, 31]],
  ["a,b,ctrl-c", [97, 98, 3]],
  ["", []],
];
for (const [spec, want] of KEYS) {
  Deno.test(`parseDetachKeys("${spec}")`, () => {
    assert.deepEqual([...parseDetachKeys(spec)], want);
  });
}

for (const bad of ["ctrl-", "ctrl-1", "ctrl-ab", "alt-x", "ctrl-p,,ctrl-q", "é"]) {
  Deno.test(`parseDetachKeys("${bad}") is refused`, () => {
    assert.throws(() => parseDetachKeys(bad), /invalid detach keys/);
  });
}

/** Feeds chunks; returns the forwarded bytes and whether it detached. */
function scan(keys: string, chunks: number[][]): { out: number[]; detached: boolean } {
  const s = new DetachScanner(parseDetachKeys(keys));
  const out: number[] = [];
  for (const c of chunks) {
    const r = s.feed(new Uint8Array(c));
    out.push(...r.forward);
    if (r.detached) return { out, detached: true };
  }
  return { out, detached: false };
}

const SCANS: [string, string, number[][], { out: number[]; detached: boolean }][] = [
  ["plain input passes", DEFAULT_DETACH_KEYS, [[104, 105]], { out: [104, 105], detached: false }],
  ["the sequence in one chunk", DEFAULT_DETACH_KEYS, [[97, 16, 17, 98]], {
    out: [97],
    detached: true,
  }],
  ["the sequence split across chunks", DEFAULT_DETACH_KEYS, [[16], [17]], {
    out: [],
    detached: true,
  }],
  ["a held prefix is released when the next byte differs", DEFAULT_DETACH_KEYS, [[16], [120]], {
    out: [16, 120],
    detached: false,
  }],
  ["a repeated first key restarts the match", DEFAULT_DETACH_KEYS, [[16, 16, 17]], {
    out: [16],
    detached: true,
  }],
  ["no keys never detach", "", [[16, 17]], { out: [16, 17], detached: false }],
  ["a one-key sequence", "ctrl-x", [[97, 24]], { out: [97], detached: true }],
];
for (const [name, keys, chunks, want] of SCANS) {
  Deno.test(`DetachScanner: ${name}`, () => assert.deepEqual(scan(keys, chunks), want));
}

/**
 * Unit tests of lib/container/names.ts: generated names have Docker's
 * shape, avoid names in use (a digit after the first try, as dockerd), skip
 * the easter egg, and `--name` follows Docker's rule.
 */
import assert from "node:assert/strict";
import { ADJECTIVES, generateName, SURNAMES, validateName } from "../../lib/container/names.ts";

/** A `random` that returns `values` in turn, then 0. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++] ?? 0;
}

/** The `random()` value that picks index `i` of a list of `n`. */
const at = (i: number, n: number) => (i + 0.5) / n;
const adj = (w: string) => at(ADJECTIVES.indexOf(w), ADJECTIVES.length);
const sur = (w: string) => at(SURNAMES.indexOf(w), SURNAMES.length);

Deno.test("word lists: sizes, unique, lowercase letters only", () => {
  assert.ok(ADJECTIVES.length >= 60, `${ADJECTIVES.length} adjectives`);
  assert.ok(SURNAMES.length >= 100, `${SURNAMES.length} surnames`);
  for (const list of [ADJECTIVES, SURNAMES]) {
    assert.equal(new Set(list).size, list.length, "no duplicates");
    for (const w of list) assert.match(w, /^[a-z]+$/);
  }
});

Deno.test("generateName() gives adjective_surname names that pass validateName()", () => {
  for (let i = 0; i < 200; i++) {
    const name = generateName(new Set());
    assert.match(name, /^[a-z]+_[a-z]+$/);
    assert.equal(validateName(name), name);
  }
});

const GENERATE: [string, Set<string>, number[], string][] = [
  ["a plain name when free", new Set(), [adj("happy"), sur("curie")], "happy_curie"],
  [
    "a digit after a collision",
    new Set(["happy_curie"]),
    [adj("happy"), sur("curie"), adj("happy"), sur("curie"), 0.35],
    "happy_curie3",
  ],
  [
    "another word pair when that is free",
    new Set(["happy_curie"]),
    [adj("happy"), sur("curie"), adj("calm"), sur("turing"), 0.75],
    "calm_turing7",
  ],
  [
    "never boring_wozniak",
    new Set(),
    [adj("boring"), sur("wozniak"), adj("boring"), sur("turing")],
    "boring_turing",
  ],
];
for (const [what, taken, values, want] of GENERATE) {
  Deno.test(`generateName(): ${what}`, () => {
    assert.equal(generateName(taken, sequence(...values)), want);
  });
}

Deno.test("generateName() appends more digits when one-digit names are all taken", () => {
  // random() always 0: the first adjective and surname, digit 0 each time.
  const base = `${ADJECTIVES[0]}_${SURNAMES[0]}`;
  const taken = new Set([base, `${base}0`, `${base}00`]);
  assert.equal(generateName(taken, () => 0), `${base}000`);
  const last = `${ADJECTIVES.at(-1)}_${SURNAMES.at(-1)}`;
  assert.equal(generateName(new Set([last]), () => 0.999999), `${last}9`);
});

const VALID: [string, string][] = [
  ["web", "web"],
  ["/web", "web"],
  ["a1", "a1"],
  ["My_app.v2-test", "My_app.v2-test"],
  ["0day", "0day"],
];
for (const [name, want] of VALID) {
  Deno.test(`validateName() accepts "${name}"`, () => assert.equal(validateName(name), want));
}

for (const name of ["", "a", "_web", "-web", ".web", "web app", "wéb", "a/b", "web:1"]) {
  Deno.test(`validateName() refuses "${name}" and says what is allowed`, () => {
    assert.throws(
      () => validateName(name),
      (e: Error) =>
        e.message.startsWith(`Invalid container name "${name}": `) &&
        e.message.includes("[a-zA-Z0-9][a-zA-Z0-9_.-]+"),
    );
  });
}

// Table tests of the command-line parser, and of the types it derives from
// a command's flag definitions (checked by `deno check` and `deno test`).
import assert from "node:assert/strict";
import { defineCommand, helpText, parseArgs, UsageError } from "../../lib/cli/args.ts";

const RUNLIKE = defineCommand({
  name: "run",
  usage: "IMAGE [COMMAND]",
  summary: "x",
  interspersed: false,
  flags: {
    env: { short: "e", kind: "list", help: "" },
    interactive: { short: "i", kind: "bool", help: "" },
    tty: { short: "t", kind: "bool", help: "" },
    workdir: { short: "w", kind: "string", help: "" },
    hostname: { short: "h", kind: "string", help: "" },
    rm: { kind: "bool", help: "" },
  },
});

/** The flags of RUNLIKE when none is given. */
const NONE = {
  env: [],
  interactive: false,
  tty: false,
  workdir: undefined,
  hostname: undefined,
  rm: false,
};

const CASES: [string, string[], Record<string, unknown>, string[]][] = [
  ["stops at the first positional", ["-it", "img", "sh", "-c", "x"], {
    interactive: true,
    tty: true,
  }, ["img", "sh", "-c", "x"]],
  ["takes a value after a short flag", ["-e", "A=1", "img"], { env: ["A=1"] }, ["img"]],
  ["takes a value glued to a short flag", ["-eA=1", "img"], { env: ["A=1"] }, ["img"]],
  ["collects repeated list flags", ["-e", "A=1", "--env", "B=2", "--env=C=3", "img"], {
    env: ["A=1", "B=2", "C=3"],
  }, ["img"]],
  ["accepts --flag=value", ["--workdir=/tmp", "img"], { workdir: "/tmp" }, ["img"]],
  ["accepts a bool with =false", ["--rm=false", "img"], { rm: false }, ["img"]],
  ["accepts a bool with =1", ["--rm=1", "img"], { rm: true }, ["img"]],
  ["lets the last string win", ["-w", "/a", "-w", "/b", "img"], { workdir: "/b" }, ["img"]],
  ["ends flags at --", ["--", "-img"], {}, ["-img"]],
  ["gives -h to a flag that owns it", ["-h", "box", "img"], { hostname: "box" }, ["img"]],
  ["handles a value in a cluster", ["-itw", "/x", "img"], {
    interactive: true,
    tty: true,
    workdir: "/x",
  }, ["img"]],
  ["gives every flag its default when none is given", ["img"], {}, ["img"]],
];

for (const [what, argv, flags, args] of CASES) {
  Deno.test(`parseArgs() ${what}`, () => {
    const p = parseArgs(RUNLIKE, argv);
    assert.deepEqual(p.flags, { ...NONE, ...flags });
    assert.deepEqual(p.args, args);
    assert.equal(p.help, false);
  });
}

Deno.test("parseArgs() parses flags after positionals when interspersed", () => {
  const p = parseArgs({ ...RUNLIKE, interspersed: true }, ["img", "--rm", "x"]);
  assert.deepEqual(p.args, ["img", "x"]);
  assert.equal(p.flags.rm, true);
});

Deno.test("parseArgs() intersperses flags unless the command says otherwise", () => {
  const def = defineCommand({
    name: "images",
    usage: "",
    summary: "x",
    flags: { quiet: { short: "q", kind: "bool", help: "" } },
  });
  assert.deepEqual(parseArgs(def, ["busybox", "-q"]), {
    flags: { quiet: true },
    args: ["busybox"],
    help: false,
  });
});

Deno.test("parseArgs() gives a bool flag its declared default", () => {
  const def = defineCommand({
    name: "history",
    usage: "",
    summary: "x",
    flags: { human: { short: "H", kind: "bool", default: true, help: "" } },
  });
  assert.equal(parseArgs(def, []).flags.human, true);
  assert.equal(parseArgs(def, ["--human=false"]).flags.human, false);
  assert.equal(parseArgs(def, ["-H"]).flags.human, true);
});

const ERRORS: [string, string[], RegExp][] = [
  ["unknown long flag", ["--nope", "img"], /^unknown flag: --nope$/],
  ["unknown short flag", ["-z", "img"], /^unknown shorthand flag: 'z' in -z$/],
  ["unknown short flag in a cluster", ["-iz", "img"], /^unknown shorthand flag: 'z' in -iz$/],
  ["missing value", ["-w"], /^flag needs an argument: 'w' in -w$/],
  ["missing value of a long flag", ["--workdir"], /^flag needs an argument: --workdir$/],
  ["bad bool", ["--rm=maybe", "img"], /invalid value "maybe" for flag --rm/],
];
for (const [what, argv, re] of ERRORS) {
  Deno.test(`parseArgs() rejects ${what}`, () => {
    assert.throws(
      () => parseArgs(RUNLIKE, argv),
      (e: unknown) => e instanceof UsageError && re.test(e.message) && e.command === RUNLIKE,
    );
  });
}

Deno.test("parseArgs() enforces argument counts", () => {
  assert.throws(() => parseArgs({ ...RUNLIKE, minArgs: 1 }, []), /requires at least 1 argument/);
  assert.throws(
    () => parseArgs({ ...RUNLIKE, interspersed: true, maxArgs: 0 }, ["x"]),
    /accepts no arguments/,
  );
});

Deno.test("parseArgs() reports --help without count errors", () => {
  assert.equal(parseArgs({ ...RUNLIKE, minArgs: 1 }, ["--help"]).help, true);
});

Deno.test("parseArgs() takes -h as help when no flag owns it", () => {
  const { hostname: _, ...flags } = RUNLIKE.flags;
  assert.equal(parseArgs({ ...RUNLIKE, flags }, ["-h"]).help, true);
});

Deno.test("helpText() lists flags with short names, in declaration order", () => {
  const text = helpText(RUNLIKE);
  assert.match(text, /Usage: {2}trun run IMAGE \[COMMAND\]/);
  assert.match(text, /-e, --env string/);
  const order = [...text.matchAll(/--([a-z-]+)/g)].map((m) => m[1]);
  assert.deepEqual(order, ["env", "interactive", "tty", "workdir", "hostname", "rm"]);
});

Deno.test("parseArgs() types each flag by its kind; a misspelled name does not compile", () => {
  const p = parseArgs(RUNLIKE, ["-e", "A=1", "--rm", "img"]);
  const env: string[] = p.flags.env;
  const workdir: string | undefined = p.flags.workdir;
  const rm: boolean = p.flags.rm;
  assert.deepEqual([env, workdir, rm], [["A=1"], undefined, true]);
  // @ts-expect-error: there is no --workdri flag
  assert.equal(p.flags.workdri, undefined);
  // @ts-expect-error: a string flag may be absent, so it is not a plain string
  const w: string = p.flags.workdir;
  // @ts-expect-error: a bool flag is not a list
  const r: string[] = p.flags.rm;
  assert.deepEqual([w, r], [undefined, true]);
});

Deno.test("defineCommand() accepts only the known flag kinds", () => {
  const def = defineCommand({
    name: "x",
    usage: "",
    summary: "x",
    // @ts-expect-error: "number" is not a flag kind
    flags: { count: { kind: "number", help: "" } },
  });
  assert.equal(def.name, "x");
});

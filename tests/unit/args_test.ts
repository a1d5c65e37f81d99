// Table tests of the command-line parser.
import assert from "node:assert/strict";
import { type CommandDef, helpText, parseArgs, UsageError } from "../../lib/cli/args.ts";

const RUNLIKE: CommandDef = {
  name: "run",
  usage: "IMAGE [COMMAND]",
  summary: "x",
  interspersed: false,
  flags: [
    { long: "env", short: "e", kind: "list", help: "" },
    { long: "interactive", short: "i", kind: "bool", help: "" },
    { long: "tty", short: "t", kind: "bool", help: "" },
    { long: "workdir", short: "w", kind: "string", help: "" },
    { long: "hostname", short: "h", kind: "string", help: "" },
    { long: "rm", kind: "bool", help: "" },
  ],
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
  ["lets the last string win", ["-w", "/a", "-w", "/b", "img"], { workdir: "/b" }, ["img"]],
  ["ends flags at --", ["--", "-img"], {}, ["-img"]],
  ["gives -h to a flag that owns it", ["-h", "box", "img"], { hostname: "box" }, ["img"]],
  ["handles a value in a cluster", ["-itw", "/x", "img"], {
    interactive: true,
    tty: true,
    workdir: "/x",
  }, ["img"]],
];

for (const [what, argv, flags, args] of CASES) {
  Deno.test(`parseArgs() ${what}`, () => {
    const p = parseArgs(RUNLIKE, argv);
    assert.deepEqual(p.flags, flags);
    assert.deepEqual(p.args, args);
  });
}

Deno.test("parseArgs() parses flags after positionals when interspersed", () => {
  const p = parseArgs({ ...RUNLIKE, interspersed: true }, ["img", "--rm", "x"]);
  assert.deepEqual(p.args, ["img", "x"]);
  assert.equal(p.flags.rm, true);
});

const ERRORS: [string, string[], RegExp][] = [
  ["unknown long flag", ["--nope", "img"], /unknown flag: --nope/],
  ["unknown short flag", ["-z", "img"], /unknown shorthand flag: 'z'/],
  ["missing value", ["-w"], /flag needs an argument/],
  ["bad bool", ["--rm=maybe", "img"], /invalid value "maybe"/],
];
for (const [what, argv, re] of ERRORS) {
  Deno.test(`parseArgs() rejects ${what}`, () => {
    assert.throws(
      () => parseArgs(RUNLIKE, argv),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
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

Deno.test("helpText() lists flags with short names", () => {
  const text = helpText(RUNLIKE);
  assert.match(text, /Usage: {2}trun run IMAGE \[COMMAND\]/);
  assert.match(text, /-e, --env string/);
});

/**
 * Unit tests of `trun completion`'s pure parts: operands read from usage
 * lines, flags from grammars, the spec built from the real command table
 * (every visible command, alias and flag present, hidden ones absent) and
 * the three scripts rendered from it. The scripts are run by their shells
 * in tests/integration/completion_test.ts.
 */
import assert from "node:assert/strict";
import { defineCommand } from "../../lib/cli/args.ts";
import type { CommandEntry } from "../../lib/cli/commands.ts";
import { loadGrammars } from "../../lib/cli/completion.ts";
import { completionScript, SHELLS } from "../../lib/cli/completion_scripts.ts";
import {
  completionFlags,
  completionSpec,
  type Operand,
  usageOperands,
} from "../../lib/cli/completion_spec.ts";

const none: Operand = { kinds: [], words: [] };
const container: Operand = { kinds: ["container"], words: [] };
const image: Operand = { kinds: ["image"], words: [] };
const volume: Operand = { kinds: ["volume"], words: [] };

const USAGES: [string, Operand[], Operand][] = [
  ["[OPTIONS] CONTAINER [CONTAINER...]", [container], container],
  ["CONTAINER [CONTAINER...]", [container], container],
  ["[OPTIONS] CONTAINER", [container], none],
  ["[OPTIONS] CONTAINER COMMAND [ARG...]", [container, none], none],
  ["CONTAINER [ps OPTIONS]", [container, none], none],
  ["CONTAINER NEW_NAME", [container, none], none],
  [
    "[OPTIONS] IMAGE [COMMAND] [ARG...]\n        trun run [OPTIONS] --rootfs DIR COMMAND [ARG...]",
    [image, none],
    none,
  ],
  ["[OPTIONS] IMAGE [IMAGE...]", [image], image],
  ["SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", [image, image], none],
  ["[OPTIONS] NAME[:TAG|@DIGEST]", [image], none],
  ["[OPTIONS] NAME[:TAG]", [image], none],
  ["[OPTIONS] NAME|ID [NAME|ID...]", [{ kinds: ["container", "image"], words: [] }], {
    kinds: ["container", "image"],
    words: [],
  }],
  ["[OPTIONS] [REPOSITORY[:TAG]]", [none], none],
  ["[OPTIONS] VOLUME [VOLUME...]", [volume], volume],
  ["CONTAINER:SRC_PATH DEST_PATH|-", [container, none], none],
  ["bash|zsh|fish", [{ kinds: [], words: ["bash", "zsh", "fish"] }], none],
  ["[OPTIONS] [SERVER]", [none], none],
  ["[OPTIONS]", [], none],
  ["", [], none],
];
for (const [usage, operands, rest] of USAGES) {
  Deno.test(`usageOperands() reads "${usage.split("\n")[0]}"`, () => {
    assert.deepEqual(usageOperands(usage), { operands, rest });
  });
}

Deno.test("completionFlags() gives long and short names, values, and --help last", () => {
  const def = defineCommand({
    name: "x",
    usage: "",
    summary: "",
    flags: {
      all: { short: "a", kind: "bool", help: "All" },
      env: { short: "e", kind: "list", help: "Env" },
      format: { kind: "string", help: "Format" },
    },
  });
  assert.deepEqual(completionFlags(def), [
    { names: ["--all", "-a"], takesValue: false, help: "All" },
    { names: ["--env", "-e"], takesValue: true, help: "Env" },
    { names: ["--format"], takesValue: true, help: "Format" },
    { names: ["--help", "-h"], takesValue: false, help: "Print usage" },
  ]);
  // `-h` is run's --hostname: help is then --help only.
  const run = defineCommand({
    name: "run",
    usage: "",
    summary: "",
    flags: { hostname: { short: "h", kind: "string", help: "Hostname" } },
  });
  assert.deepEqual(completionFlags(run).at(-1)!.names, ["--help"]);
});

Deno.test("completionSpec() puts aliases at the top level or in their family, hidden entries nowhere", () => {
  const load = () => Promise.resolve(() => Promise.resolve(0));
  const entry = (e: Omit<CommandEntry, "load"> & { load?: CommandEntry["load"] | null }) =>
    e.load === null ? { ...e, load: undefined } : { load, ...e };
  const table = [
    entry({ name: "thing ls", aliases: ["things", "thing list"], summary: "List things" }),
    entry({ name: "thing", summary: "Manage things", load: null }),
    entry({ name: "secret", summary: "(internal)", hidden: true }),
  ].map((e) => ({ entry: e as CommandEntry, grammar: undefined }));
  const spec = completionSpec(table);
  assert.deepEqual(spec.topLevel.map((c) => c.word), ["things", "thing"]);
  assert.deepEqual(spec.families, [{
    name: "thing",
    subcommands: [{ word: "list", help: "List things" }, { word: "ls", help: "List things" }],
  }]);
  assert.deepEqual(spec.commands.map((c) => c.names), [["thing ls", "things", "thing list"]]);
});

const grammars = await loadGrammars();
const visible = grammars.filter((g) => !g.entry.hidden);
const scripts = Object.fromEntries(
  SHELLS.map((shell) => [shell, completionScript(shell, completionSpec(grammars))]),
);

Deno.test("COMMANDS: every visible command has a grammar for completion (runtime parses its own)", () => {
  const missing = visible.filter((g) => g.entry.load !== undefined && g.grammar === undefined)
    .map((g) => g.entry.name);
  assert.deepEqual(missing, ["runtime"]);
});

Deno.test("completionSpec() of COMMANDS: every visible name once, hidden ones absent", () => {
  const spec = completionSpec(grammars);
  const offered = [
    ...spec.topLevel.map((c) => c.word),
    ...spec.families.flatMap((f) => f.subcommands.map((s) => `${f.name} ${s.word}`)),
  ].sort();
  const names = visible.flatMap((g) => [g.entry.name, ...(g.entry.aliases ?? [])]).sort();
  assert.deepEqual(offered, names);
  for (const g of grammars.filter((g) => g.entry.hidden)) {
    assert.ok(!offered.includes(g.entry.name), g.entry.name);
  }
});

/** The `flags=(…)` words of the case arm for `names` in a bash or zsh script. */
function shellFlags(script: string, names: readonly string[]): string[] {
  const arm = names.map((n) => (n.includes(" ") ? `'${n}'` : n)).join("|") + ")\n";
  const at = script.indexOf(`    ${arm}`);
  assert.ok(at >= 0, `no case arm ${arm.trim()}`);
  const line = script.slice(at + arm.length + 4).split("\n")[0]!.trim();
  const m = /^flags=\((.*)\)$/.exec(line);
  assert.ok(m, line);
  // zsh: word:help, quoted when the help has spaces; bash: word.
  return [...m[1]!.matchAll(/'([^']*)'|(\S+)/g)].map((x) => (x[1] ?? x[2]!).split(":")[0]!);
}

for (const { entry, grammar } of visible) {
  if (grammar === undefined) continue;
  const names = [entry.name, ...(entry.aliases ?? [])];
  const want = [
    ...Object.entries(grammar.flags).flatMap(([long, f]) =>
      f.short === undefined ? [`--${long}`] : [`--${long}`, `-${f.short}`]
    ),
    "--help",
  ];
  for (const shell of ["bash", "zsh"] as const) {
    Deno.test(`${shell} script: "${entry.name}" has all its names and flags`, () => {
      const got = shellFlags(scripts[shell]!, names);
      for (const w of want) assert.ok(got.includes(w), `${w} missing: ${got.join(" ")}`);
    });
  }
  Deno.test(`fish script: "${entry.name}" has all its names and flags`, () => {
    const fish = scripts.fish!;
    const arm = `        case ${names.map((n) => `'${n}'`).join(" ")}\n`;
    const at = fish.indexOf(arm);
    assert.ok(at >= 0, arm);
    const line = fish.slice(at + arm.length).split("\n")[0]!;
    for (const w of want) assert.ok(line.includes(`'${w}'\\t`), `${w} missing: ${line}`);
  });
}

Deno.test("scripts: hidden commands appear in none", () => {
  for (const g of grammars.filter((g) => g.entry.hidden)) {
    for (const shell of SHELLS) assert.ok(!scripts[shell]!.includes(g.entry.name), shell);
  }
});

Deno.test("scripts: a flag's value, operands of live names, and how to load each", () => {
  const bash = scripts.bash!;
  assert.match(
    bash,
    /^ {4}'container logs'\|logs\)\n.*\n {6}value_flags=\(--since --tail -n --until\)\n {6}operands=\(:container\)\n {6}rest=- interspersed=1$/m,
  );
  assert.match(bash, /^ {6}operands=\(:image -\)\n {6}rest=- interspersed=0$/m);
  assert.match(bash, /^complete -o default -F _trun trun$/m);
  assert.match(scripts.zsh!, /^#compdef trun\n/);
  assert.match(scripts.zsh!, /compdef _trun trun/);
  assert.match(scripts.fish!, /^complete -c trun -f -a '\(__trun_complete\)'$/m);
  for (const shell of SHELLS) {
    assert.ok(scripts[shell]!.includes(`trun completion ${shell}`), shell);
    assert.ok(scripts[shell]!.includes("volume ls -q"), shell);
  }
});

/**
 * Unit tests of lib/cli/commands.ts: every entry of the command table
 * loads and runs under the names the table gives it, names resolve as
 * Docker's do (aliases, the `image` family), the storage commands are the
 * ones that touch image-owned files, and the help listings.
 */
import assert from "node:assert/strict";
import {
  type CommandEntry,
  COMMANDS,
  listingHelp,
  resolveCommand,
} from "../../lib/cli/commands.ts";

/** Runs `fn` with stdout and console.log captured; returns what they printed. */
async function captureStdout(fn: () => Promise<unknown>): Promise<string> {
  const out: string[] = [];
  const writeSync = Deno.stdout.writeSync;
  // deno-lint-ignore no-console
  const log = console.log;
  Deno.stdout.writeSync = (p: Uint8Array) => {
    out.push(new TextDecoder().decode(p));
    return p.length;
  };
  // deno-lint-ignore no-console
  console.log = (...xs: unknown[]) => void out.push(`${xs.join(" ")}\n`);
  try {
    await fn();
  } finally {
    Deno.stdout.writeSync = writeSync;
    // deno-lint-ignore no-console
    console.log = log;
  }
  return out.join("");
}

/** Every name of an entry: `image ls`, `images`, `image list`. */
const namesOf = (e: CommandEntry) => [e.name, ...(e.aliases ?? [])];

for (const entry of COMMANDS) {
  if (entry.load === undefined) continue;
  Deno.test(`COMMANDS: "${entry.name}" loads and prints its help under each name`, async () => {
    const main = await entry.load!();
    assert.equal(typeof main, "function");
    for (const typed of namesOf(entry)) {
      const found = resolveCommand([...typed.split(" "), "--help"]);
      assert.equal(found.kind, "command");
      if (found.kind !== "command") continue;
      assert.equal(found.entry, entry);
      assert.deepEqual(found.argv, ["--help"]);
      let status: number | undefined;
      const out = await captureStdout(async () => status = await main(found.argv, found.name));
      assert.equal(status, 0);
      assert.ok(
        out.startsWith(`Usage:  trun ${found.name} `),
        `"trun ${typed} --help" starts with ${JSON.stringify(out.slice(0, 40))}`,
      );
    }
  });
}

Deno.test("COMMANDS: no name is given to two entries, and families exist", () => {
  const names = COMMANDS.flatMap(namesOf);
  assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), []);
  for (const n of names.filter((n) => n.includes(" "))) {
    const family = COMMANDS.find((e) => e.name === n.split(" ")[0]);
    assert.ok(family !== undefined && family.load === undefined, `no family for "${n}"`);
  }
});

Deno.test("COMMANDS: the storage commands are the ones that read, add or delete files of image ids", () => {
  const storage = COMMANDS.filter((e) => e.storage).flatMap(namesOf).sort();
  assert.deepEqual(storage, [
    "build-step",
    "commit",
    "container commit",
    "container diff",
    "container prune",
    "diff",
    "image import",
    "image load",
    "image prune",
    "image pull",
    "image push",
    "image remove",
    "image rm",
    "image save",
    "import",
    "load",
    "network remove",
    "network rm",
    "pull",
    "push",
    "rmi",
    "save",
    "system df",
    "system prune",
    "volume prune",
    "volume-copyup",
    "volume-sweep",
  ]);
});

const RESOLVE: [string[], string, string, string[]][] = [
  [["run", "-it", "img", "sh"], "run", "run", ["-it", "img", "sh"]],
  [["images", "-q"], "image ls", "images", ["-q"]],
  [["image", "ls", "-q"], "image ls", "image ls", ["-q"]],
  [["image", "list"], "image ls", "image ls", []],
  [["rmi", "x"], "image rm", "rmi", ["x"]],
  [["image", "remove", "x"], "image rm", "image rm", ["x"]],
  [["pull", "busybox"], "image pull", "pull", ["busybox"]],
  [["inspect", "x"], "inspect", "inspect", ["x"]],
  [["image", "inspect", "x"], "image inspect", "image inspect", ["x"]],
  [["image", "prune", "-f"], "image prune", "image prune", ["-f"]],
];
for (const [argv, entry, name, rest] of RESOLVE) {
  Deno.test(`resolveCommand() finds "${argv.join(" ")}" as ${name}`, () => {
    const found = resolveCommand(argv);
    assert.equal(found.kind, "command");
    if (found.kind !== "command") return;
    assert.equal(found.entry.name, entry);
    assert.equal(found.name, name);
    assert.deepEqual(found.argv, rest);
  });
}

const OTHER: [string[], unknown][] = [
  [["image"], { kind: "family", name: "image" }],
  [["image", "--help"], { kind: "family", name: "image" }],
  [["image", "-h", "ls"], { kind: "family", name: "image" }],
  [["image", "help"], { kind: "family", name: "image" }],
  [["frob"], { kind: "unknown", family: "", word: "frob" }],
  [["prune"], { kind: "unknown", family: "", word: "prune" }],
  [["image ls"], { kind: "unknown", family: "", word: "image ls" }],
  [["image", "frob"], { kind: "unknown", family: "image", word: "frob" }],
  [["image", "--all"], { kind: "unknown", family: "image", word: "--all" }],
  [["image", "images"], { kind: "unknown", family: "image", word: "images" }],
];
for (const [argv, want] of OTHER) {
  Deno.test(`resolveCommand() answers "${argv.join(" ")}" with ${JSON.stringify(want)}`, () => {
    assert.deepEqual(resolveCommand(argv), want);
  });
}

Deno.test("listingHelp() lists top-level names in table order", () => {
  const rows = listingHelp().split("\n").filter((l) => l.startsWith("  ")).map((l) =>
    l.trim().split(/\s+/)[0]
  );
  assert.deepEqual(rows, [
    "run",
    "info",
    "version",
    "ps",
    "create",
    "start",
    "exec",
    "attach",
    "stop",
    "kill",
    "rm",
    "wait",
    "logs",
    "restart",
    "rename",
    "port",
    "top",
    "pause",
    "unpause",
    "stats",
    "update",
    "commit",
    "diff",
    "cp",
    "export",
    "container",
    "runtime",
    "pull",
    "push",
    "images",
    "rmi",
    "tag",
    "history",
    "inspect",
    "save",
    "build",
    "import",
    "load",
    "completion",
    "login",
    "logout",
    "image",
    "volume",
    "network",
    "system",
  ]);
});

Deno.test("listingHelp() lists a family's subcommands alphabetically", () => {
  const text = listingHelp("image");
  assert.match(text, /^Usage: {2}trun image COMMAND\n\nManage images\n\nCommands:\n/);
  assert.match(text, /\n {2}ls {8}List images\n/);
  assert.match(text, /Run 'trun image COMMAND --help' for more information on a command\.$/);
  const rows = text.split("\n").filter((l) => l.startsWith("  ")).map((l) =>
    l.trim().split(/\s+/)[0]
  );
  assert.deepEqual(rows, [
    "build",
    "history",
    "import",
    "inspect",
    "load",
    "ls",
    "prune",
    "pull",
    "push",
    "rm",
    "save",
    "tag",
  ]);
});

Deno.test("a command added to a table is one entry: name, summary, loader", () => {
  const table: CommandEntry[] = [
    ...COMMANDS,
    {
      name: "runtime",
      summary: "Run OCI containers",
      load: () => Promise.resolve(() => Promise.resolve(0)),
    },
  ];
  const found = resolveCommand(["runtime", "state", "x"], table);
  assert.equal(found.kind, "command");
  if (found.kind === "command") assert.deepEqual(found.argv, ["state", "x"]);
  assert.match(listingHelp("", table), /\n {2}runtime +Run OCI containers\n/);
});

/**
 * Keeps the modules flowing one way (ARCHITECTURE.md, "The shape"):
 * CLI → spec → engine → kernel, with the store below all of them and the
 * shared helpers (util/, oci/, paths.ts) below the store. Every lib/ file's
 * import specifiers are read from its source text (static, type-only,
 * re-exports and dynamic `import("…")` with a literal) and checked against
 * the rules below; a violation names the file and the specifier.
 */
import assert from "node:assert/strict";

const REPO = new URL("../../", import.meta.url);

/** Where a module lives: its lib/ folder (`store`), a top-level lib file (`paths.ts`), or beyond lib/. */
function areaOf(repoPath: string): string {
  const parts = repoPath.split("/");
  // lib/store/mod.ts → store; lib/paths.ts → paths.ts; ffi/fs.ts → ffi; main.ts; tests…
  return parts[0] === "lib" ? parts[1]! : parts[0]!;
}

/**
 * The module specifiers a TypeScript source imports: `import … from`,
 * `export … from`, side-effect `import "…"` and `import("…")` with a
 * string literal. Comments and template literals are not code we can
 * resolve, so only quoted specifiers count.
 */
function importSpecifiers(source: string): string[] {
  const found: string[] = [];
  // Static forms start a line; `[^;]*?` spans a multi-line import list.
  const staticForm = /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm;
  const sideEffect = /^\s*import\s*["']([^"']+)["']/gm;
  const dynamic = /\bimport\(\s*["']([^"']+)["']\s*\)/g;
  for (const re of [staticForm, sideEffect, dynamic]) {
    for (const m of source.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

/** A rule: modules in `from` may import only `allowed` areas, or anything but `forbidden`. */
interface Rule {
  from: (area: string) => boolean;
  forbidden?: (area: string) => boolean;
  allowed?: readonly string[];
  why: string;
}

const inList = (xs: readonly string[]) => (a: string) => xs.includes(a);

/** The direction rules, checked for every relative import of every lib/ module and main.ts. */
const RULES: readonly Rule[] = [
  {
    from: inList(["store"]),
    forbidden: inList(["image", "runtime", "engine", "spec", "cli", "container", "host"]),
    why: "the store is below every engine, image and CLI module",
  },
  {
    from: inList(["image"]),
    forbidden: inList(["runtime", "engine", "cli", "container"]),
    why: "image/ (registry, pull, push, archives) is below the runtime and the CLI",
  },
  {
    from: (a) => a !== "cli" && a !== "main.ts",
    forbidden: inList(["cli"]),
    why: "only cli/ and main.ts talk to the terminal",
  },
  {
    from: inList(["util"]),
    allowed: ["util", "ffi"],
    why: "util/ holds generic helpers below everything but ffi/",
  },
  {
    from: inList(["oci"]),
    allowed: ["oci", "util", "ffi"],
    why: "oci/ holds the image formats the store persists, below the store",
  },
  {
    from: inList(["paths.ts"]),
    allowed: [],
    why: "paths.ts only computes paths",
  },
  {
    from: () => true,
    forbidden: inList(["tests", "scripts", "bench"]),
    why: "the product never imports its tests, scripts or benchmarks",
  },
];

/** The relative imports of `repoPath` that break a rule, as `file: specifier (why)`. */
function violations(repoPath: string, source: string): string[] {
  const from = areaOf(repoPath);
  const out: string[] = [];
  for (const spec of importSpecifiers(source)) {
    if (!spec.startsWith(".")) continue; // npm:, node:, bare: not our modules
    const target = new URL(spec, new URL(repoPath, REPO)).pathname
      .slice(REPO.pathname.length);
    const to = areaOf(target);
    for (const rule of RULES) {
      if (!rule.from(from) || to === from) continue;
      const bad = rule.allowed ? !rule.allowed.includes(to) : rule.forbidden!(to);
      if (bad) out.push(`${repoPath}: "${spec}" (${rule.why})`);
    }
  }
  return out;
}

function libFiles(dir = "lib"): string[] {
  const files: string[] = [];
  for (const e of Deno.readDirSync(new URL(`${dir}/`, REPO))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) files.push(...libFiles(path));
    else if (e.name.endsWith(".ts")) files.push(path);
  }
  return files.sort();
}

Deno.test("importSpecifiers() finds static, type-only, re-exported, multi-line and dynamic imports", () => {
  const source = [
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    "import {",
    "  c,",
    "  type D,",
    '} from "./c.ts";',
    'export { e } from "./e.ts";',
    'export * from "./f.ts";',
    'import "./g.ts";',
    'const h = await import("./h.ts");',
    'let i: typeof import("./i.ts").I;',
    "const j = await import(`${dynamic}`);",
    ' * import { k } from "./k.ts" — a doc comment, not code',
  ].join("\n");
  assert.deepEqual(importSpecifiers(source).sort(), [
    "../b.ts",
    "./a.ts",
    "./c.ts",
    "./e.ts",
    "./f.ts",
    "./g.ts",
    "./h.ts",
    "./i.ts",
  ]);
});

const CASES: [string, string, string, boolean][] = [
  ["store/ importing image/", "lib/store/images.ts", "../image/pull.ts", false],
  ["store/ importing oci/", "lib/store/images.ts", "../oci/reference.ts", true],
  ["store/ importing paths.ts", "lib/store/mod.ts", "../paths.ts", true],
  ["store/ importing runtime/", "lib/store/mod.ts", "../runtime/idmap.ts", false],
  ["image/ importing the store", "lib/image/pull.ts", "../store/mod.ts", true],
  ["image/ importing container/", "lib/image/pull.ts", "../container/image_rootfs.ts", false],
  ["engine/ importing cli/", "lib/engine/executor.ts", "../cli/output.ts", false],
  ["main.ts importing cli/", "main.ts", "./lib/cli/args.ts", true],
  ["util/ importing ffi/", "lib/util/fs.ts", "../../ffi/errno.ts", true],
  ["util/ importing the store", "lib/util/fs.ts", "../store/mod.ts", false],
  ["oci/ importing image/", "lib/oci/manifest.ts", "../image/auth.ts", false],
  ["lib importing tests", "lib/host/mod.ts", "../../tests/_harness/host.ts", false],
];
for (const [what, file, spec, ok] of CASES) {
  Deno.test(`violations() ${ok ? "allows" : "flags"} ${what}`, () => {
    const found = violations(file, `import { x } from "${spec}";\n`);
    assert.equal(found.length === 0, ok, found.join("\n"));
  });
}

Deno.test("lib/ modules and main.ts import only downwards", () => {
  const files = [...libFiles(), "main.ts"];
  assert.ok(files.includes("lib/store/mod.ts"), "lib/ was found");
  const found = files.flatMap((f) => violations(f, Deno.readTextFileSync(new URL(f, REPO))));
  assert.deepEqual(found, [], `imports against the module direction:\n${found.join("\n")}`);
});

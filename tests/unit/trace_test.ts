// TRUN_TRACE: one timeline line per milestone, in the file it names, and
// nothing (no file) without it.

import assert from "node:assert/strict";

const TRACE = new URL("../../lib/util/trace.ts", import.meta.url).href;

async function traceIn(env: Record<string, string>, cwd?: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    ...(cwd ? { cwd } : {}),
    args: [
      "eval",
      `const { trace } = await import(${JSON.stringify(TRACE)}); trace("a b"); trace("c");`,
    ],
    env: { HOME: Deno.env.get("HOME") ?? "/", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

Deno.test("trace() appends WALL_MS PID PROCESS_MS LABEL lines to the file TRUN_TRACE names", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/trace`;
    await traceIn({ TRUN_TRACE: file });
    await traceIn({ TRUN_TRACE: file });
    const lines = Deno.readTextFileSync(file).trim().split("\n");
    assert.equal(lines.length, 4);
    const parsed = lines.map((l) => l.match(/^(\d+\.\d\d) (\d+) (\d+\.\d) (.+)$/));
    assert.ok(parsed.every((m) => m !== null), lines.join("\n"));
    assert.deepEqual(parsed.map((m) => m![4]), ["a b", "c", "a b", "c"]);
    // Two processes, each with its own pid; wall times go forward.
    assert.notEqual(parsed[0]![2], parsed[2]![2]);
    assert.ok(Number(parsed[2]![1]) >= Number(parsed[1]![1]));
    // The process clock is the wall clock less the process's start.
    assert.ok(Number(parsed[0]![3]) < 60_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trace() with TRUN_TRACE unset or empty writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await traceIn({}, dir);
    await traceIn({ TRUN_TRACE: "" }, dir);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Keeps the unsafe part in one place: only ffi/ may open libraries, touch
// pointers or name syscall numbers.
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const UNSAFE = /Deno\.(dlopen|UnsafePointer|UnsafePointerView|UnsafeFnPointer|UnsafeCallback)\b/;

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* tsFiles(path);
    else if (e.isFile && e.name.endsWith(".ts")) yield path;
  }
}

Deno.test("only ffi/ uses Deno.dlopen and unsafe pointers", async () => {
  const offenders: string[] = [];
  for (const dir of ["lib", "main.ts"].map((d) => `${ROOT}${d}`)) {
    const files = dir.endsWith(".ts") ? [dir] : await Array.fromAsync(tsFiles(dir));
    for (const f of files) {
      const text = await Deno.readTextFile(f);
      if (UNSAFE.test(text)) offenders.push(f.slice(ROOT.length));
    }
  }
  assert.deepEqual(offenders, []);
});

Deno.test("syscall numbers live only in ffi/syscalls.ts", async () => {
  const text = await Deno.readTextFile(`${ROOT}lib/runtime/child_program.ts`);
  // The compiler names calls; a number next to a call name would be a leak.
  assert.doesNotMatch(text, /call:\s*\d/);
});

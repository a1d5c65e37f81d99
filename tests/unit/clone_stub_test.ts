// The clone stub's bytes match its assembly source.
import assert from "node:assert/strict";
import { CLONE_STUB_X86_64_HEX } from "../../ffi/clone_stub_x86_64.ts";

const SOURCE = new URL("../../ffi/clone_stub_x86_64.S", import.meta.url).pathname;

async function which(tool: string): Promise<boolean> {
  try {
    const r = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
      .output();
    return r.success;
  } catch {
    return false;
  }
}

const haveAs = (await which("as")) && (await which("objcopy"));

Deno.test({
  name: `clone stub bytes equal the re-assembled source${
    haveAs ? "" : " (skipped: as/objcopy not installed; apt install binutils)"
  }`,
  ignore: !haveAs || Deno.build.arch !== "x86_64",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const asm = await new Deno.Command("as", { args: ["-o", `${dir}/stub.o`, SOURCE] }).output();
      assert.equal(asm.success, true, new TextDecoder().decode(asm.stderr));
      const cp = await new Deno.Command("objcopy", {
        args: ["-O", "binary", "-j", ".text", `${dir}/stub.o`, `${dir}/stub.bin`],
      }).output();
      assert.equal(cp.success, true, new TextDecoder().decode(cp.stderr));
      const bytes = await Deno.readFile(`${dir}/stub.bin`);
      const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      assert.equal(hex, CLONE_STUB_X86_64_HEX);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("clone stub hex is well-formed and ends in exit_group", () => {
  assert.match(CLONE_STUB_X86_64_HEX, /^([0-9a-f]{2})+$/);
  // mov eax, 231 (exit_group); syscall
  assert.ok(CLONE_STUB_X86_64_HEX.endsWith("b8e70000000f05"));
});

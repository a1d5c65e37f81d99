// The numbers of the system calls trun makes come from the whole x86-64
// table: every one is there, and a few known ones are right.
import assert from "node:assert/strict";
import { SYSCALLS_X86_64 } from "../../ffi/syscalls.ts";

Deno.test("SYSCALLS_X86_64: every call trun makes has its number", () => {
  for (const [name, nr] of Object.entries(SYSCALLS_X86_64)) {
    assert.ok(Number.isInteger(nr) && nr >= 0, `${name} has no number`);
  }
  assert.equal(SYSCALLS_X86_64.read, 0);
  assert.equal(SYSCALLS_X86_64.clone, 56);
  assert.equal(SYSCALLS_X86_64.execve, 59);
  assert.equal(SYSCALLS_X86_64.accept4, 288);
  assert.equal(SYSCALLS_X86_64.openat2, 437);
});

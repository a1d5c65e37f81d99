/**
 * A join held before its exec tail (tests/_harness/held_join.ts), made by a
 * process that first does what `trun exec` does before it joins: runs
 * itself again from a read-only view of its binary when the container's
 * root could reach it (lib/runtime/exe_seal.ts). With TRUN_EXE_SEALED=1 in
 * its environment it skips that, as trun did before the seal existed.
 *
 * `deno run -A _sealed_join.ts CONTAINER_PID SPEC_PATH`: prints the joining
 * process's host pid, then lets it execve when a line arrives on stdin.
 */
import {
  exeSealNeeded,
  hasOwnUserNamespace,
  reexecSealed,
  sealQuestionOfSpec,
} from "../../lib/runtime/exe_seal.ts";
import { holdJoin } from "../_harness/held_join.ts";

const pid = Number(Deno.args[0]);
const specPath = Deno.args[1]!;
const question = sealQuestionOfSpec(JSON.parse(Deno.readTextFileSync(specPath)));
if (exeSealNeeded({ ...question, ownUserNamespace: hasOwnUserNamespace(pid) })) reexecSealed();
const held = await holdJoin(pid, specPath);
await Deno.stdout.write(new TextEncoder().encode(`${held.pid}\n`));
const reader = Deno.stdin.readable.getReader();
await reader.read();
await held.release();
reader.releaseLock();

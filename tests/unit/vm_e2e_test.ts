/** The VM end-to-end runner's reading of the guest's serial console (scripts/vm_e2e.ts). */
import assert from "node:assert/strict";
import { type GuestReport, parseConsoleLine, runProblem } from "../../scripts/vm_e2e.ts";

Deno.test("a result line, with the tty's CR, becomes a case", () => {
  assert.deepEqual(parseConsoleLine("E2E PASS memory-oom dd killed, oom_kill 1\r"), {
    kind: "case",
    result: { verdict: "PASS", name: "memory-oom", detail: "dd killed, oom_kill 1" },
  });
  assert.deepEqual(parseConsoleLine("E2E SKIP stats\r"), {
    kind: "case",
    result: { verdict: "SKIP", name: "stats", detail: "" },
  });
});

Deno.test("a result after kernel output on the same line is still read", () => {
  assert.deepEqual(
    parseConsoleLine("[   12.3] random: crng init done E2E FAIL pids-limit 40 forks"),
    {
      kind: "case",
      result: { verdict: "FAIL", name: "pids-limit", detail: "40 forks" },
    },
  );
});

Deno.test("END, other E2E lines and the rest of the console", () => {
  assert.deepEqual(parseConsoleLine("E2E END\r"), { kind: "end" });
  assert.deepEqual(parseConsoleLine("E2E BENCH run-plain ms/exit: 900/0"), {
    kind: "other",
    text: "BENCH run-plain ms/exit: 900/0",
  });
  assert.deepEqual(parseConsoleLine("E2E PASSED nothing"), {
    kind: "other",
    text: "PASSED nothing",
  });
  assert.deepEqual(parseConsoleLine("[    0.000000] Linux version 6.1.0"), null);
});

Deno.test("a run is trusted only when it ended and reported cases", () => {
  const base: GuestReport = {
    cases: [{ verdict: "FAIL", name: "x", detail: "" }],
    other: [],
    ended: true,
    timedOut: false,
    interrupted: false,
    exitCode: 0,
  };
  assert.deepEqual(runProblem(base, 60), "");
  assert.deepEqual(
    runProblem({ ...base, timedOut: true, ended: false }, 60),
    "the VM did not finish within 60 s",
  );
  assert.deepEqual(
    runProblem({ ...base, ended: false, exitCode: 1 }, 60),
    "the VM stopped (exit 1) before the cases ended",
  );
  assert.deepEqual(runProblem({ ...base, cases: [] }, 60), "the VM reported no cases");
  assert.deepEqual(
    runProblem({ ...base, interrupted: true, timedOut: true }, 60),
    "interrupted by a signal; the VM was killed",
  );
});

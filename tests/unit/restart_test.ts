// Restart policies: Docker's --restart values and when the monitor restarts.
import assert from "node:assert/strict";
import { parseRestartPolicy, restartDelay, shouldRestart } from "../../lib/container/restart.ts";

for (
  const [text, want] of [
    ["no", { name: "no", maxRetries: 0 }],
    ["always", { name: "always", maxRetries: 0 }],
    ["unless-stopped", { name: "unless-stopped", maxRetries: 0 }],
    ["on-failure", { name: "on-failure", maxRetries: 0 }],
    ["on-failure:3", { name: "on-failure", maxRetries: 3 }],
  ] as const
) {
  Deno.test(`parseRestartPolicy("${text}")`, () =>
    assert.deepEqual(parseRestartPolicy(text), want));
}

for (const bad of ["sometimes", "always:2", "on-failure:x", "on-failure:1:2", ""]) {
  Deno.test(`parseRestartPolicy() refuses "${bad}"`, () => {
    assert.throws(() => parseRestartPolicy(bad), /invalid restart policy/);
  });
}

for (
  const [policy, code, count, stopped, want] of [
    ["no", 1, 0, false, false],
    ["on-failure", 0, 0, false, false],
    ["on-failure", 1, 5, false, true],
    ["on-failure:2", 1, 1, false, true],
    ["on-failure:2", 1, 2, false, false],
    ["always", 0, 9, false, true],
    ["always", 0, 0, true, false],
    ["unless-stopped", 137, 0, false, true],
    ["unless-stopped", 137, 0, true, false],
  ] as const
) {
  Deno.test(
    `shouldRestart(${policy}, exit ${code}, ${count} restarts${
      stopped ? ", stopped by the user" : ""
    }) is ${want}`,
    () => assert.equal(shouldRestart(parseRestartPolicy(policy), code, count, stopped), want),
  );
}

Deno.test("restartDelay() starts at 100 ms, doubles, and stops at a minute", () => {
  assert.deepEqual([0, 1, 2, 3].map(restartDelay), [100, 200, 400, 800]);
  assert.equal(restartDelay(20), 60_000);
});

// What killed trun processes leave beside the records, and what the next
// `run` tidies: old exit files of removed containers and old directories
// that never got a record; nothing of a live record, nothing recent.
import assert from "node:assert/strict";
import { openStore } from "../../lib/store/mod.ts";
import { sweepLeftovers } from "../../lib/container/ops.ts";
import { cid, containerRecord } from "./_container_records.ts";

Deno.test("sweepLeftovers() removes old leftovers without a record, and nothing else", () => {
  const root = Deno.makeTempDirSync({ prefix: "trun-leftovers-" });
  const store = openStore(root);
  try {
    const live = cid("a1");
    store.addRecord(containerRecord({ id: live, name: "live" }));
    const old = new Date(Date.now() - 10 * 60_000);
    const make = (path: string, dir: boolean, aged: boolean) => {
      if (dir) Deno.mkdirSync(`${path}/work/work`, { recursive: true, mode: 0o700 });
      else Deno.writeTextFileSync(path, "0");
      if (dir) Deno.chmodSync(`${path}/work/work`, 0);
      if (aged) Deno.utimeSync(path, old, old);
    };
    Deno.mkdirSync(`${root}/exits`, { recursive: true });
    make(`${root}/containers/${live}`, true, true);
    make(`${root}/containers/${cid("b2")}`, true, true);
    make(`${root}/containers/${cid("c3")}`, true, false);
    make(`${root}/exits/${live}`, false, true);
    make(`${root}/exits/${cid("b2")}`, false, true);
    make(`${root}/exits/${cid("b2")}.runtime.log`, false, true);
    make(`${root}/exits/${cid("c3")}`, false, false);
    sweepLeftovers(store);
    const names = (d: string) => [...Deno.readDirSync(`${root}/${d}`)].map((e) => e.name).sort();
    assert.deepEqual(names("containers"), [live, cid("c3")].sort());
    assert.deepEqual(names("exits"), [live, cid("c3")].sort());
  } finally {
    store.close();
    for (const e of Deno.readDirSync(`${root}/containers`)) {
      Deno.chmodSync(`${root}/containers/${e.name}/work/work`, 0o700);
    }
    Deno.removeSync(root, { recursive: true });
  }
});

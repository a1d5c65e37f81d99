// Container records in the store: an update that changes nothing writes
// nothing (no commit, whose fsync every `run --rm` would wait for).
import assert from "node:assert/strict";
import { openStore } from "../../lib/store/mod.ts";
import { cid, containerRecord } from "./_container_records.ts";

Deno.test("updateRecord() writes only when the record changes, and returns the record either way", () => {
  const root = Deno.makeTempDirSync({ prefix: "trun-records-" });
  const store = openStore(root);
  try {
    const id = cid("d4");
    store.addRecord(containerRecord({ id, name: "d4" }));
    const changes = () =>
      (store.db.prepare("SELECT total_changes() AS n").get() as { n: number }).n;
    const before = changes();
    const same = store.updateRecord(id, (r) => r);
    assert.equal(same?.name, "d4");
    assert.equal(changes(), before, "an unchanged record is not written");
    const next = store.updateRecord(id, (r) => ({ ...r, state: "exited", exitCode: 3 }));
    assert.equal(next?.exitCode, 3);
    assert.equal(changes(), before + 1, "a changed record is written");
    assert.equal(store.findRecord(id)?.exitCode, 3);
    // No transaction is left open: another write goes through.
    store.updateRecord(id, (r) => ({ ...r, exitCode: 4 }));
    assert.equal(store.findRecord(id)?.exitCode, 4);
    assert.equal(store.updateRecord(cid("e5"), (r) => r), undefined, "no such record");
  } finally {
    store.close();
    Deno.removeSync(root, { recursive: true });
  }
});

// Lock files may be deleted (so `locks/` does not grow with every image):
// a taker that locked a file unlinked meanwhile starts again, so two
// holders never share one lock name; free locks are swept, held ones stay.
import assert from "node:assert/strict";
import {
  lockPath,
  sweepFreeLocks,
  takeLease,
  tryLock,
  unlinkHeldLock,
  withLock,
} from "../../lib/store/lock.ts";

function withRoot(fn: (root: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const root = await Deno.makeTempDir({ prefix: "trun-locks-" });
    try {
      await fn(root);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  };
}

Deno.test(
  "sweepFreeLocks() deletes free lock files and keeps held locks and leases",
  withRoot(async (root) => {
    tryLock(root, "free-a")!.close();
    tryLock(root, "free-b")!.close();
    const held = tryLock(root, "held")!;
    const lease = takeLease(root, "lease-x");
    try {
      assert.equal(sweepFreeLocks(root), 2);
      const left = [...Deno.readDirSync(`${root}/locks`)].map((e) => e.name).sort();
      assert.deepEqual(left, ["held.lock", "lease-x.lock"]);
    } finally {
      held.close();
      lease.close();
    }
    assert.equal(sweepFreeLocks(root), 2);
    await Promise.resolve();
  }),
);

Deno.test(
  "withLock(): a waiter on a file unlinked by its holder takes the new file, never with another holder",
  withRoot(async (root) => {
    const order: string[] = [];
    let release!: () => void;
    const first = withLock(root, "item", async () => {
      order.push("first");
      await new Promise<void>((r) => (release = r));
      unlinkHeldLock(root, "item");
    });
    await new Promise((r) => setTimeout(r, 20));
    // The second opens the old file now and waits on it.
    const second = withLock(root, "item", async () => {
      order.push("second");
      // Nobody else may hold the name meanwhile.
      const other = tryLock(root, "item");
      assert.equal(other, null, "a third taker got the lock the second holds");
      assert.ok(Deno.lstatSync(lockPath(root, "item")).isFile);
      await Promise.resolve();
    });
    await new Promise((r) => setTimeout(r, 20));
    release();
    await Promise.all([first, second]);
    assert.deepEqual(order, ["first", "second"]);
  }),
);

// Large layers (above the 4 MiB worker threshold): unpacked while the blob
// still downloads (decodeLayerFile() follows a growing file, and
// ensureLayers() with `incoming` commits the layer only once the blob is in
// the store, falling back to the stored blob when the file changed under
// the reader), and refused or corrupt ones fail through the decode thread
// with the same errors as small ones, leaving nothing behind.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { decodeLayerFile } from "../../lib/oci/layer_decode.ts";
import { openStore, type Store } from "../../lib/store/mod.ts";
import { layerDir } from "../../lib/store/layers.ts";
import { LayerError } from "../../lib/oci/layer_tar.ts";
import { type Entry, tar, withDir } from "./_tar_fixture.ts";

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

// A gzip layer above the store's 4 MiB worker threshold: incompressible
// content, so the blob is as large as the file in it.
function bigLayer(seed: number, extra: Entry[] = []): { tar: Uint8Array; gz: Uint8Array } {
  const body = new Uint8Array(5_000_000);
  for (let off = 0; off < body.length; off += 65536) {
    crypto.getRandomValues(body.subarray(off, Math.min(off + 65536, body.length)));
  }
  const t = tar([
    { name: "d/", type: "5" },
    { name: "d/big", body },
    { name: `d/seed-${seed}`, body: "x" },
    ...extra,
  ]);
  return { tar: t, gz: gzipSync(t) };
}

// Commits `gz` as a blob, the way a finished download does.
function storeBlob(store: Store, gz: Uint8Array): string {
  const digest = sha256(gz);
  const temp = store.blobTempPath(digest);
  Deno.writeFileSync(temp, gz);
  store.commitBlob(digest, temp, gz.length);
  return digest;
}

// Writes `bytes` to `path` in pieces with pauses, the way a download grows
// its file; the first piece is shorter than any magic number.
async function growFile(path: string, bytes: Uint8Array, from = 0): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, append: true });
  try {
    let off = from;
    const cuts = [2, 300_000];
    while (off < bytes.length) {
      const n = Math.min(cuts.shift() ?? 700_000, bytes.length - off);
      await f.write(bytes.subarray(off, off + n));
      off += n;
      await sleep(3);
    }
  } finally {
    f.close();
  }
}

// True when a layer being unpacked under `root` already has `path`.
function unpackingFile(root: string, path: string): boolean {
  for (const e of Deno.readDirSync(`${root}/layers`)) {
    if (!e.name.includes(".tmp-") || e.name.endsWith(".tar-split")) continue;
    try {
      Deno.lstatSync(`${root}/layers/${e.name}/${path}`);
      return true;
    } catch {
      // not yet
    }
  }
  return false;
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 20_000; Date.now() < end; await sleep(5)) if (cond()) return;
  throw new Error(`timed out waiting for ${what}`);
}

async function withStore(fn: (store: Store, root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "trun-incoming-test-" });
  const store = openStore(root);
  try {
    await fn(store, root);
  } finally {
    store.close();
    await Deno.remove(root, { recursive: true });
  }
}

const OWN = Deno.uid() === 0 ? {} : { squashOwnership: { uid: Deno.uid()!, gid: Deno.gid()! } };

Deno.test("decodeLayerFile() follows a file as it grows, from before it exists", async () => {
  const { tar: t, gz } = bigLayer(1);
  await withDir(async (dir) => {
    const path = `${dir}/blob.partial`;
    const written = (async () => {
      await sleep(20); // the reader opens before the file exists
      await growFile(path, gz);
    })();
    const d = decodeLayerFile(path, "sha256", { size: gz.length, written });
    try {
      const parts: Uint8Array[] = [];
      for await (const c of d.tar) parts.push(c.slice());
      const out = new Uint8Array(await new Blob(parts as BlobPart[]).arrayBuffer());
      assert.equal(out.length, t.length);
      assert.equal(sha256(out), sha256(t));
      assert.deepEqual(d.digests(), {
        blobDigest: sha256(gz),
        diffId: sha256(t),
        tarSize: t.length,
      });
    } finally {
      d.close();
    }
    await written;
  });
});

Deno.test("decodeLayerFile() reads a followed file from its final place when it was moved before it was opened", async () => {
  const { tar: t, gz } = bigLayer(7);
  await withDir(async (dir) => {
    Deno.writeFileSync(`${dir}/blob`, gz);
    const d = decodeLayerFile(`${dir}/blob.partial`, "sha256", {
      size: gz.length,
      written: Promise.resolve(),
      finalPath: `${dir}/blob`,
    });
    try {
      let n = 0;
      for await (const c of d.tar) n += c.length;
      assert.equal(n, t.length);
      assert.equal(d.digests().blobDigest, sha256(gz));
    } finally {
      d.close();
    }
  });
});

Deno.test("decodeLayerFile() fails a followed file that stays short once its writer is done", async () => {
  const { gz } = bigLayer(2);
  await withDir(async (dir) => {
    const path = `${dir}/blob.partial`;
    const written = growFile(path, gz.subarray(0, 1_000_000));
    const d = decodeLayerFile(path, "sha256", { size: gz.length, written });
    try {
      await assert.rejects(async () => {
        for await (const _ of d.tar) { /* read on */ }
      }, /ended after 1000000 of \d+ bytes/);
    } finally {
      d.close();
    }
  });
});

Deno.test("ensureLayers() with an incoming blob unpacks it while it is written, and commits after", async () => {
  const { tar: t, gz } = bigLayer(3);
  const digest = sha256(gz);
  await withStore(async (store) => {
    const temp = store.blobTempPath(digest);
    const half = gz.length >> 1;
    const download = (async () => {
      await growFile(temp, gz.subarray(0, half));
      // The rest comes only once the unpacker has reached the big file with
      // the first half: proof that it reads the blob as it arrives.
      await waitFor(() => unpackingFile(store.root, "d/big"), "the unpacker to reach d/big");
      await growFile(temp, gz, half);
      await store.commitBlob(digest, temp, gz.length);
    })();
    const states: string[] = [];
    const [chain] = await store.ensureLayers([{ digest, mediaType: GZIP, size: gz.length }], {
      incoming: { digest, path: temp, done: download },
      onProgress: (p) => states.push(p.state),
      ...OWN,
    });
    assert.equal(chain, sha256(t));
    assert.deepEqual(states, ["unpacking", "done"]);
    assert.equal(
      Deno.statSync(`${layerDir(store.root, chain!)}/d/big`).size,
      5_000_000,
    );
    // Unpacked and recorded: the blob is dropped as after any pull.
    assert.equal(store.hasBlob(digest), false);
  });
});

Deno.test("ensureLayers() reads the stored blob again when the incoming file was rewritten under it", async () => {
  const { tar: t, gz } = bigLayer(4);
  const other = bigLayer(5).gz;
  const digest = sha256(gz);
  await withStore(async (store) => {
    const temp = store.blobTempPath(digest);
    // A resumed download whose prefix was wrong: it starts over from zero.
    Deno.writeFileSync(temp, other.subarray(0, 2_000_000));
    const download = (async () => {
      await sleep(30);
      await Deno.truncate(temp, 0);
      await growFile(temp, gz);
      await store.commitBlob(digest, temp, gz.length);
    })();
    const [chain] = await store.ensureLayers([{ digest, mediaType: GZIP, size: gz.length }], {
      incoming: { digest, path: temp, done: download },
      ...OWN,
    });
    assert.equal(chain, sha256(t));
    assert.equal(Deno.statSync(`${layerDir(store.root, chain!)}/d/seed-4`).size, 1);
  });
});

Deno.test("ensureLayers() with an incoming blob gives the download's error and leaves no layer", async () => {
  const { gz } = bigLayer(6);
  const digest = sha256(gz);
  await withStore(async (store, root) => {
    const temp = store.blobTempPath(digest);
    const download = (async () => {
      await growFile(temp, gz.subarray(0, 1_500_000));
      throw new Error("connection reset by the registry");
    })();
    await assert.rejects(
      store.ensureLayers([{ digest, mediaType: GZIP, size: gz.length }], {
        incoming: { digest, path: temp, done: download },
        ...OWN,
      }),
      /connection reset by the registry/,
    );
    const left = [...Deno.readDirSync(`${root}/layers`)].map((e) => e.name);
    assert.deepEqual(left, []);
  });
});

Deno.test("a large layer with an entry climbing out is refused as a LayerError, leaving nothing", async () => {
  const { gz } = bigLayer(8, [{ name: "h", type: "1", linkname: "../../etc/shadow" }]);
  await withStore(async (store, root) => {
    const digest = storeBlob(store, gz);
    await assert.rejects(
      store.ensureLayers([{ digest, mediaType: GZIP, size: gz.length }], OWN),
      (e: Error) => {
        assert.ok(e instanceof LayerError, `${e.name}: ${e.message}`);
        assert.match(e.message, new RegExp(`^layer ${digest}: `));
        assert.match(e.message, /entry "h"/);
        return true;
      },
    );
    const left = [...Deno.readDirSync(`${root}/layers`)].map((e) => e.name);
    assert.deepEqual(left, []);
  });
});

Deno.test("a large layer whose gzip is corrupt fails as corrupt data through the decode thread, leaving nothing", async () => {
  const { gz } = bigLayer(9);
  gz.fill(0x55, 2_000_000, 2_100_000);
  await withStore(async (store, root) => {
    const digest = storeBlob(store, gz);
    await assert.rejects(
      store.ensureLayers([{ digest, mediaType: GZIP, size: gz.length }], OWN),
      (e: Error) => e instanceof LayerError && /the layer data is corrupt/.test(e.message),
    );
    const left = [...Deno.readDirSync(`${root}/layers`)].map((e) => e.name);
    assert.deepEqual(left, []);
  });
});

// The store: blobs, layers, images, leases, prune and repair, each test in a
// fresh temporary root. Images are built here the way a pull delivers them:
// gzip layer blobs committed from `.partial` files, then ensureLayers() and
// recordImage().

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { DatabaseSync } from "node:sqlite";
import tarStream from "tar-stream";
import { ImageError, openStore, type Store, StoreGoneError } from "../../lib/store/mod.ts";
import { chainId, chainIds } from "../../lib/store/layers.ts";
import { SCHEMA_VERSION } from "../../lib/store/db.ts";
import { withLock } from "../../lib/store/lock.ts";
import { concat } from "../../lib/util/bytes.ts";

const sha256 = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const enc = new TextEncoder();

/** Tar bytes of `files` (name → content; a trailing slash makes a directory), owned by the caller. */
async function layerTar(files: Record<string, string>): Promise<Uint8Array> {
  const pack = tarStream.pack();
  const owner = { uid: Deno.uid() ?? 0, gid: Deno.gid() ?? 0, mtime: new Date(1_600_000_000_000) };
  for (const [name, body] of Object.entries(files)) {
    if (name.endsWith("/")) pack.entry({ name, type: "directory", mode: 0o755, ...owner });
    else pack.entry({ name, mode: 0o644, ...owner }, body);
  }
  pack.finalize();
  const chunks: Uint8Array[] = [];
  for await (const c of pack) chunks.push(c as Uint8Array);
  return new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

interface Built {
  configDigest: string;
  manifestDigest: string;
  layers: { digest: string; mediaType: string; size: number }[];
  diffIds: string[];
  configBytes: Uint8Array;
  manifestBytes: Uint8Array;
}

/** Stores blobs for an image made of `layers` the way a pull does, without recording it. */
async function stage(store: Store, layers: Record<string, string>[], label = "x"): Promise<Built> {
  const out: Built["layers"] = [];
  const diffIds: string[] = [];
  for (const files of layers) {
    const tar = await layerTar(files);
    const gz = gzipSync(tar);
    const digest = sha256(gz);
    diffIds.push(sha256(tar));
    if (!store.hasBlob(digest)) {
      const tmp = store.blobTempPath(digest);
      Deno.writeFileSync(tmp, gz);
      store.commitBlob(digest, tmp, gz.length);
    }
    out.push({ digest, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", size: gz.length });
  }
  const configBytes = enc.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    created: "2024-01-02T03:04:05Z",
    config: { Cmd: ["sh"], Labels: { label } },
    rootfs: { type: "layers", diff_ids: diffIds },
  }));
  const configDigest = sha256(configBytes);
  const manifestBytes = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: configBytes.length,
    },
    layers: out,
  }));
  return {
    configDigest,
    manifestDigest: sha256(manifestBytes),
    layers: out,
    diffIds,
    configBytes,
    manifestBytes,
  };
}

/** stage() + ensureLayers() + recordImage(). */
async function addImage(
  store: Store,
  layers: Record<string, string>[],
  ref?: string,
  label = "x",
  opts: { keepBlobs?: boolean } = {},
) {
  const b = await stage(store, layers, label);
  await store.ensureLayers(b.layers, opts);
  return { ...b, rec: recordStaged(store, b, ref) };
}

/** recordImage() of a staged image whose layers are unpacked. */
function recordStaged(store: Store, b: Built, ref?: string) {
  return store.recordImage({
    ...(ref !== undefined ? { reference: ref } : {}),
    manifestDigest: b.manifestDigest,
    manifestBytes: b.manifestBytes,
    manifestMediaType: "application/vnd.oci.image.manifest.v1+json",
    configDigest: b.configDigest,
    configBytes: b.configBytes,
    layers: b.layers,
  });
}

async function withStore(fn: (store: Store, root: string) => Promise<void> | void): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "trun-store-test-" });
  const store = openStore(root);
  try {
    await fn(store, root);
  } finally {
    try {
      store.close();
    } catch {
      // Closed by the test.
    }
    await Deno.remove(root, { recursive: true });
  }
}

const exists = (p: string) => {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

const BASE = { "bin/": "", "bin/sh": "shell", "etc/os-release": "ID=test\n" };
const APP = { "app/": "", "app/main": "main", "etc/.wh.os-release": "" };

Deno.test("openStore() lays out the root and migrates the database once", async () => {
  await withStore((store, root) => {
    for (const d of ["blobs/sha256", "layers", "locks", "trun.db"]) {
      assert.ok(exists(`${root}/${d}`), d);
    }
    const v = store.db.prepare("PRAGMA user_version").get() as { user_version: number };
    assert.equal(v.user_version, SCHEMA_VERSION);
    const mode = store.db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
    assert.equal(mode.journal_mode, "wal");
    store.close();
    const again = openStore(root);
    assert.deepEqual(again.listImages(), []);
    again.close();
  });
});

Deno.test("openStore() with existing: a deleted store stays deleted", async () => {
  const parent = await Deno.makeTempDir({ prefix: "trun-store-test-" });
  try {
    const root = `${parent}/root`;
    assert.throws(() => openStore(root, { existing: true }), StoreGoneError);
    assert.equal(exists(root), false, "nothing was made");
    openStore(root).close();
    openStore(root, { existing: true, repair: false }).close();
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("openStore() refuses a database from a newer trun", async () => {
  const root = await Deno.makeTempDir({ prefix: "trun-store-test-" });
  try {
    const db = new DatabaseSync(`${root}/trun.db`);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(() => openStore(root), /schema version \d+, newer than this trun.*upgrade trun/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("commitBlob() moves a download into place; hasBlob() and blobPath() find it", async () => {
  await withStore((store) => {
    const bytes = enc.encode("blob content");
    const digest = sha256(bytes);
    assert.equal(store.hasBlob(digest), false);
    const tmp = store.blobTempPath(digest);
    assert.ok(tmp.endsWith(`${digest.slice(7)}.partial`));
    Deno.writeFileSync(tmp, bytes);
    assert.throws(() => store.commitBlob(digest, tmp, 999), /has 12 bytes, expected 999/);
    store.commitBlob(digest, tmp, bytes.length);
    assert.equal(store.hasBlob(digest), true);
    assert.deepEqual(Deno.readFileSync(store.blobPath(digest)), bytes);
    assert.ok(!exists(tmp));
    assert.throws(() => store.commitBlob(digest, tmp), /"[^"]+\.partial" is missing/);
    assert.throws(() => store.blobPath("sha256:xyz"), /Invalid digest "sha256:xyz"/);
  });
});

Deno.test("writeBlob() and importBlob() refuse content that does not match its digest", async () => {
  await withStore(async (store) => {
    const wrong = sha256("other");
    assert.throws(() => store.writeBlob(wrong, enc.encode("data")), /does not match its digest/);
    await assert.rejects(
      store.importBlob(
        (async function* () {
          yield enc.encode("data");
        })(),
        { digest: wrong, what: "blob in test" },
      ),
      /blob in test does not match its digest/,
    );
    assert.equal(store.hasBlob(wrong), false);
    const r = await store.importBlob((async function* () {
      yield enc.encode("da");
      yield enc.encode("ta");
    })());
    assert.deepEqual(r, { digest: sha256("data"), size: 4 });
  });
});

Deno.test("chainIds() follows the OCI image-spec definition", () => {
  const a = sha256("a"), b = sha256("b"), c = sha256("c");
  const ab = sha256(`${a} ${b}`);
  assert.deepEqual(chainIds([a, b, c]), [a, ab, sha256(`${ab} ${c}`)]);
  assert.equal(chainId(undefined, a), a);
  assert.deepEqual(chainIds([]), []);
});

Deno.test("ensureLayers() unpacks in order, returns chain ids, and skips what is done", async () => {
  await withStore(async (store, root) => {
    const b = await stage(store, [BASE, APP]);
    const seen: string[] = [];
    const chains = await store.ensureLayers(b.layers, { onProgress: (p) => seen.push(p.state) });
    assert.deepEqual(chains, chainIds(b.diffIds));
    assert.deepEqual(seen, ["unpacking", "done", "unpacking", "done"]);
    const base = `${root}/layers/${chains[0]!.slice(7)}`;
    const app = `${root}/layers/${chains[1]!.slice(7)}`;
    assert.equal(Deno.readTextFileSync(`${base}/bin/sh`), "shell");
    assert.equal(Deno.readTextFileSync(`${app}/app/main`), "main");
    assert.ok(Deno.lstatSync(`${app}/etc/os-release`).isCharDevice, "whiteout");
    seen.length = 0;
    assert.deepEqual(
      await store.ensureLayers(b.layers, { onProgress: (p) => seen.push(p.state) }),
      chains,
    );
    assert.deepEqual(seen, ["exists", "exists"]);
    const names = [...Deno.readDirSync(`${root}/layers`)].map((e) => e.name).sort();
    assert.deepEqual(
      names,
      chains.flatMap((c) => [c.slice(7), `${c.slice(7)}.tar-split.gz`]).sort(),
      "a record beside each layer, no temporary files",
    );
    for (const l of b.layers) assert.ok(!store.hasBlob(l.digest), "the blob is dropped");
    assert.deepEqual(store.unpackedBlobs(b.layers), new Set(b.layers.map((l) => l.digest)));
  });
});

Deno.test("ensureLayers() refuses a blob whose content no longer matches its digest", async () => {
  await withStore(async (store, root) => {
    const b = await stage(store, [BASE]);
    const layer = b.layers[0]!;
    // A valid layer, but not the one the digest names (a damaged or tampered store).
    const forged = gzipSync(await layerTar({ evil: "x" }));
    Deno.writeFileSync(store.blobPath(layer.digest), forged);
    await assert.rejects(
      store.ensureLayers([{ ...layer, size: forged.length }]),
      new RegExp(`Layer ${layer.digest} in the store is corrupt \\(its content hashes to sha256:`),
    );
    assert.equal(store.hasBlob(layer.digest), false, "the damaged blob was removed");
    Deno.writeFileSync(store.blobPath(layer.digest), forged.subarray(0, 20));
    await assert.rejects(
      store.ensureLayers(b.layers),
      new RegExp(
        `Layer ${layer.digest} in the store has 20 bytes, but the manifest says \\d+: it has been removed; pull the image again`,
      ),
    );
    assert.equal(store.hasBlob(layer.digest), false);
    assert.deepEqual([...Deno.readDirSync(`${root}/layers`)], [], "nothing left in layers/");
    assert.equal(store.db.prepare("SELECT COUNT(*) AS n FROM layers").get()?.n, 0);
  });
});

Deno.test("ensureLayers() refuses media types that are not tar layers", async () => {
  await withStore(async (store) => {
    await assert.rejects(
      store.ensureLayers([{
        digest: sha256("x"),
        mediaType: "application/vnd.in-toto+json",
        size: 1,
      }]),
      /media type "application\/vnd.in-toto\+json", which is not a tar layer/,
    );
  });
});

Deno.test("recordImage() makes an image findable by reference, id, prefix and digest", async () => {
  await withStore(async (store, root) => {
    const { rec, configDigest, manifestDigest, manifestBytes } = await addImage(
      store,
      [BASE, APP],
      "test/app:1",
    );
    assert.deepEqual(store.getManifest(manifestDigest)?.bytes, manifestBytes);
    assert.deepEqual(store.manifest("test/app:1").bytes, manifestBytes);
    assert.equal(store.getManifest(sha256("none")), undefined);
    assert.equal(rec.id, configDigest);
    assert.equal(rec.manifestDigest, manifestDigest);
    assert.deepEqual(rec.tags, ["docker.io/test/app:1"]);
    assert.deepEqual(rec.digests, [`docker.io/test/app@${manifestDigest}`]);
    assert.equal(rec.created, "2024-01-02T03:04:05Z");
    assert.equal(rec.size, "shell".length + "ID=test\n".length + "main".length);
    assert.deepEqual(rec.config.config?.Cmd, ["sh"]);
    const queries = [
      "test/app:1",
      "docker.io/test/app:1",
      configDigest,
      configDigest.slice(7),
      configDigest.slice(7, 19),
      `sha256:${configDigest.slice(7, 15)}`,
      `test/app@${manifestDigest}`,
    ];
    for (const q of queries) assert.equal(store.findImage(q)?.id, configDigest, q);
    assert.equal(store.findImage("test/app:2"), undefined);
    assert.equal(store.findImage("nothing"), undefined);
    assert.deepEqual(store.listImages().map((i) => i.id), [configDigest]);
    assert.deepEqual(
      store.layerPaths("test/app:1"),
      rec.layers.map((c) => `${root}/layers/${c.slice(7)}`),
    );
    const blobs = [configDigest, ...rec.layers.map(() => "")].filter((d) => d !== "");
    for (const d of blobs) assert.ok(store.hasBlob(d), `config blob ${d} stored`);
  });
});

Deno.test("recordImage() refuses layers that do not unpack to the config's diff ids", async () => {
  await withStore(async (store) => {
    const good = await stage(store, [BASE]);
    const other = await stage(store, [APP]);
    await store.ensureLayers([...good.layers, ...other.layers]);
    assert.throws(
      () =>
        store.recordImage({
          reference: "bad",
          manifestDigest: good.manifestDigest,
          manifestBytes: good.manifestBytes,
          manifestMediaType: "application/vnd.oci.image.manifest.v1+json",
          configDigest: good.configDigest,
          configBytes: good.configBytes,
          layers: other.layers,
        }),
      /unpacks to sha256:.*but the image config says sha256:.*corrupt or was tampered with/,
    );
    assert.throws(
      () =>
        store.recordImage({
          manifestDigest: sha256("nope"),
          manifestBytes: good.manifestBytes,
          manifestMediaType: "application/vnd.oci.image.manifest.v1+json",
          configDigest: good.configDigest,
          configBytes: good.configBytes,
          layers: good.layers,
        }),
      /manifest of .* does not match its digest/,
    );
    assert.deepEqual(store.listImages(), []);
  });
});

Deno.test("recordImage() moves a tag to the newer image and keeps the old one untagged", async () => {
  await withStore(async (store) => {
    const old = await addImage(store, [BASE], "app", "v1");
    const neu = await addImage(store, [BASE], "app", "v2");
    assert.notEqual(old.configDigest, neu.configDigest);
    assert.equal(store.findImage("app")?.id, neu.configDigest);
    assert.deepEqual(store.findImage(old.configDigest)?.tags, []);
    const refcount = store.db.prepare("SELECT refcount FROM layers WHERE chain_id = ?")
      .get(old.rec.layers[0]!) as { refcount: number };
    assert.equal(refcount.refcount, 2, "the shared base layer is counted once per image");
  });
});

Deno.test("removeImage() untags first and deletes the image, its layers and blobs with the last tag", async () => {
  await withStore(async (store, root) => {
    const keep = { keepBlobs: true };
    const base = await addImage(store, [BASE], "base", "base", keep);
    const app = await addImage(store, [BASE, APP], "app", "app", keep);
    store.tagImage("app", "app:v2");
    assert.deepEqual(store.removeImage("app:v2"), {
      untagged: ["docker.io/library/app:v2"],
      deleted: [],
    });
    const r = store.removeImage("app");
    assert.deepEqual(r.untagged.sort(), [
      "docker.io/library/app:latest",
      `docker.io/library/app@${app.manifestDigest}`,
    ]);
    assert.deepEqual(r.deleted, [app.configDigest, app.rec.layers[1]!]);
    assert.equal(store.findImage(app.configDigest), undefined);
    assert.ok(!exists(`${root}/layers/${app.rec.layers[1]!.slice(7)}`), "top layer deleted");
    assert.ok(exists(`${root}/layers/${app.rec.layers[0]!.slice(7)}`), "shared base kept");
    assert.ok(!exists(`${root}/layers/${app.rec.layers[1]!.slice(7)}.tar-split.gz`), "record too");
    assert.ok(exists(`${root}/layers/${app.rec.layers[0]!.slice(7)}.tar-split.gz`));
    assert.ok(!exists(store.blobPath(app.layers[1]!.digest)), "its layer blob deleted");
    assert.ok(!exists(store.blobPath(app.configDigest)), "its config blob deleted");
    assert.ok(exists(store.blobPath(base.layers[0]!.digest)), "the shared blob kept");
    assert.deepEqual(store.layerPaths("base").length, 1);
    assert.throws(
      () => store.removeImage("app"),
      (e: Error) =>
        e instanceof ImageError && e.kind === "not-found" && e.message === 'No such image: "app"',
    );
  });
});

Deno.test("removeImage() by id needs force for several tags, and never deletes what a container uses", async () => {
  await withStore(async (store) => {
    const img = await addImage(store, [BASE], "one");
    store.tagImage(img.configDigest, "two:latest");
    assert.throws(
      () => store.removeImage(img.configDigest.slice(7, 19)),
      (e: Error) =>
        e instanceof ImageError && e.kind === "conflict" && /tagged.*--force/.test(e.message),
    );
    store.db.prepare("INSERT INTO containers (id, name, image_id, created) VALUES (?, ?, ?, ?)")
      .run("c".repeat(64), "web", img.configDigest, Date.now());
    store.removeImage("two");
    assert.throws(
      () => store.removeImage("one"),
      (e: Error) => e instanceof ImageError && /container "web" uses it/.test(e.message),
    );
    const forced = store.removeImage("one", { force: true });
    assert.deepEqual(forced.untagged, ["docker.io/library/one:latest"]);
    assert.deepEqual(forced.deleted, [], "the image stays for its container");
    assert.ok(store.findImage(img.configDigest));
    assert.equal(store.layerPaths(img.configDigest).length, 1);
  });
});

Deno.test("removeImage() by id deletes an image with one tag; an ambiguous prefix is refused", async () => {
  await withStore(async (store) => {
    const img = await addImage(store, [BASE], "solo");
    const r = store.removeImage(img.configDigest);
    assert.ok(r.deleted.includes(img.configDigest));
    assert.deepEqual(store.listImages(), []);
    // 17 configs make two ids share their first hex digit (pigeonhole).
    const byDigit = new Map<string, string>();
    for (let i = 0;; i++) {
      const { configDigest } = await addImage(store, [BASE], undefined, `label-${i}`);
      const digit = configDigest.slice(7, 8);
      if (byDigit.has(digit)) {
        assert.throws(
          () => store.findImage(digit),
          (e: Error) => e instanceof ImageError && e.kind === "ambiguous",
        );
        assert.equal(store.findImage(configDigest.slice(7, 30))?.id, configDigest);
        break;
      }
      byDigit.set(digit, configDigest);
    }
  });
});

Deno.test("prune() deletes unused layers and blobs, but not what another process holds a lease on", async () => {
  await withStore(async (store, root) => {
    const staged = await stage(store, [BASE, APP]);
    const chains = await store.ensureLayers(staged.layers, { keepBlobs: true });
    const other = openStore(root, { repair: false });
    try {
      assert.ok(other.hasBlob(staged.layers[0]!.digest), "the other store leases the blob");
      await other.ensureLayers(staged.layers.slice(0, 1), { keepBlobs: true });
      const first = store.prune();
      assert.deepEqual(first.layers, [chains[1]!]);
      assert.deepEqual(first.blobs, [staged.layers[1]!.digest]);
      assert.ok(first.bytes > 0);
    } finally {
      other.close();
    }
    const second = store.prune();
    assert.deepEqual(second.layers, [chains[0]!]);
    assert.deepEqual(second.blobs, [staged.layers[0]!.digest]);
    assert.deepEqual([...Deno.readDirSync(`${root}/layers`)], []);
    assert.deepEqual(store.prune(), { layers: [], blobs: [], bytes: 0 });
  });
});

Deno.test("prune() keeps everything an image uses", async () => {
  await withStore(async (store) => {
    const img = await addImage(store, [BASE, APP], "keep");
    assert.deepEqual(store.prune(), { layers: [], blobs: [], bytes: 0 });
    assert.equal(store.layerPaths("keep").length, 2);
    assert.ok(store.hasBlob(img.configDigest));
  });
});

Deno.test("repair() clears what killed processes left and keeps what live ones use", async () => {
  await withStore(async (store, root) => {
    const img = await addImage(store, [BASE], "kept");
    const hex = "ab".repeat(32);
    const dead = `${root}/layers/sha256-${hex}.tmp-0123ab`;
    const busy = `${root}/layers/sha256-${"cd".repeat(32)}.tmp-4567cd`;
    const del = `${root}/layers/${"ef".repeat(32)}.del-89ef01`;
    const orphan = `${root}/layers/${"12".repeat(32)}`;
    for (const d of [dead, busy, del, orphan]) Deno.mkdirSync(`${d}/sub`, { recursive: true });
    const blobs = `${root}/blobs/sha256`;
    Deno.writeTextFileSync(`${blobs}/${hex}.tmp-aa11`, "half");
    Deno.writeTextFileSync(`${blobs}/${hex}.partial`, "stale");
    Deno.utimeSync(`${blobs}/${hex}.partial`, 0, 0);
    Deno.writeTextFileSync(`${blobs}/${"34".repeat(32)}.partial`, "fresh download");
    Deno.writeTextFileSync(`${root}/blobs/.scratch-999999999-bb22`, "import");
    store.db.prepare("INSERT INTO blobs (digest, size, created) VALUES (?, 1, 0)")
      .run(`sha256:${"56".repeat(32)}`);
    store.db.exec(`UPDATE layers SET refcount = 7`);
    store.close();

    // An unpack in progress holds its lock: its directory must survive.
    const report = await withLock(root, `unpack-sha256-${"cd".repeat(32)}`, () => {
      const s = openStore(root, { repair: false });
      try {
        const actions = s.repair().actions;
        assert.ok(exists(busy), "a locked unpack directory is kept");
        return Promise.resolve(actions);
      } finally {
        s.close();
      }
    });
    const again = openStore(root);
    try {
      for (const gone of [dead, del, orphan]) assert.ok(!exists(gone), `${gone} removed`);
      assert.ok(!exists(busy), "the same directory goes once its lock is free");
      assert.ok(!exists(`${blobs}/${hex}.tmp-aa11`));
      assert.ok(!exists(`${blobs}/${hex}.partial`), "stale partial removed");
      assert.ok(exists(`${blobs}/${"34".repeat(32)}.partial`), "recent partial kept for resume");
      assert.ok(!exists(`${root}/blobs/.scratch-999999999-bb22`));
      const row = again.db.prepare("SELECT 1 AS ok FROM blobs WHERE digest = ?")
        .get(`sha256:${"56".repeat(32)}`);
      assert.equal(row, undefined, "row of a missing blob dropped");
      const rc = again.db.prepare("SELECT refcount FROM layers").get() as { refcount: number };
      assert.equal(rc.refcount, 1, "reference counts recomputed");
      assert.equal(again.layerPaths("kept").length, 1);
      assert.equal(again.findImage("kept")?.id, img.configDigest);
      assert.deepEqual(again.repair().actions, [], "a repaired store needs nothing more");
      for (const what of [dead, del, orphan, `${root}/blobs/.scratch-999999999-bb22`]) {
        assert.ok(report.some((a) => a.includes(what)), `report names ${what}`);
      }
      assert.ok(report.some((a) => a.includes("its file is missing")), report.join("\n"));
    } finally {
      again.close();
    }
  });
});

Deno.test("repair() forgets a layer whose directory vanished, and ensureLayers() makes it again", async () => {
  await withStore(async (store, root) => {
    const img = await addImage(store, [BASE], "re", "x", { keepBlobs: true });
    const dir = `${root}/layers/${img.rec.layers[0]!.slice(7)}`;
    Deno.removeSync(dir, { recursive: true });
    const r = store.repair();
    assert.ok(r.actions.some((a) => a.includes("its directory is missing")), r.actions.join());
    assert.ok(
      store.repair().actions.some((a) => a.includes("record of a layer never recorded")),
      "the orphaned record goes on the next repair",
    );
    assert.throws(() => store.layerPaths("re"), /is missing from the store.*pull the image again/);
    assert.deepEqual(store.unpackedBlobs(img.layers), new Set(), "a pull downloads it again");
    await store.ensureLayers(img.layers);
    assert.deepEqual(store.layerPaths("re"), [dir]);
    const rc = store.db.prepare("SELECT refcount FROM layers").get() as { refcount: number };
    assert.equal(rc.refcount, 1);
  });
});

Deno.test("withLock() serialises holders of one name and lets other names run", async () => {
  await withStore(async (store) => {
    const log: string[] = [];
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const job = (lock: string, tag: string) =>
      store.withLock(lock, async () => {
        log.push(`${tag}+`);
        await sleep(30);
        log.push(`${tag}-`);
      });
    await Promise.all([job("a", "1"), job("a", "2"), job("b", "3")]);
    const one = log.indexOf("1+"), two = log.indexOf("2+");
    const [first, second] = one < two ? ["1", "2"] : ["2", "1"];
    assert.ok(log.indexOf(`${first}-`) < log.indexOf(`${second}+`), log.join(" "));
    assert.ok(log.indexOf("3+") < log.indexOf(`${first}-`), "another name did not wait");
    await assert.rejects(store.withLock("../x", () => Promise.resolve()), /Invalid lock name/);
  });
});

Deno.test("imageTars() + layerTar() rebuild each layer's tar; a layer without a record (an older store) reads its kept blob", async () => {
  await withStore(async (store, root) => {
    const img = await addImage(store, [BASE, APP], "tars");
    const tars = store.imageTars(img.configDigest);
    assert.deepEqual(tars.map((t) => t.diffId), img.diffIds);
    for (const t of tars) {
      const bytes = concat(await Array.fromAsync(store.layerTar(t)));
      assert.equal(bytes.length, t.tarSize);
      assert.equal(sha256(bytes), t.diffId);
    }
    const old = await addImage(store, [{ "old/": "", "old/f": "from an old store" }], "old", "o", {
      keepBlobs: true,
    });
    const [t] = store.imageTars(old.configDigest);
    Deno.removeSync(`${root}/layers/${t!.chain.slice(7)}.tar-split.gz`);
    assert.equal(sha256(concat(await Array.fromAsync(store.layerTar(t!)))), t!.diffId);
    // A pull of it again keeps that blob: the layer has no record to rebuild from.
    await store.ensureLayers(old.layers);
    assert.ok(store.hasBlob(old.layers[0]!.digest));
  });
});

Deno.test("a blob another process leases stays after unpacking, and prune() drops it once it is free", async () => {
  await withStore(async (store, root) => {
    const b = await stage(store, [BASE]);
    const other = openStore(root, { repair: false });
    try {
      assert.ok(other.hasBlob(b.layers[0]!.digest), "the other store leases the blob");
      await store.ensureLayers(b.layers);
      assert.ok(store.hasBlob(b.layers[0]!.digest), "kept while leased");
    } finally {
      other.close();
    }
    recordStaged(store, b, "leased");
    const r = store.prune();
    assert.deepEqual(r.blobs, [b.layers[0]!.digest]);
    assert.ok(!store.hasBlob(b.layers[0]!.digest));
    assert.equal(store.layerPaths("leased").length, 1, "the image stays");
  });
});

// The store under real concurrency and real crashes: separate `deno`
// processes unpacking the same layers into one store at once, processes
// killed with SIGKILL mid-unpack and at arbitrary moments of a pull, and a
// disk that fills up (a small tmpfs, root only).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import tarStream from "tar-stream";
import { openStore, type Store } from "../../lib/store/mod.ts";
import { chainIds } from "../../lib/store/layers.ts";

const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const sha256 = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

interface Layer {
  digest: string;
  mediaType: string;
  size: number;
  gz: Uint8Array;
  diffId: string;
  files: Map<string, number>;
}

/** A gzip layer of `count` files under `prefix/`, sizes varying, contents partly random. */
async function makeLayer(prefix: string, count: number, seed: number): Promise<Layer> {
  const pack = tarStream.pack();
  const owner = { uid: Deno.uid() ?? 0, gid: Deno.gid() ?? 0, mtime: new Date(1_600_000_000_000) };
  const files = new Map<string, number>();
  pack.entry({ name: `${prefix}/`, type: "directory", mode: 0o755, ...owner });
  for (let i = 0; i < count; i++) {
    const size = 512 + ((i * 7919 + seed) % 16) * 1024;
    const body = new Uint8Array(size);
    crypto.getRandomValues(body.subarray(0, Math.min(size >> 2, 65536)));
    const name = `${prefix}/d${i % 50}/f${i}`;
    if (i < 50) pack.entry({ name: `${prefix}/d${i}/`, type: "directory", mode: 0o755, ...owner });
    pack.entry({ name, mode: 0o644, ...owner }, body);
    files.set(name, size);
  }
  pack.finalize();
  const chunks: Uint8Array[] = [];
  for await (const c of pack) chunks.push(c as Uint8Array);
  const tar = new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
  const gz = gzipSync(tar, { level: 1 });
  return { digest: sha256(gz), mediaType: GZIP, size: gz.length, gz, diffId: sha256(tar), files };
}

function stageBlob(store: Store, layer: Layer): void {
  const tmp = store.blobTempPath(layer.digest);
  Deno.writeFileSync(tmp, layer.gz);
  store.commitBlob(layer.digest, tmp, layer.size);
}

function descriptors(layers: Layer[]) {
  return layers.map(({ digest, mediaType, size }) => ({ digest, mediaType, size }));
}

// The program each child runs: open the store, optionally stage blobs from
// files, wait for the go signal, ensure the layers, optionally record.
const CHILD = `
import { openStore } from "${REPO}/lib/store/mod.ts";
const env = (k) => Deno.env.get(k);
const store = openStore(env("STORE"));
const layers = JSON.parse(env("LAYERS"));
for (const l of JSON.parse(env("STAGE") ?? "[]")) {
  if (store.hasBlob(l.digest)) continue;
  Deno.copyFileSync(l.path, store.blobTempPath(l.digest));
  store.commitBlob(l.digest, store.blobTempPath(l.digest), l.size);
}
if (env("READY")) Deno.writeTextFileSync(env("READY"), "");
while (env("GO")) {
  try { Deno.statSync(env("GO")); break; } catch { await new Promise((r) => setTimeout(r, 2)); }
}
const events = [];
const chains = await store.ensureLayers(layers, {
  onProgress: (p) => {
    events.push(p.state);
    if (p.state === "unpacking") console.log("unpacking " + p.digest);
  },
});
if (env("RECORD")) store.recordImage({ ...JSON.parse(env("RECORD")), layers,
  manifestBytes: new TextEncoder().encode(JSON.parse(env("RECORD")).manifestText),
  configBytes: new TextEncoder().encode(JSON.parse(env("RECORD")).configText) });
console.log(JSON.stringify({ chains, events }));
store.close();
`;

function child(env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", `${REPO}/deno.json`, CHILD],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function withRoot(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "trun-store-it-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Checks every file of every layer is in the unpacked tree with the right size. */
function assertTree(store: Store, chains: string[], layers: Layer[]): void {
  chains.forEach((chain, i) => {
    const dir = `${store.root}/layers/${chain.slice(7)}`;
    for (const [name, size] of layers[i]!.files) {
      assert.equal(Deno.statSync(`${dir}/${name}`).size, size, name);
    }
  });
}

/** The store invariants a crash must never break. */
function assertConsistent(store: Store): void {
  const ok = store.db.prepare("PRAGMA integrity_check").get() as { integrity_check: string };
  assert.equal(ok.integrity_check, "ok");
  const all = [...Deno.readDirSync(`${store.root}/layers`)].map((e) => e.name);
  assert.deepEqual(
    all.filter((n) => !/^[a-f0-9]{64}(\.tar-split\.gz)?$/.test(n)),
    [],
    "no leftovers in layers/",
  );
  const names = all.filter((n) => /^[a-f0-9]{64}$/.test(n));
  for (const n of all.filter((n) => n.endsWith(".tar-split.gz"))) {
    assert.ok(names.includes(n.slice(0, 64)), `the record ${n} has its layer`);
  }
  const rows = (store.db.prepare("SELECT chain_id FROM layers").all() as { chain_id: string }[])
    .map((r) => r.chain_id.slice(7)).sort();
  assert.deepEqual(names.sort(), rows, "every layer directory has a row and every row a directory");
  for (const img of store.listImages()) {
    for (const p of store.layerPaths(img.id)) assert.ok(Deno.statSync(p).isDirectory, p);
  }
  const blobs = [...Deno.readDirSync(`${store.root}/blobs/sha256`)].map((e) => e.name);
  assert.deepEqual(blobs.filter((n) => n.includes(".tmp-")), [], "no half-written blobs");
  for (const n of blobs.filter((n) => /^[a-f0-9]{64}$/.test(n))) {
    const bytes = Deno.readFileSync(`${store.root}/blobs/sha256/${n}`);
    assert.equal(sha256(bytes), `sha256:${n}`, "a blob under its final name is whole");
  }
}

Deno.test("two processes ensuring the same layers at once both succeed and unpack each layer once", async () => {
  await withRoot(async (dir) => {
    const root = `${dir}/store`;
    const layers = [
      await makeLayer("base", 1500, 1),
      await makeLayer("mid", 1500, 2),
      await makeLayer("top", 1500, 3),
    ];
    const store = openStore(root);
    for (const l of layers) stageBlob(store, l);
    store.close();
    const env = (n: number) => ({
      STORE: root,
      LAYERS: JSON.stringify(descriptors(layers)),
      READY: `${dir}/ready-${n}`,
      GO: `${dir}/go`,
    });
    const kids = [child(env(1)), child(env(2))];
    for (let i = 0; i < 3000; i++) {
      try {
        Deno.statSync(`${dir}/ready-1`);
        Deno.statSync(`${dir}/ready-2`);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    Deno.writeTextFileSync(`${dir}/go`, "");
    const outs = await Promise.all(kids.map((k) => k.output()));
    const results = outs.map((o, i) => {
      assert.equal(o.code, 0, `child ${i + 1} failed: ${new TextDecoder().decode(o.stderr)}`);
      const lines = new TextDecoder().decode(o.stdout).trim().split("\n");
      return JSON.parse(lines.at(-1)!) as { chains: string[]; events: string[] };
    });
    const want = chainIds(layers.map((l) => l.diffId));
    assert.deepEqual(results[0]!.chains, want);
    assert.deepEqual(results[1]!.chains, want);
    const done = results.flatMap((r) => r.events).filter((e) => e === "done").length;
    assert.equal(done, layers.length, "each layer was unpacked by exactly one process");
    const again = openStore(root);
    try {
      assertConsistent(again);
      assertTree(again, want, layers);
    } finally {
      again.close();
    }
  });
});

Deno.test("a process killed with SIGKILL mid-unpack leaves a store the next open repairs", async () => {
  await withRoot(async (dir) => {
    const root = `${dir}/store`;
    const layer = await makeLayer("big", 6000, 4);
    const store = openStore(root);
    stageBlob(store, layer);
    store.close();
    const kid = child({ STORE: root, LAYERS: JSON.stringify(descriptors([layer])) });
    const reader = kid.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("unpacking")) {
      const r = await reader.read();
      if (r.done) break;
      seen += r.value;
    }
    assert.match(seen, /unpacking/);
    // Let it write part of the tree, then kill it where it stands.
    let tmp: string[] = [];
    for (let i = 0; i < 500 && tmp.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
      tmp = [...Deno.readDirSync(`${root}/layers`)].map((e) => e.name)
        .filter((n) => n.includes(".tmp-") && !n.endsWith(".tar-split"));
    }
    await new Promise((r) => setTimeout(r, 100));
    kid.kill("SIGKILL");
    const status = await kid.status;
    await reader.cancel();
    await kid.stderr.cancel();
    assert.equal(status.signal, "SIGKILL");
    assert.equal(tmp.length, 1, "the unpack was under way in a temporary directory");
    assert.ok(Deno.statSync(`${root}/layers/${tmp[0]}`).isDirectory, "and the kill left it");
    assert.ok(Deno.statSync(`${root}/layers/${tmp[0]}.tar-split`).isFile, "and its record");

    const next = openStore(root);
    try {
      assertConsistent(next);
      assert.equal(next.db.prepare("SELECT COUNT(*) AS n FROM layers").get()?.n, 0);
      const chains = await next.ensureLayers(descriptors([layer]));
      assert.deepEqual(chains, [layer.diffId]);
      assertTree(next, chains, [layer]);
      assertConsistent(next);
    } finally {
      next.close();
    }
  });
});

Deno.test("SIGKILL at arbitrary moments of a pull never leaves a store the next command trips on", async () => {
  await withRoot(async (dir) => {
    const root = `${dir}/store`;
    const layers = [await makeLayer("one", 800, 5), await makeLayer("two", 1600, 6)];
    const stage = layers.map((l, i) => {
      const path = `${dir}/layer-${i}.gz`;
      Deno.writeFileSync(path, l.gz);
      return { digest: l.digest, size: l.size, path };
    });
    const configText = JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    });
    const manifestText = JSON.stringify({ schemaVersion: 2, layers: descriptors(layers) });
    const record = JSON.stringify({
      reference: "crash/test:1",
      manifestDigest: sha256(manifestText),
      manifestMediaType: "application/vnd.oci.image.manifest.v1+json",
      configDigest: sha256(configText),
      manifestText,
      configText,
    });
    const env = {
      STORE: root,
      LAYERS: JSON.stringify(descriptors(layers)),
      STAGE: JSON.stringify(stage),
      RECORD: record,
    };
    // Here these land before the first unpack, inside each layer's unpack,
    // between the layers and after the record; the store persists across
    // rounds, as it would across a user's retries.
    for (const delay of [150, 300, 450, 600, 800, 1000, 1300, 1700]) {
      const kid = child(env);
      await new Promise((r) => setTimeout(r, delay));
      try {
        kid.kill("SIGKILL");
      } catch {
        // It already finished: the run below checks that state too.
      }
      await kid.output();
      const store = openStore(root);
      try {
        assertConsistent(store);
        if (store.findImage("crash/test:1")) {
          assertTree(store, store.findImage("crash/test:1")!.layers, layers);
        }
      } finally {
        store.close();
      }
    }
    const last = await child(env).output();
    assert.equal(last.code, 0, new TextDecoder().decode(last.stderr));
    const store = openStore(root);
    try {
      assertConsistent(store);
      const img = store.findImage("crash/test:1");
      assert.equal(img?.id, sha256(configText));
      assertTree(store, img!.layers, layers);
    } finally {
      store.close();
    }
  });
});

Deno.test({
  name: "a full disk gives a clear message and leaves no half-made layer (root: needs a tmpfs)",
  ignore: Deno.uid() !== 0,
  fn: async (t) => {
    await withRoot(async (dir) => {
      const mnt = `${dir}/small`;
      Deno.mkdirSync(mnt);
      const mount = await new Deno.Command("mount", {
        args: ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
        stderr: "piped",
      }).output();
      const why = new TextDecoder().decode(mount.stderr).trim();
      await t.step({
        name: mount.code === 0 ? "on a 2 MiB tmpfs" : `skipped, cannot mount a tmpfs: ${why}`,
        ignore: mount.code !== 0,
        fn: async () => {
          try {
            await fillDisk(`${mnt}/store`);
          } finally {
            await new Deno.Command("umount", { args: [mnt] }).output();
          }
        },
      });
    });
  },
});

async function fillDisk(root: string): Promise<void> {
  const pack = tarStream.pack();
  pack.entry({ name: "zeros", mode: 0o644 }, new Uint8Array(6 << 20));
  pack.finalize();
  const chunks: Uint8Array[] = [];
  for await (const c of pack) chunks.push(c as Uint8Array);
  const gz = gzipSync(new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer()));
  const store = openStore(root);
  try {
    const digest = sha256(gz);
    const tmp = store.blobTempPath(digest);
    Deno.writeFileSync(tmp, gz);
    store.commitBlob(digest, tmp, gz.length);
    await assert.rejects(
      store.ensureLayers([{ digest, mediaType: GZIP, size: gz.length }]),
      /no space left on the device holding ".*": free some space .*and try again/,
    );
    assert.deepEqual([...Deno.readDirSync(`${root}/layers`)], []);
    assert.equal(store.db.prepare("SELECT COUNT(*) AS n FROM layers").get()?.n, 0);
  } finally {
    store.close();
  }
}

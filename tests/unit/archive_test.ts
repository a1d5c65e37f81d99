// saveImages() and loadArchive(): round trips through both formats, old-style
// docker-archives built by hand, and archives that lie about their content.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import tarStream from "tar-stream";
import { openStore, type Store } from "../../lib/store/mod.ts";
import { loadArchive, saveImages } from "../../lib/image/archive.ts";

const sha256 = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const enc = new TextEncoder();
const OWNER = { uid: Deno.uid() ?? 0, gid: Deno.gid() ?? 0 };

type Files = Record<string, string | Uint8Array | { symlink: string }>;

/** Tar bytes of `files`; a trailing slash makes a directory, `{symlink}` a symlink. */
async function tarOf(files: Files): Promise<Uint8Array> {
  const pack = tarStream.pack();
  const base = { ...OWNER, mtime: new Date(1_600_000_000_000) };
  for (const [name, body] of Object.entries(files)) {
    if (name.endsWith("/")) pack.entry({ name, type: "directory", mode: 0o755, ...base });
    else if (typeof body === "object" && "symlink" in body) {
      pack.entry({ name, type: "symlink", linkname: body.symlink, ...base });
    } else pack.entry({ name, mode: 0o644, ...base }, body as string | Uint8Array);
  }
  pack.finalize();
  const chunks: Uint8Array[] = [];
  for await (const c of pack) chunks.push(c as Uint8Array);
  return new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

async function entriesOf(bytes: Uint8Array): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const extract = tarStream.extract();
  extract.end(bytes);
  for await (const e of extract) {
    const parts: Uint8Array[] = [];
    for await (const c of e) parts.push(c as Uint8Array);
    out.set(e.header.name, new Uint8Array(await new Blob(parts as BlobPart[]).arrayBuffer()));
  }
  return out;
}

function configFor(diffIds: string[], label = "x"): Uint8Array {
  return enc.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: { Cmd: ["/bin/app"], Labels: { label } },
    rootfs: { type: "layers", diff_ids: diffIds },
  }));
}

/** Pulls (as pull.ts would) an image of gzip layers into `store` and tags it `ref`. */
async function pullInto(store: Store, layers: Files[], ref: string, label = "x") {
  const descs = [];
  const diffIds = [];
  for (const files of layers) {
    const tar = await tarOf(files);
    const gz = gzipSync(tar);
    const digest = sha256(gz);
    diffIds.push(sha256(tar));
    const tmp = store.blobTempPath(digest);
    Deno.writeFileSync(tmp, gz);
    store.commitBlob(digest, tmp, gz.length);
    descs.push({
      digest,
      size: gz.length,
      mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
    });
  }
  const configBytes = configFor(diffIds, label);
  const manifestBytes = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: {
      mediaType: "application/vnd.docker.container.image.v1+json",
      size: configBytes.length,
      digest: sha256(configBytes),
    },
    layers: descs,
  }));
  await store.ensureLayers(descs);
  return store.recordImage({
    reference: ref,
    manifestDigest: sha256(manifestBytes),
    manifestBytes,
    manifestMediaType: "application/vnd.docker.distribution.manifest.v2+json",
    configDigest: sha256(configBytes),
    configBytes,
    layers: descs,
  });
}

async function withStores(fn: (a: Store, b: Store, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "trun-archive-test-" });
  const a = openStore(`${dir}/a`);
  const b = openStore(`${dir}/b`);
  try {
    await fn(a, b, dir);
  } finally {
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const BASE: Files = { "bin/": "", "bin/app": "#!app", "etc/motd": "hello\n" };
const TOP: Files = {
  "srv/": "",
  "srv/data": new Uint8Array(70_000).fill(3),
  "link": { symlink: "/srv/data" },
};

for (const format of ["docker-archive", "oci-archive"] as const) {
  Deno.test(`saveImages() and loadArchive() round-trip an image as ${format}`, async () => {
    await withStores(async (a, b, dir) => {
      const img = await pullInto(a, [BASE, TOP], "example.com/team/app:1.0");
      const pulled = JSON.parse(new TextDecoder().decode(a.manifest(img.id).bytes));
      for (const l of pulled.layers) assert.ok(!a.hasBlob(l.digest), "the layer blob was dropped");
      const path = `${dir}/out.tar`;
      await saveImages(a, ["example.com/team/app:1.0"], path, format);
      assert.deepEqual(
        [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
        ["a", "b", "out.tar"],
        "no temporary file left",
      );
      const loaded = await loadArchive(b, path);
      assert.deepEqual(loaded, [{ id: img.id, references: ["example.com/team/app:1.0"] }]);
      const got = b.findImage("example.com/team/app:1.0");
      assert.equal(got?.id, img.id);
      // As Docker 25+: the archive holds uncompressed layers, named by diff id.
      const saved = JSON.parse(new TextDecoder().decode(b.manifest(img.id).bytes));
      const config = JSON.parse(new TextDecoder().decode(Deno.readFileSync(a.blobPath(img.id))));
      assert.deepEqual(
        saved.layers.map((l: { digest: string }) => l.digest),
        config.rootfs.diff_ids,
      );
      assert.deepEqual(
        saved.layers.map((l: { mediaType: string }) => l.mediaType),
        ["application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar"],
      );
      assert.deepEqual(got?.layers, img.layers);
      const top = b.layerPaths(img.id)[1]!;
      assert.equal(Deno.statSync(`${top}/srv/data`).size, 70_000);
      assert.equal(Deno.readLinkSync(`${top}/link`), "/srv/data");
      assert.equal(Deno.readTextFileSync(`${b.layerPaths(img.id)[0]}/etc/motd`), "hello\n");
    });
  });
}

Deno.test("saveImages() writes an OCI layout, plus Docker's manifest.json for docker-archive", async () => {
  await withStores(async (a, _b, dir) => {
    const img = await pullInto(a, [BASE], "app:1");
    await saveImages(a, ["app:1"], `${dir}/d.tar`, "docker-archive");
    await saveImages(a, [img.id], `${dir}/o.tar`, "oci-archive");
    const d = await entriesOf(Deno.readFileSync(`${dir}/d.tar`));
    const diffIds = JSON.parse(new TextDecoder().decode(Deno.readFileSync(a.blobPath(img.id))))
      .rootfs.diff_ids as string[];
    const manifest = JSON.parse(new TextDecoder().decode(d.get("manifest.json")));
    assert.deepEqual(manifest, [{
      Config: `blobs/sha256/${img.id.slice(7)}`,
      RepoTags: ["app:1"],
      Layers: [`blobs/sha256/${diffIds[0]!.slice(7)}`],
    }]);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(d.get("oci-layout"))), {
      imageLayoutVersion: "1.0.0",
    });
    const index = JSON.parse(new TextDecoder().decode(d.get("index.json")));
    const saved = d.get(`blobs/${index.manifests[0].digest.replace(":", "/")}`)!;
    assert.deepEqual(
      JSON.parse(new TextDecoder().decode(saved)).layers,
      [{
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: diffIds[0],
        size: d.get(`blobs/sha256/${diffIds[0]!.slice(7)}`)!.length,
      }],
    );
    assert.equal(
      index.manifests[0].annotations["io.containerd.image.name"],
      "docker.io/library/app:1",
    );
    for (const [name, bytes] of d) {
      if (name.startsWith("blobs/")) assert.equal(sha256(bytes), name.slice(6).replace("/", ":"));
    }
    const o = await entriesOf(Deno.readFileSync(`${dir}/o.tar`));
    assert.ok(!o.has("manifest.json"));
    const oIndex = JSON.parse(new TextDecoder().decode(o.get("index.json")));
    assert.equal(oIndex.manifests[0].annotations, undefined, "saved by id: untagged");
  });
});

Deno.test("loadArchive() reads an old docker-archive with layer.tar files, symlinked duplicates and gzip", async () => {
  await withStores(async (_a, b, dir) => {
    const l1 = await tarOf(BASE);
    const l2 = await tarOf({ "opt/": "", "opt/x": "x" });
    const config = configFor([sha256(l1), sha256(l2), sha256(l1)], "legacy");
    const configName = `${sha256(config).slice(7)}.json`;
    const archive = await tarOf({
      "1111/": "",
      "1111/layer.tar": l1,
      "1111/json": "{}",
      "1111/VERSION": "1.0",
      "2222/layer.tar": l2,
      "3333/layer.tar": { symlink: "../1111/layer.tar" },
      [configName]: config,
      "manifest.json": JSON.stringify([{
        Config: configName,
        RepoTags: ["legacy:v1", "legacy:latest"],
        Layers: ["1111/layer.tar", "2222/layer.tar", "3333/layer.tar"],
      }]),
      "repositories": JSON.stringify({ legacy: { v1: "3333" } }),
    });
    Deno.writeFileSync(`${dir}/legacy.tar.gz`, gzipSync(archive));
    const loaded = await loadArchive(b, `${dir}/legacy.tar.gz`);
    assert.equal(loaded.length, 1);
    assert.equal(loaded[0]!.id, sha256(config));
    assert.deepEqual(loaded[0]!.references, [
      "docker.io/library/legacy:v1",
      "docker.io/library/legacy:latest",
    ]);
    const img = b.findImage("legacy:latest")!;
    assert.equal(img.id, sha256(config));
    assert.deepEqual(img.tags, ["docker.io/library/legacy:latest", "docker.io/library/legacy:v1"]);
    const paths = b.layerPaths("legacy:v1");
    assert.equal(paths.length, 3);
    assert.equal(Deno.readTextFileSync(`${paths[2]}/bin/app`), "#!app");
    const manifest = JSON.parse(new TextDecoder().decode(b.manifest(img.id).bytes));
    assert.equal(manifest.layers[0].mediaType, "application/vnd.oci.image.layer.v1.tar");
  });
});

Deno.test("loadArchive() takes an OCI layout from a stream and names images from index annotations", async () => {
  await withStores(async (a, b, dir) => {
    await pullInto(a, [BASE], "one:1", "one");
    await pullInto(a, [BASE, TOP], "two:2", "two");
    await saveImages(a, ["one:1", "two:2"], `${dir}/both.tar`, "oci-archive");
    const file = await Deno.open(`${dir}/both.tar`);
    const loaded = await loadArchive(b, file.readable);
    assert.deepEqual(
      loaded.map((l) => l.references).flat().sort(),
      ["docker.io/library/one:1", "docker.io/library/two:2"],
    );
    assert.equal(b.listImages().length, 2);
  });
});

Deno.test("loadArchive() refuses archives that lie about their content and records nothing", async () => {
  const l1 = await tarOf(BASE);
  const other = await tarOf({ evil: "x" });
  const config = configFor([sha256(l1)]);
  const cases: [string, Files, RegExp][] = [
    [
      "a blob that does not match its name",
      {
        "oci-layout": '{"imageLayoutVersion":"1.0.0"}',
        [`blobs/sha256/${sha256(l1).slice(7)}`]: other,
        "index.json": '{"schemaVersion":2,"manifests":[]}',
      },
      /"blobs\/sha256\/[a-f0-9]{64}" in .* does not match its digest/,
    ],
    [
      "a layer that is not what the config says",
      {
        "l.tar": other,
        "c.json": config,
        "manifest.json": JSON.stringify([{
          Config: "c.json",
          RepoTags: ["x:1"],
          Layers: ["l.tar"],
        }]),
      },
      /unpacks to sha256:.*but the image config says.*tampered/,
    ],
    [
      "a manifest naming a missing file",
      {
        "c.json": config,
        "manifest.json": JSON.stringify([{ Config: "c.json", RepoTags: [], Layers: ["gone.tar"] }]),
      },
      /names "gone.tar" in its manifest, but has no such file/,
    ],
    [
      "no manifest at all",
      { "hello.txt": "hi" },
      /neither a docker-archive nor an OCI archive/,
    ],
  ];
  for (const [name, files, re] of cases) {
    await withStores(async (_a, b, dir) => {
      Deno.writeFileSync(`${dir}/bad.tar`, await tarOf(files));
      await assert.rejects(loadArchive(b, `${dir}/bad.tar`), re, name);
      assert.deepEqual(b.listImages(), [], name);
    });
  }
});

Deno.test("saveImages() refuses unknown images without writing anything", async () => {
  await withStores(async (a, _b, dir) => {
    await assert.rejects(
      saveImages(a, ["nothing:here"], `${dir}/x.tar`, "docker-archive"),
      /Cannot save "nothing:here": no such image/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a", "b"]);
  });
});

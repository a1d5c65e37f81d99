// Tar-split records: every fixture layer, unpacked with a recorder, must be
// rebuilt from the record and the unpacked directory byte for byte; a layer
// that cannot be rebuilt from disk must say so; a changed file must be
// named when rebuilding.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { applyLayer, type ApplyLayerOptions } from "../../lib/oci/layer_tar.ts";
import { rebuildTar, TarSplitError, TarSplitRecorder } from "../../lib/oci/tar_split.ts";
import { layerFiles, layerTar } from "../../lib/store/layer_records.ts";
import { recordPath } from "../../lib/store/layer_record_paths.ts";
import { concat } from "../../lib/util/bytes.ts";
import { lsetxattr } from "../../ffi/fs.ts";
import { enc, type Entry, stream, tar, withDir } from "./_tar_fixture.ts";

const IS_ROOT = Deno.uid() === 0;
const OWN: ApplyLayerOptions = IS_ROOT
  ? {}
  : { squashOwnership: { uid: Deno.uid()!, gid: Deno.gid()! } };
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Unpacks `input` into `dest` with a recorder; returns the record and why it is unusable, if it is. */
async function recordLayer(input: Uint8Array, dest: string, chunk = 777) {
  const parts: Uint8Array[] = [];
  const recorder = new TarSplitRecorder((b) => parts.push(b.slice()), {
    ownerReadOnly: !IS_ROOT,
  });
  const result = await applyLayer(stream(input, chunk), dest, {
    what: "layer sha256:test",
    recorder,
    ...OWN,
  });
  return { why: recorder.finish(), record: concat(parts), result };
}

async function rebuild(record: Uint8Array, dest: string): Promise<Uint8Array> {
  async function* once() {
    yield record;
  }
  return concat(await Array.fromAsync(rebuildTar(once(), layerFiles(dest), "Layer sha256:test")));
}

/** Unpacks, records, rebuilds and compares with `plain` (the uncompressed tar). */
async function assertRoundTrip(plain: Uint8Array, input = plain, chunk = 777): Promise<void> {
  await withDir(async (dir) => {
    const { why, record, result } = await recordLayer(input, `${dir}/layer`, chunk);
    assert.equal(why, undefined, "the record rebuilds the layer");
    assert.equal(result.diffId, sha256(plain));
    const again = await rebuild(record, `${dir}/layer`);
    assert.equal(again.length, plain.length);
    assert.ok(again.every((x, i) => x === plain[i]), "byte-identical");
    const content = plain.length - 512 * (EVERYTHING.length + 40);
    if (content > 100_000) assert.ok(record.length < plain.length / 3, "no file content kept");
  });
}

const LONG = `${"d".repeat(120)}/${"e".repeat(150)}/${"f".repeat(200)}`;
const GNU = `gnu/${"g".repeat(180)}`;
const sparse = new Uint8Array(300_000);
sparse.set(enc.encode("end"), 299_997);

/** One layer with every kind of entry the unpacker knows. */
const EVERYTHING: Entry[] = [
  { name: "./", type: "5", mode: 0o755 },
  { name: "bin/", type: "5" },
  { name: "bin/sh", body: "#!shell", mode: 0o755 },
  { name: "bin/empty", body: "" },
  { name: "bin/sparse", body: sparse },
  { name: "bin/odd", body: "x".repeat(511) },
  { name: "bin/exact", body: "y".repeat(1024) },
  { name: "bin/link", type: "1", linkname: "bin/sh" },
  { name: "bin/sym", type: "2", linkname: "sh" },
  { name: "bin/abs", type: "2", linkname: "/bin/sh" },
  { name: "bin/symhard", type: "1", linkname: "bin/sym" },
  { name: "dev/", type: "5" },
  { name: "dev/null", type: "3", devmajor: 1, devminor: 3, mode: 0o666 },
  { name: "dev/loop0", type: "4", devmajor: 7, devminor: 0, mode: 0o660 },
  { name: "run/fifo", type: "6", mode: 0o600 },
  { name: "etc/.wh.gone", body: "" },
  { name: "opt/app/.wh..wh..opq", body: "" },
  { name: "opt/app/keep", body: "kept" },
  { name: "x", body: "pax long name", pax: { path: LONG, mtime: "1700000000.25" } },
  { name: "xattr", body: "with xattr", pax: { "SCHILY.xattr.user.mime": "text/plain" } },
  { name: "././@LongLink", type: "L", body: enc.encode(GNU + "\0") },
  { name: GNU.slice(0, 99), body: "gnu long name" },
  { name: "././@LongLink", type: "K", body: enc.encode(GNU + "\0") },
  { name: "gnu-hardlink", type: "1", linkname: GNU.slice(0, 99) },
  { name: "old-style-dir/", type: "0", mode: 0o755 },
  { name: "old-style-dir/f", body: "in an old-style directory" },
];

Deno.test("tar-split rebuilds a layer of every entry kind byte for byte, plain, gzip and zstd", async () => {
  const plain = tar(EVERYTHING);
  await assertRoundTrip(plain);
  await assertRoundTrip(plain, gzipSync(plain));
  await assertRoundTrip(plain, zstdCompressSync(plain));
});

Deno.test("tar-split frames the stream the same way whatever the chunk sizes", async () => {
  const plain = tar(EVERYTHING.filter((e) => e.body !== sparse));
  for (const chunk of [1, 511, 512, 513, 65536]) await assertRoundTrip(plain, plain, chunk);
});

Deno.test("tar-split keeps a PAX global header, trailing garbage-free padding and extra zero blocks", async () => {
  const entries: Entry[] = [
    { name: "pax_global_header", type: "g", body: paxRecords({ comment: "global" }) },
    { name: "a", body: "a" },
  ];
  const body = tar(entries);
  // Two extra end blocks, as some tools write.
  await assertRoundTrip(concat([body, new Uint8Array(1024)]));
});

function paxRecords(pax: Record<string, string>): Uint8Array {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(pax)) {
    const rest = ` ${k}=${v}\n`.length;
    let len = rest + 1;
    while (String(len).length + rest !== len) len = String(len).length + rest;
    parts.push(`${len} ${k}=${v}\n`);
  }
  return enc.encode(parts.join(""));
}

Deno.test("tar-split rebuilds archives GNU tar writes in gnu, pax and posix formats with xattrs", async () => {
  await withDir(async (dir) => {
    const src = `${dir}/src`;
    Deno.mkdirSync(`${src}/${"n".repeat(90)}/${"m".repeat(90)}`, { recursive: true });
    Deno.writeTextFileSync(`${src}/${"n".repeat(90)}/${"m".repeat(90)}/${"l".repeat(90)}`, "deep");
    Deno.writeFileSync(`${src}/zeros`, new Uint8Array(200_000));
    Deno.writeTextFileSync(`${src}/file`, "content\n");
    Deno.linkSync(`${src}/file`, `${src}/hard`);
    Deno.symlinkSync("file", `${src}/sym`);
    new Deno.Command("mkfifo", { args: [`${src}/fifo`] }).outputSync();
    lsetxattr(`${src}/file`, "user.note", enc.encode("hi"));
    for (const format of ["gnu", "pax", "posix"]) {
      const out = new Deno.Command("tar", {
        args: [`--format=${format}`, "--xattrs", "-C", src, "-cf", "-", "."],
        stdout: "piped",
        stderr: "piped",
      }).outputSync();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      await assertRoundTrip(out.stdout);
    }
  });
});

Deno.test("tar-split refuses layers it cannot rebuild from disk, and says why", async () => {
  const cases: [string, Entry[], RegExp][] = [
    [
      "a path written twice",
      [{ name: "f", body: "first" }, { name: "f", body: "second" }],
      /"f" is replaced or removed later in the same layer/,
    ],
    [
      "a file whited out by its own layer",
      [{ name: "d/f", body: "x" }, { name: "d/.wh.f", body: "" }],
      /"d\/f" is replaced or removed later/,
    ],
    [
      "a directory replaced by a file",
      [{ name: "d/f", body: "x" }, { name: "d", body: "now a file" }],
      /"d\/f" is replaced or removed later/,
    ],
    [
      "a whiteout with content",
      [{ name: ".wh.f", body: "odd" }],
      /was not unpacked to that path/,
    ],
  ];
  for (const [what, entries, why] of cases) {
    await withDir(async (dir) => {
      const r = await recordLayer(tar(entries), `${dir}/layer`);
      assert.match(r.why ?? "", why, what);
    });
  }
});

Deno.test("tar-split refuses a file its owner cannot read when ownership is squashed", async () => {
  await withDir(async (dir) => {
    const parts: Uint8Array[] = [];
    const recorder = new TarSplitRecorder((b) => parts.push(b), { ownerReadOnly: true });
    await applyLayer(stream(tar([{ name: "secret", body: "s", mode: 0o000 }])), `${dir}/l`, {
      recorder,
      ...OWN,
    });
    assert.match(recorder.finish() ?? "", /"secret" is not readable by its owner \(mode 0\)/);
  });
});

Deno.test("rebuildTar() names the layer and the path when a file changed or vanished", async () => {
  await withDir(async (dir) => {
    const dest = `${dir}/layer`;
    const { record } = await recordLayer(
      tar([{ name: "etc/passwd", body: "root:x:0:0" }, { name: "etc/group", body: "root:x:0:" }]),
      dest,
    );
    await assert.rejects(
      () => rebuild(record.subarray(0, record.length - 1), dest),
      /tar-split record is cut short/,
    );
    Deno.writeTextFileSync(`${dest}/etc/passwd`, "root:x:0:0:changed");
    await assert.rejects(
      () => rebuild(record, dest),
      (e: Error) =>
        e instanceof TarSplitError && e.path === "etc/passwd" &&
        /^Layer sha256:test cannot be rebuilt: "etc\/passwd" has 18 bytes instead of 10; .*pull it again$/
          .test(e.message),
    );
    Deno.removeSync(`${dest}/etc/passwd`);
    await assert.rejects(() => rebuild(record, dest), /"etc\/passwd" is missing/);
    Deno.symlinkSync("/etc/hostname", `${dest}/etc/passwd`);
    await assert.rejects(() => rebuild(record, dest), /"etc\/passwd" cannot be read/);
  });
});

Deno.test("layerTar() checks the rebuilt tar against the diff id: same-size edits are caught", async () => {
  await withDir(async (root) => {
    const plain = tar([{ name: "etc/motd", body: "hello" }]);
    const chain = sha256(plain);
    const dest = `${root}/layers/${chain.slice(7)}`;
    Deno.mkdirSync(`${root}/layers`);
    const { record } = await recordLayer(plain, dest);
    Deno.writeFileSync(recordPath(root, chain), gzipSync(record));
    const layer = { chain, diffId: chain, blobDigest: chain };
    assert.deepEqual(concat(await Array.fromAsync(layerTar(root, layer))), plain);
    Deno.writeTextFileSync(`${dest}/etc/motd`, "HELLO");
    await assert.rejects(
      () => Array.fromAsync(layerTar(root, layer)),
      /Layer sha256:\w+ was rebuilt as sha256:\w+, not its diff id: the unpacked layer was changed/,
    );
    Deno.removeSync(recordPath(root, chain));
    await assert.rejects(
      () => Array.fromAsync(layerTar(root, layer)),
      /has neither a tar-split record nor its blob/,
    );
  });
});

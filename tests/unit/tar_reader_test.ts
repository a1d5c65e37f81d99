// readTar() against tar-stream, whose framing and header decoding it must
// match (the tar-split recorder frames the same bytes): the same entries,
// fields and bodies for archives GNU tar writes in every format and for
// hand-made ones (global and per-entry pax, GNU long names, base-256
// numbers, ustar prefixes, old-style directories), fed in odd chunk sizes;
// and tar-stream's errors for what it refuses.

import assert from "node:assert/strict";
import tarStream from "tar-stream";
import { readTar, type TarHeader } from "../../lib/oci/tar_reader.ts";
import { block, enc, header, paxBody, tar, withDir } from "./_tar_fixture.ts";
import { concat } from "../../lib/util/bytes.ts";

interface Seen {
  header: Partial<TarHeader>;
  body: number[];
}

// The fields both readers give, in a comparable shape.
function fields(h: Record<string, unknown>): Partial<TarHeader> {
  return {
    name: h.name as string,
    mode: h.mode as number,
    uid: h.uid as number,
    gid: h.gid as number,
    size: h.size as number,
    mtime: h.mtime as Date,
    type: h.type as TarHeader["type"],
    linkname: (h.linkname ?? null) as string | null,
    uname: h.uname as string,
    gname: h.gname as string,
    devmajor: h.devmajor as number,
    devminor: h.devminor as number,
    pax: (h.pax ?? null) as Record<string, string> | null,
  };
}

function chunked(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (let off = 0; off < bytes.length; off += size) yield bytes.slice(off, off + size);
  })();
}

async function withTarStream(bytes: Uint8Array): Promise<Seen[]> {
  const extract = tarStream.extract();
  const out: Seen[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const parts: number[] = [];
      for await (const c of entry) parts.push(...(c as Uint8Array));
      out.push({ header: fields(entry.header as unknown as Record<string, unknown>), body: parts });
    }
  })();
  for (let off = 0; off < bytes.length; off += 4096) extract.write(bytes.slice(off, off + 4096));
  extract.end(null);
  await done;
  return out;
}

async function withReader(bytes: Uint8Array, chunk: number): Promise<Seen[]> {
  const out: Seen[] = [];
  for await (const { header: h, body } of readTar(chunked(bytes, chunk))) {
    const parts: number[] = [];
    for await (const c of body) parts.push(...c);
    out.push({ header: fields(h as unknown as Record<string, unknown>), body: parts });
  }
  return out;
}

async function assertSame(
  bytes: Uint8Array,
  what: string,
  chunks = [1, 7, 511, 512, 513, 65536],
): Promise<void> {
  const want = await withTarStream(bytes);
  assert.ok(want.length > 0, `${what}: tar-stream saw entries`);
  for (const chunk of chunks) {
    assert.deepEqual(await withReader(bytes, chunk), want, `${what}, chunks of ${chunk}`);
  }
}

// A GNU base-256 number field.
function base256(buf: Uint8Array, off: number, len: number, n: number): void {
  buf[off] = 0x80;
  for (let i = len - 1; i > 0; i--) {
    buf[off + i] = n % 256;
    n = Math.floor(n / 256);
  }
}

function withChecksum(b: Uint8Array): Uint8Array {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return b;
}

Deno.test("readTar() gives tar-stream's entries for archives GNU tar writes in every format", async () => {
  await withDir(async (dir) => {
    const src = `${dir}/src`;
    const deep = `${src}/${"n".repeat(90)}/${"m".repeat(90)}`;
    Deno.mkdirSync(deep, { recursive: true });
    Deno.writeTextFileSync(`${deep}/${"l".repeat(90)}`, "deep");
    Deno.writeFileSync(`${src}/zeros`, new Uint8Array(200_000));
    Deno.writeTextFileSync(`${src}/file`, "content\n");
    Deno.writeTextFileSync(`${src}/ünïcödé`, "utf-8 name\n");
    Deno.linkSync(`${src}/file`, `${src}/hard`);
    Deno.symlinkSync("l".repeat(150), `${src}/long-target`);
    Deno.symlinkSync("file", `${src}/sym`);
    new Deno.Command("mkfifo", { args: [`${src}/fifo`] }).outputSync();
    for (const format of ["gnu", "oldgnu", "pax", "posix", "ustar"]) {
      // ustar cannot hold the long names: GNU tar skips them with a warning.
      const out = new Deno.Command("tar", {
        args: [`--format=${format}`, "-C", src, "-cf", "-", "."],
        stdout: "piped",
        stderr: "piped",
      }).outputSync();
      assert.ok(out.success || format === "ustar", new TextDecoder().decode(out.stderr));
      await assertSame(out.stdout, `GNU tar --format=${format}`, [7, 511, 513, 65536]);
    }
  });
});

Deno.test("readTar() gives tar-stream's entries for pax, GNU long names, base-256 and prefixes", async () => {
  const longName = `${"a".repeat(120)}/file`;
  const gnuLong = (type: "L" | "K", value: string) => {
    const data = enc.encode(`${value}\0`);
    return [
      header({ name: "././@LongLink", type }, data.length),
      data,
      new Uint8Array(
        (512 - data.length % 512) % 512,
      ),
    ];
  };
  const prefixed = header({ name: "leaf" }, 3);
  prefixed.set(enc.encode("some/prefix/dir"), 345);
  withChecksum(prefixed);
  const big = header({ name: "big-uid", uid: 0 }, 0);
  base256(big, 108, 8, 3_000_000_000);
  base256(big, 136, 12, 1_700_000_000);
  withChecksum(big);
  const global = paxBody({ "comment": "everyone", "uname": "globaluser" });
  const bytes = concat([
    header({ name: "pax_global_header", type: "g" }, global.length),
    global,
    new Uint8Array((512 - global.length % 512) % 512),
    ...block({ name: "dir/", type: "5" }),
    ...block({ name: "old-style-dir/", type: "0" }),
    ...block({ name: "p", body: "pax body", pax: { path: longName, mtime: "1700000000.25" } }),
    ...block({ name: "x", type: "2", pax: { linkpath: "t".repeat(200) } }),
    ...gnuLong("L", "g".repeat(300)),
    ...block({ name: "short", body: "gnu long name" }),
    ...gnuLong("K", "k".repeat(300)),
    ...block({ name: "lnk", type: "1" }),
    prefixed,
    enc.encode("abc"),
    new Uint8Array(509),
    big,
    ...block({ name: "dev", type: "3", devmajor: 1, devminor: 3 }),
    new Uint8Array(1024),
    new Uint8Array(4096), // zero padding after the end marker
  ]);
  await assertSame(bytes, "hand-made");
});

Deno.test("readTar() refuses what tar-stream refuses, with its messages", async () => {
  const drainAll = async (bytes: Uint8Array) => {
    for await (const { body } of readTar(chunked(bytes, 1000))) {
      for await (const _ of body) {
        /* on */
      }
    }
  };
  const good = tar([{ name: "f", body: "x".repeat(2000) }]);
  await assert.rejects(drainAll(good.subarray(0, 1500)), /^Error: Unexpected end of data$/);
  await assert.rejects(drainAll(good.subarray(0, 700)), /Unexpected end of data/);
  const bad = good.slice();
  bad[0] = 0x41; // the checksum no longer matches
  await assert.rejects(drainAll(bad), /Invalid tar header\. Maybe the tar is corrupted/);
  const v7 = header({ name: "old" }, 0);
  v7.fill(0, 257, 265);
  await assert.rejects(
    drainAll(concat([withChecksum(v7), new Uint8Array(1024)])),
    /unknown format/,
  );
  const huge = header({ name: "PaxHeader", type: "x" }, 5 * 1024 * 1024);
  await assert.rejects(drainAll(concat([huge, new Uint8Array(512)])), /Header exceeds max size/);
  const nan = header({ name: "n" }, 0);
  nan.set(enc.encode("zzzzzzzzzzz\0"), 124);
  await assert.rejects(
    drainAll(concat([withChecksum(nan), new Uint8Array(1024)])),
    /^Error: Invalid header$/,
  );
  // An empty input is an archive with no entries.
  assert.deepEqual(await withReader(new Uint8Array(0), 10), []);
});

// decodeLayerFile(): a blob file read, hashed and decompressed on a worker
// thread must give exactly the bytes and digests the in-thread path gives.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { decodeLayerFile } from "../../lib/oci/layer_decode.ts";
import { applyLayer, type ApplyLayerOptions } from "../../lib/oci/layer_tar.ts";
import { tar, withDir } from "./_tar_fixture.ts";

const OWN: ApplyLayerOptions = Deno.uid() === 0
  ? {}
  : { squashOwnership: { uid: Deno.uid()!, gid: Deno.gid()! } };

const exists = (p: string) => {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

const sha = (alg: string, b: Uint8Array) => `${alg}:${createHash(alg).update(b).digest("hex")}`;

// 12 MB of tar: more than the worker's messages in flight (8 of 1 MiB), so
// its back-pressure is exercised; a varied body so that gzip has work.
function bigTar(): Uint8Array {
  const body = new Uint8Array(12_000_000);
  for (let i = 0; i < body.length; i += 64) body[i] = (i * 2654435761) >>> 24;
  return tar([
    { name: "d/", type: "5" },
    { name: "d/big", body },
    { name: "d/small", body: "hello" },
  ]);
}

Deno.test("decodeLayerFile() gives the tar bytes, blob digest and diff id for gzip, zstd and plain", async () => {
  const bytes = bigTar();
  const cases: [string, Uint8Array, string][] = [
    ["gzip", gzipSync(bytes), "sha256"],
    ["zstd", zstdCompressSync(bytes), "sha256"],
    ["plain", bytes, "sha512"],
  ];
  for (const [name, blob, alg] of cases) {
    await withDir(async (dir) => {
      Deno.writeFileSync(`${dir}/blob`, blob);
      const d = decodeLayerFile(`${dir}/blob`, alg);
      try {
        const out = new Uint8Array(bytes.length);
        let n = 0;
        for await (const chunk of d.tar) {
          assert.ok(n + chunk.length <= out.length, `${name}: too many bytes`);
          out.set(chunk, n);
          n += chunk.length;
        }
        assert.equal(n, bytes.length, name);
        assert.equal(sha("sha256", out), sha("sha256", bytes), `${name}: bytes differ`);
        assert.deepEqual(d.digests(), {
          blobDigest: sha(alg, blob),
          diffId: sha("sha256", bytes),
          tarSize: bytes.length,
        }, name);
      } finally {
        d.close();
      }
    });
  }
});

Deno.test("applyLayer() over decodeLayerFile() makes the same tree and diff id as in-thread decoding", async () => {
  const bytes = bigTar();
  await withDir(async (dir) => {
    Deno.writeFileSync(`${dir}/blob`, gzipSync(bytes));
    const d = decodeLayerFile(`${dir}/blob`, "sha256");
    const r = await applyLayer(d.tar, `${dir}/l`, {
      ...OWN,
      decodedDiffId: () => d.digests().diffId,
    });
    d.close();
    assert.equal(r.diffId, sha("sha256", bytes));
    assert.equal(r.tarSize, bytes.length);
    assert.equal(Deno.readTextFileSync(`${dir}/l/d/small`), "hello");
    assert.equal(Deno.statSync(`${dir}/l/d/big`).size, 12_000_000);
  });
});

Deno.test("decodeLayerFile() reports corrupt gzip as zlib's error, and close() mid-stream stops the worker", async () => {
  const bytes = bigTar();
  await withDir(async (dir) => {
    const gz = gzipSync(bytes);
    gz.fill(0x55, 1000, 5000);
    Deno.writeFileSync(`${dir}/bad`, gz);
    const d = decodeLayerFile(`${dir}/bad`, "sha256");
    try {
      await assert.rejects(
        async () => {
          for await (const _ of d.tar) { /* read on */ }
        },
        (e: Error & { code?: string }) => String(e.code).startsWith("Z_"),
      );
    } finally {
      d.close();
    }
    const again = decodeLayerFile(`${dir}/bad`, "sha256");
    try {
      await assert.rejects(
        () =>
          applyLayer(again.tar, `${dir}/l`, {
            ...OWN,
            decodedDiffId: () => again.digests().diffId,
          }),
        /the layer data is corrupt/,
      );
    } finally {
      again.close();
    }
    assert.ok(!exists(`${dir}/l`), "a refused layer leaves nothing behind");
    // A consumer that stops early closes the worker and nothing hangs.
    Deno.writeFileSync(`${dir}/good`, gzipSync(bytes));
    const e = decodeLayerFile(`${dir}/good`, "sha256");
    for await (const _ of e.tar) break;
    e.close();
  });
});

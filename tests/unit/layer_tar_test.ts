// applyLayer(): every tar fixture is built by hand below, byte by byte, so
// hostile archives (names with `..`, links out of the tree, binary PAX
// values) are exactly what an attacker could send.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync, zstdCompressSync } from "node:zlib";
import {
  applyLayer,
  type ApplyLayerOptions,
  detectCompression,
  LayerError,
  normalizeEntryPath,
  OPAQUE_XATTR,
} from "../../lib/oci/layer_tar.ts";
import { lgetxattr } from "../../ffi/fs.ts";
import { enc, type Entry, stream, tar, withDir } from "./_tar_fixture.ts";

const IS_ROOT = Deno.uid() === 0;
/** Unprivileged runs cannot chown: they unpack with ownership squashed to themselves. */
const OWN: ApplyLayerOptions = IS_ROOT
  ? {}
  : { squashOwnership: { uid: Deno.uid()!, gid: Deno.gid()! } };

async function unpack(entries: Entry[], dest: string, opts: ApplyLayerOptions = {}) {
  return await applyLayer(stream(tar(entries)), dest, {
    what: "layer sha256:test",
    ...OWN,
    ...opts,
  });
}

const text = (p: string) => Deno.readTextFileSync(p);

Deno.test("normalizeEntryPath() keeps paths inside the root and refuses climbing out", () => {
  const cases: [string, string | undefined][] = [
    ["a/b", "a/b"],
    ["./a/./b/", "a/b"],
    ["/etc/passwd", "etc/passwd"],
    ["a/../b", "b"],
    ["./", ""],
    ["..", undefined],
    ["../etc/passwd", undefined],
    ["a/../../b", undefined],
    ["/../x", undefined],
    ["a//b", "a/b"],
  ];
  for (const [input, want] of cases) assert.equal(normalizeEntryPath(input), want, input);
});

Deno.test("detectCompression() reads gzip and zstd magic and takes the rest as tar", () => {
  const cases: [number[], string][] = [
    [[0x1f, 0x8b, 8, 0], "gzip"],
    [[0x28, 0xb5, 0x2f, 0xfd], "zstd"],
    [[0x61, 0x62, 0x63, 0], "none"],
    [[], "none"],
  ];
  for (const [bytes, want] of cases) {
    assert.equal(detectCompression(new Uint8Array(bytes)), want, want);
  }
});

Deno.test("applyLayer() writes files, modes incl. setuid/setgid/sticky, mtimes and contents", async () => {
  await withDir(async (dir) => {
    const dest = `${dir}/layer`;
    const r = await unpack([
      { name: "bin/", type: "5", mode: 0o755, mtime: 1_500_000_000 },
      { name: "bin/su", body: "#!/bin/su\n", mode: 0o4755, mtime: 1_400_000_000 },
      { name: "bin/wall", body: "w", mode: 0o2755 },
      { name: "tmp/", type: "5", mode: 0o1777 },
      { name: "etc/shadow", body: "root:*:1::::::\n", mode: 0o640 },
      { name: "empty", body: "" },
      { name: "old-style-dir/", type: "0", mode: 0o711 },
    ], dest);
    assert.equal(text(`${dest}/bin/su`), "#!/bin/su\n");
    const mode = (p: string) => Deno.lstatSync(`${dest}/${p}`).mode! & 0o7777;
    assert.equal(mode("bin/su"), 0o4755);
    assert.equal(mode("bin/wall"), 0o2755);
    assert.equal(mode("tmp"), 0o1777);
    assert.equal(mode("etc/shadow"), 0o640);
    assert.equal(mode("etc"), 0o755, "implicit parents are 0755");
    assert.ok(Deno.lstatSync(`${dest}/old-style-dir`).isDirectory);
    assert.equal(mode("old-style-dir"), 0o711);
    assert.equal(Deno.lstatSync(`${dest}/bin/su`).mtime!.getTime(), 1_400_000_000_000);
    // The directory's mtime survives its children being written after it.
    assert.equal(Deno.lstatSync(`${dest}/bin`).mtime!.getTime(), 1_500_000_000_000);
    assert.equal(Deno.statSync(`${dest}/empty`).size, 0);
    assert.equal(r.entries, 7);
    assert.equal(r.unpackedSize, 10 + 1 + 15);
  });
});

Deno.test("applyLayer() returns the sha256 of the uncompressed tar as the diff id, for gzip, zstd and plain", async () => {
  const bytes = tar([
    { name: "a/", type: "5" },
    { name: "a/big", body: new Uint8Array(300_000).fill(7) },
    { name: "a/small", body: "hello" },
  ]);
  const want = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const cases: [string, Uint8Array][] = [
    ["plain", bytes],
    ["gzip", gzipSync(bytes)],
    ["zstd", zstdCompressSync(bytes)],
  ];
  for (const [name, input] of cases) {
    await withDir(async (dir) => {
      const r = await applyLayer(stream(input, 4096), `${dir}/l`, OWN);
      assert.equal(r.diffId, want, name);
      assert.equal(r.tarSize, bytes.length, name);
      assert.equal(text(`${dir}/l/a/small`), "hello", name);
      assert.equal(Deno.statSync(`${dir}/l/a/big`).size, 300_000, name);
    });
  }
});

Deno.test("applyLayer() keeps symlink text as written, even absolute or climbing", async () => {
  await withDir(async (dir) => {
    const dest = `${dir}/layer`;
    await unpack([
      { name: "abs", type: "2", linkname: "/etc/passwd", mtime: 1_300_000_000 },
      { name: "d/rel", type: "2", linkname: "../../../../etc/shadow" },
      { name: "d/dangling", type: "2", linkname: "nowhere" },
    ], dest);
    assert.equal(Deno.readLinkSync(`${dest}/abs`), "/etc/passwd");
    assert.equal(Deno.readLinkSync(`${dest}/d/rel`), "../../../../etc/shadow");
    assert.equal(Deno.readLinkSync(`${dest}/d/dangling`), "nowhere");
    assert.equal(Deno.lstatSync(`${dest}/abs`).mtime!.getTime(), 1_300_000_000_000);
  });
});

Deno.test("applyLayer() makes hardlinks share one inode, including links to in-tree symlinks", async () => {
  await withDir(async (dir) => {
    const dest = `${dir}/layer`;
    await unpack([
      { name: "bin/busybox", body: "BB", mode: 0o755 },
      { name: "bin/sh", type: "1", linkname: "bin/busybox" },
      { name: "./usr/bin/ls", type: "1", linkname: "./bin/busybox" },
      { name: "lib/real.so", body: "so" },
      { name: "lib/alias.so", type: "2", linkname: "real.so" },
      { name: "lib/alias2.so", type: "1", linkname: "lib/alias.so" },
    ], dest);
    const ino = (p: string) => Deno.lstatSync(`${dest}/${p}`).ino;
    assert.equal(ino("bin/sh"), ino("bin/busybox"));
    assert.equal(ino("usr/bin/ls"), ino("bin/busybox"));
    assert.equal(Deno.lstatSync(`${dest}/bin/busybox`).nlink, 3);
    assert.equal(Deno.readLinkSync(`${dest}/lib/alias2.so`), "real.so");
  });
});

Deno.test("applyLayer() turns .wh. files into overlay whiteouts and .wh..wh..opq into the opaque xattr", async () => {
  await withDir(async (dir) => {
    const dest = `${dir}/layer`;
    const r = await unpack([
      { name: "etc/", type: "5" },
      { name: "etc/gone", body: "replaced by the whiteout below" },
      { name: "etc/.wh.gone", body: "" },
      { name: ".wh.var", body: "" },
      { name: "opt/app/", type: "5" },
      { name: "opt/app/.wh..wh..opq", body: "" },
      { name: "opt/app/kept", body: "k" },
      { name: "usr/.wh..wh.plnk", type: "5" },
    ], dest);
    for (const p of ["etc/gone", "var"]) {
      const st = Deno.lstatSync(`${dest}/${p}`);
      assert.ok(st.isCharDevice, `${p} is a character device`);
      assert.equal(st.rdev, 0, `${p} is device 0/0`);
    }
    assert.deepEqual(lgetxattr(`${dest}/opt/app`, OPAQUE_XATTR), enc.encode("y"));
    assert.equal(text(`${dest}/opt/app/kept`), "k");
    assert.ok(!exists(`${dest}/opt/app/.wh..wh..opq`));
    assert.ok(!exists(`${dest}/usr/.wh..wh.plnk`));
    assert.ok(r.notes.some((n) => n.includes(".wh..wh.plnk")));
  });
});

Deno.test("applyLayer() in apply mode deletes whited-out entries and the lower content of opaque dirs", async () => {
  await withDir(async (dir) => {
    const dest = `${dir}/rootfs`;
    await unpack([
      { name: "etc/passwd", body: "lower" },
      { name: "etc/old", body: "lower" },
      { name: "srv/lower-only", body: "x" },
      { name: "srv/sub/deep", body: "x" },
    ], dest);
    await unpack(
      [
        { name: "etc/.wh.old", body: "" },
        { name: "srv/new", body: "upper" },
        { name: "srv/.wh..wh..opq", body: "" },
      ],
      dest,
      { whiteouts: "apply" },
    );
    assert.equal(text(`${dest}/etc/passwd`), "lower");
    assert.ok(!exists(`${dest}/etc/old`));
    assert.deepEqual([...Deno.readDirSync(`${dest}/srv`)].map((e) => e.name), ["new"]);
  });
});

Deno.test("applyLayer() reads PAX and GNU long names, PAX times and PAX owners", async () => {
  await withDir(async (dir) => {
    const dest = `${dir}/layer`;
    const long = `${"d".repeat(120)}/${"e".repeat(150)}/${"f".repeat(200)}`;
    const gnu = `gnu/${"g".repeat(180)}`;
    const gnuName = enc.encode(gnu + "\0");
    await unpack(
      [
        { name: "x", body: "pax", pax: { path: long, mtime: "1700000000.25" } },
        { name: "././@LongLink", type: "L", body: gnuName },
        { name: gnu.slice(0, 99), body: "gnu" },
        {
          name: "owned",
          body: "o",
          pax: { uid: "3000000", gid: "3000001" },
        },
      ],
      dest,
      IS_ROOT ? {} : { squashOwnership: OWN.squashOwnership! },
    );
    assert.equal(text(`${dest}/${long}`), "pax");
    assert.equal(Deno.lstatSync(`${dest}/${long}`).mtime!.getTime(), 1_700_000_000_250);
    assert.equal(text(`${dest}/${gnu}`), "gnu");
    if (IS_ROOT) {
      const st = Deno.lstatSync(`${dest}/owned`);
      assert.equal(st.uid, 3_000_000);
      assert.equal(st.gid, 3_000_001);
    }
  });
});

Deno.test("applyLayer() keeps the tar's owners (root only) and squashes them on request", async (t) => {
  const entries: Entry[] = [
    { name: "home/u/", type: "5", uid: 1234, gid: 5678 },
    { name: "home/u/f", body: "f", uid: 1234, gid: 5678, mode: 0o4750 },
    { name: "home/u/l", type: "2", linkname: "f", uid: 1234, gid: 5678 },
  ];
  await t.step({
    name: "owners as in the tar",
    ignore: !IS_ROOT,
    fn: () =>
      withDir(async (dir) => {
        await unpack(entries, `${dir}/l`);
        for (const p of ["home/u", "home/u/f", "home/u/l"]) {
          const st = Deno.lstatSync(`${dir}/l/${p}`);
          assert.deepEqual([st.uid, st.gid], [1234, 5678], p);
        }
        // chown clears setuid, so the mode must have been set after it.
        assert.equal(Deno.lstatSync(`${dir}/l/home/u/f`).mode! & 0o7777, 0o4750);
      }),
  });
  await t.step("squashed owners", () =>
    withDir(async (dir) => {
      const squash = { uid: Deno.uid()!, gid: Deno.gid()! };
      await applyLayer(stream(tar(entries)), `${dir}/l`, { squashOwnership: squash });
      for (const p of ["home/u", "home/u/f", "home/u/l"]) {
        const st = Deno.lstatSync(`${dir}/l/${p}`);
        assert.deepEqual([st.uid, st.gid], [squash.uid, squash.gid], p);
      }
    }));
  await t.step({
    name: "unprivileged chown fails with a message naming the entry",
    ignore: IS_ROOT,
    fn: () =>
      withDir(async (dir) => {
        await assert.rejects(
          applyLayer(stream(tar(entries)), `${dir}/l`, { what: "layer sha256:abc" }),
          (e: Error) =>
            e instanceof LayerError && /entry "home\/u\/f".*1234:5678.*EPERM/.test(e.message),
        );
        assert.ok(!exists(`${dir}/l`));
      }),
  });
});

Deno.test("applyLayer() sets PAX xattrs and skips values it cannot carry or must not forge", async () => {
  await withDir(async (dir) => {
    const dest = `${dir}/layer`;
    const r = await unpack([
      {
        name: "f",
        body: "x",
        pax: {
          "SCHILY.xattr.user.mime": "text/plain",
          "LIBARCHIVE.xattr.user.b64": btoa("\x00\x01binary"),
          "SCHILY.xattr.user.raw": new Uint8Array([0xff, 0xfe, 0x00]),
          "SCHILY.xattr.user.overlay.redirect": "/etc",
        },
      },
    ], dest);
    assert.deepEqual(lgetxattr(`${dest}/f`, "user.mime"), enc.encode("text/plain"));
    assert.deepEqual(
      lgetxattr(`${dest}/f`, "user.b64"),
      new Uint8Array([0, 1, ...enc.encode("binary")]),
    );
    assert.equal(lgetxattr(`${dest}/f`, "user.raw"), null);
    assert.equal(lgetxattr(`${dest}/f`, "user.overlay.redirect"), null);
    assert.ok(
      r.notes.some((n) => n.includes("user.raw") && n.includes("not UTF-8")),
      r.notes.join(),
    );
    assert.ok(r.notes.some((n) => n.includes("user.overlay.redirect")), r.notes.join());
  });
});

Deno.test("applyLayer() makes fifos, and device nodes when permitted (else a note)", async () => {
  await withDir(async (dir) => {
    const dest = `${dir}/layer`;
    const r = await unpack([
      { name: "run/fifo", type: "6", mode: 0o620 },
      { name: "dev/null", type: "3", mode: 0o666, devmajor: 1, devminor: 3 },
    ], dest);
    assert.ok(Deno.lstatSync(`${dest}/run/fifo`).isFifo);
    assert.equal(Deno.lstatSync(`${dest}/run/fifo`).mode! & 0o777, 0o620);
    if (exists(`${dest}/dev/null`)) {
      const st = Deno.lstatSync(`${dest}/dev/null`);
      assert.ok(st.isCharDevice);
      assert.equal(st.rdev, (1 << 8) | 3);
    } else {
      assert.ok(r.notes.some((n) => n.includes('"dev/null"')), r.notes.join());
    }
  });
});

// Hostile layers: each must be refused as a whole, name the entry, leave no
// destination directory, and change nothing outside it.
const HOSTILE: { name: string; entries: (victim: string) => Entry[]; message: RegExp }[] = [
  {
    name: "a ../ entry",
    entries: () => [{ name: "ok", body: "" }, { name: "../../etc/passwd", body: "pwned" }],
    message: /entry "\.\.\/\.\.\/etc\/passwd" escapes the layer/,
  },
  {
    name: "an entry climbing out through a/../..",
    entries: () => [{ name: "a/../../x", body: "pwned" }],
    message: /entry "a\/\.\.\/\.\.\/x" escapes the layer/,
  },
  {
    name: "an absolute name climbing out",
    entries: () => [{ name: "/../../x", body: "pwned" }],
    message: /escapes the layer/,
  },
  {
    name: "a write through a symlink to an absolute directory",
    entries: (victim) => [
      { name: "evil", type: "2", linkname: victim },
      { name: "evil/x", body: "pwned" },
    ],
    message: /entry "evil\/x" would be written through the symlink "evil"/,
  },
  {
    name: "a write through a relative symlink that climbs out",
    entries: (victim) => [
      { name: "d/evil", type: "2", linkname: `../../../../../../../..${victim}` },
      { name: "d/evil/x", body: "pwned" },
    ],
    message: /would be written through the symlink "d\/evil"/,
  },
  {
    name: "a directory entry under a symlink",
    entries: (victim) => [
      { name: "evil", type: "2", linkname: victim },
      { name: "evil/sub/", type: "5" },
    ],
    message: /through the symlink "evil"/,
  },
  {
    name: "a whiteout through a symlink",
    entries: (victim) => [
      { name: "evil", type: "2", linkname: victim },
      { name: "evil/.wh.x", body: "" },
    ],
    message: /through the symlink "evil"/,
  },
  {
    name: "an opaque marker through a symlink",
    entries: (victim) => [
      { name: "evil", type: "2", linkname: victim },
      { name: "evil/.wh..wh..opq", body: "" },
    ],
    message: /through the symlink "evil"/,
  },
  {
    name: "a hardlink to ../../etc/passwd",
    entries: () => [{ name: "h", type: "1", linkname: "../../etc/passwd" }],
    message: /entry "h" is a hardlink to "\.\.\/\.\.\/etc\/passwd", outside the layer/,
  },
  {
    name: "a hardlink to a symlink pointing outside",
    entries: () => [
      { name: "s", type: "2", linkname: "/etc/passwd" },
      { name: "h", type: "1", linkname: "s" },
    ],
    message: /entry "h" is a hardlink to the symlink "s", which points outside the layer/,
  },
  {
    name: "a hardlink to a relative symlink climbing out",
    entries: () => [
      { name: "a/s", type: "2", linkname: "../../etc/passwd" },
      { name: "h", type: "1", linkname: "a/s" },
    ],
    message: /hardlink to the symlink "a\/s", which points outside/,
  },
  {
    name: "a hardlink through a symlinked directory",
    entries: (victim) => [
      { name: "d", type: "2", linkname: victim },
      { name: "h", type: "1", linkname: "d/secret" },
    ],
    message: /entry "h" is a hardlink through the symlink "d"/,
  },
  {
    name: "a hardlink to something not in the layer",
    entries: () => [{ name: "h", type: "1", linkname: "etc/shadow" }],
    message: /which is not in this layer/,
  },
  {
    name: "a whiteout named ..",
    entries: () => [{ name: "a/.wh...", body: "" }],
    message: /whiteout with no valid name/,
  },
  {
    name: "a GNU sparse file",
    entries: () => [{ name: "sparse", type: "S", body: "" }],
    message: /entry "sparse" has a tar type trun cannot unpack/,
  },
];

for (const c of HOSTILE) {
  Deno.test(`applyLayer() refuses ${c.name} and leaves nothing behind`, async () => {
    await withDir(async (dir) => {
      const victim = `${dir}/victim`;
      Deno.mkdirSync(victim);
      Deno.writeTextFileSync(`${victim}/secret`, "safe");
      const dest = `${dir}/layer.tmp-1`;
      await assert.rejects(
        unpack(c.entries(victim), dest),
        (e: Error) => {
          assert.ok(e instanceof LayerError, `${e.name}: ${e.message}`);
          assert.match(e.message, /^layer sha256:test: /);
          assert.match(e.message, c.message);
          return true;
        },
      );
      assert.ok(!exists(dest), "the destination is removed");
      assert.deepEqual([...Deno.readDirSync(victim)].map((e) => e.name), ["secret"]);
      assert.equal(text(`${victim}/secret`), "safe");
      assert.deepEqual(
        [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
        ["victim"],
        "nothing was written beside the layer",
      );
    });
  });
}

Deno.test("applyLayer() never follows a symlink that replaced a directory when it applies directory metadata", async () => {
  await withDir(async (dir) => {
    const victim = `${dir}/victim`;
    Deno.mkdirSync(victim, { mode: 0o700 });
    Deno.chmodSync(victim, 0o700);
    const dest = `${dir}/layer`;
    await unpack([
      { name: "d/", type: "5", mode: 0o777, mtime: 1 },
      { name: "d", type: "2", linkname: victim },
    ], dest);
    assert.equal(Deno.readLinkSync(`${dest}/d`), victim);
    assert.equal(Deno.statSync(victim).mode! & 0o777, 0o700);
    assert.notEqual(Deno.statSync(victim).mtime!.getTime(), 1000);
  });
});

Deno.test("applyLayer() replaces a symlink with a file instead of writing through it", async () => {
  await withDir(async (dir) => {
    const victim = `${dir}/victim-file`;
    Deno.writeTextFileSync(victim, "safe");
    const dest = `${dir}/layer`;
    await unpack([
      { name: "f", type: "2", linkname: victim },
      { name: "f", body: "new", mode: 0o600 },
    ], dest);
    assert.equal(text(victim), "safe");
    assert.ok(Deno.lstatSync(`${dest}/f`).isFile);
    assert.equal(text(`${dest}/f`), "new");
  });
});

Deno.test("applyLayer() makes absolute entry names relative to the layer", async () => {
  await withDir(async (dir) => {
    await unpack([{ name: "/usr/bin/tool", body: "t" }], `${dir}/l`);
    assert.equal(text(`${dir}/l/usr/bin/tool`), "t");
  });
});

Deno.test("applyLayer() reports corrupt and truncated layers as such and cleans up", async () => {
  const good = gzipSync(tar([{ name: "f", body: new Uint8Array(100_000).fill(1) }]));
  const cases: [string, Uint8Array][] = [
    ["truncated gzip", good.slice(0, good.length / 2)],
    ["bad gzip", new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7])],
    ["bad zstd", new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5, 6, 7, 8])],
    ["truncated zstd", zstdCompressSync(tar([{ name: "f", body: "x".repeat(9000) }])).slice(0, 40)],
    ["truncated tar", tar([{ name: "f", body: new Uint8Array(5000) }]).slice(0, 2048)],
    ["not a tar", enc.encode("x".repeat(2048))],
  ];
  for (const [name, bytes] of cases) {
    await withDir(async (dir) => {
      await assert.rejects(
        applyLayer(stream(bytes), `${dir}/l`, { what: "layer sha256:test", ...OWN }),
        (e: Error) =>
          e instanceof LayerError &&
          /^layer sha256:test: the layer data is corrupt: /.test(e.message),
        name,
      );
      assert.ok(!exists(`${dir}/l`), name);
    });
  }
});

function exists(p: string): boolean {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test("applyLayer() names the entry and the id when an owner is not mapped in the user namespace", async (t) => {
  // `unshare -U -r` maps only our own id to 0, so uid 1234 has no mapping.
  const repo = new URL("../../", import.meta.url).pathname;
  const code = `
    import tarStream from "tar-stream";
    import { applyLayer } from "${repo}lib/oci/layer_tar.ts";
    const pack = tarStream.pack();
    pack.entry({ name: "etc/", type: "directory", uid: 0, gid: 0 });
    pack.entry({ name: "etc/owned", uid: 1234, gid: 0 }, "x");
    pack.finalize();
    const base = Deno.makeTempDirSync();
    const dest = base + "/l";
    try {
      await applyLayer(ReadableStream.from(pack), dest, { what: "layer sha256:ns" });
      console.log("no error");
    } catch (e) {
      console.log(e.message);
      console.log("left behind: " + (() => { try { Deno.statSync(dest); return "yes"; } catch { return "no"; } })());
    } finally {
      Deno.removeSync(base, { recursive: true });
    }`;
  let out: Deno.CommandOutput | undefined;
  try {
    out = await new Deno.Command("unshare", {
      args: ["-U", "-r", Deno.execPath(), "eval", "--config", `${repo}deno.json`, code],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch {
    out = undefined;
  }
  const usable = out !== undefined && out.code === 0;
  await t.step({
    name: usable ? "in a single-id user namespace" : "skipped: unshare -U -r is not usable here",
    ignore: !usable,
    fn: () => {
      const text = new TextDecoder().decode(out!.stdout);
      assert.match(
        text,
        /layer sha256:ns: entry "etc\/owned": owner 1234:0 is not mapped in this user namespace \(EINVAL\)/,
      );
      assert.match(text, /left behind: no/);
    },
  });
});

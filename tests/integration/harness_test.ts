/**
 * Tests of the test harness itself: the host probes, the busybox and
 * hostile rootfs builders, the tar writer and fixture images (read back
 * with GNU tar, an independent reader), the registry and the uploader
 * (checked with raw fetch), and the sandboxed CLI runner.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MEDIA, pushFixtures, tarArchive } from "../../scripts/fixtures.ts";
import {
  type CapName,
  hostCapabilities,
  parseSubRange,
  requires,
  runInMappedUserns,
  subRanges,
  trunCommand,
  trunSandbox,
} from "../_harness/host.ts";
import { fixtureLayout, startRegistry } from "../_harness/registry.ts";
import {
  busyboxApplets,
  busyboxRootfs,
  FIXTURE_GROUP,
  FIXTURE_PASSWD,
  HOSTILE_KINDS,
  type HostileKind,
  hostileRootfs,
  isStaticElf,
  type TreeEntry,
} from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const dec = new TextDecoder();

/**
 * `requires()` without its root opt-in: the harness tests change nothing
 * on the host, so they also run as root without TRUN_TEST_ROOT=1.
 */
function harnessRequires(...names: CapName[]): { ignore: boolean; suffix: string } {
  return requires({ ...caps, rootOk: true }, ...names);
}

function sha256(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Lists a tar archive with GNU tar: "mode owner size name[ -> target]" per entry. */
async function gnuTarList(archive: Uint8Array, flags: string[] = []): Promise<string[]> {
  const child = new Deno.Command("tar", {
    args: ["--numeric-owner", "-tv", ...flags, "-f", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C", TZ: "UTC" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(archive);
  await w.close();
  const out = await child.output();
  assert.ok(out.success, `tar -t failed: ${dec.decode(out.stderr)}`);
  // "drwxr-xr-x 0/0 0 2023-11-14 22:13 data/" → "drwxr-xr-x 0/0 0 data/"
  return dec.decode(out.stdout).trim().split("\n").map((line) => {
    const f = line.split(/\s+/);
    return [f[0], f[1], f[2], ...f.slice(5)].join(" ");
  });
}

Deno.test({
  name: "hostCapabilities() finds everything CI sets up (CI only)",
  ignore: Deno.env.get("CI") !== "true",
  fn() {
    const wanted: (keyof typeof caps)[] = [
      "userns",
      "idmap",
      "overlayInUserns",
      "fuseOverlayfs",
      "pasta",
      "slirp4netns",
      "busybox",
      "dockerRegistry",
    ];
    if (!caps.isRoot) wanted.push("newuidmap", "subids");
    const missing = wanted.filter((k) => !caps[k]).map((k) => `${k}: ${caps.reasons[k]}`);
    assert.deepEqual(missing, [], "scripts/setup_host.sh should have provided these");
  },
});

Deno.test("requires() names every missing capability in the skip suffix", () => {
  const fake = {
    ...caps,
    userns: false,
    busybox: null,
    rootOk: true,
    reasons: { userns: "user namespaces disabled", busybox: "no busybox" },
  };
  assert.deepEqual(requires(fake, "userns", "busybox"), {
    ignore: true,
    suffix: " (skipped: user namespaces disabled; no busybox)",
  });
  assert.deepEqual(requires({ ...fake, userns: true, reasons: {} }, "userns"), {
    ignore: false,
    suffix: "",
  });
  const rootNoOptIn = { ...fake, isRoot: true, rootOk: false, reasons: { rootOk: "as root" } };
  assert.equal(requires(rootNoOptIn).ignore, true);
  assert.equal(
    requires({ ...fake, isRoot: true }, "rootless").suffix,
    " (skipped: needs a non-root user)",
  );
});

Deno.test("parseSubRange() takes the first range by user name or uid", () => {
  const text = "other:100000:65536\n1001:200000:1000\ntruntest:300000:65536\ntruntest:400000:10\n";
  assert.deepEqual(parseSubRange(text, "truntest", 1002), { start: 300000, count: 65536 });
  assert.deepEqual(parseSubRange(text, "nobody-here", 1001), { start: 200000, count: 1000 });
  assert.equal(parseSubRange(text, "x", 5), null);
  assert.equal(parseSubRange("bad:line\n", "bad", 1), null);
});

Deno.test("isStaticElf() accepts static busybox and rejects a dynamic binary", async () => {
  assert.equal(isStaticElf(await Deno.readFile("/usr/bin/env")), false);
  assert.equal(isStaticElf(new TextEncoder().encode("#!/bin/sh\n")), false);
  if (caps.busybox) assert.equal(isStaticElf(await Deno.readFile(caps.busybox)), true);
});

{
  const need = harnessRequires("busybox");
  Deno.test({
    name: `busyboxRootfs() builds a runnable minimal system${need.suffix}`,
    ignore: need.ignore,
    async fn() {
      const root = await busyboxRootfs();
      assert.equal(await busyboxRootfs(), root, "one shared copy per process");
      const bb = await Deno.stat(`${root}/bin/busybox`);
      assert.ok(bb.isFile && (bb.mode! & 0o111) !== 0);
      for (const applet of ["sh", "ls", "cat", "id", "mount"]) {
        assert.equal(await Deno.readLink(`${root}/bin/${applet}`), "busybox");
      }
      const applets = await busyboxApplets(caps.busybox!);
      for (const a of applets) assert.ok((await Deno.lstat(`${root}/bin/${a}`)).isSymlink, a);
      assert.equal(await Deno.readTextFile(`${root}/etc/passwd`), FIXTURE_PASSWD);
      assert.equal(await Deno.readTextFile(`${root}/etc/group`), FIXTURE_GROUP);
      assert.match(FIXTURE_PASSWD, /^app:x:1000:1000:app:\/home\/app:/m);
      assert.match(FIXTURE_GROUP, /^wheel:x:10:app$/m);
      assert.match(FIXTURE_GROUP, /^audio:x:29:app$/m);
      for (const d of ["proc", "sys", "dev", "tmp", "root", "home/app", "etc", "usr/bin"]) {
        assert.ok((await Deno.stat(`${root}/${d}`)).isDirectory, d);
      }
      assert.equal((await Deno.stat(`${root}/tmp`)).mode! & 0o7777, 0o1777);
      if (caps.isRoot) {
        const app = await Deno.stat(`${root}/home/app`);
        assert.deepEqual([app.uid, app.gid], [1000, 1000]);
      }
      // The shell runs from the rootfs (static: no host libraries needed).
      const out = await new Deno.Command(`${root}/bin/sh`, {
        args: ["-c", "echo hi; ls /"],
      }).output();
      assert.ok(dec.decode(out.stdout).startsWith("hi\n"));
    },
  });

  Deno.test({
    name: `busyboxRootfs(dir) builds into the given directory${need.suffix}`,
    ignore: need.ignore,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "trun-harness-test-" });
      try {
        assert.equal(await busyboxRootfs(`${dir}/r`), `${dir}/r`);
        assert.ok((await Deno.lstat(`${dir}/r/bin/sh`)).isSymlink);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name: `hostileRootfs() turns each mount target into an escaping symlink${need.suffix}`,
    ignore: need.ignore,
    async fn() {
      for (const [kind, { path, target }] of Object.entries(HOSTILE_KINDS)) {
        const root = await hostileRootfs(kind as HostileKind);
        assert.equal(await Deno.readLink(`${root}/${path}`), target, kind);
        assert.ok((await Deno.lstat(`${root}/bin/busybox`)).isFile, kind);
      }
      const pts = await hostileRootfs("devpts-symlink");
      assert.ok((await Deno.lstat(`${pts}/dev`)).isDirectory);
    },
  });
}

Deno.test("tarArchive() writes ustar GNU tar reads, with PAX for long names", async () => {
  const long = `${"d".repeat(120)}/${"f".repeat(90)}`; // fits the ustar prefix split
  const longer = "x".repeat(150); // no slash to split at: needs PAX
  const entries: TreeEntry[] = [
    { type: "dir", path: "a", mode: 0o755, uid: 0, gid: 0 },
    { type: "file", path: "a/f", mode: 0o4750, uid: 33, gid: 1000, data: new Uint8Array(1000) },
    { type: "hardlink", path: "a/h", target: "a/f" },
    { type: "symlink", path: "a/s", target: "/".repeat(1) + "t".repeat(130) },
    { type: "dir", path: long.split("/")[0]!, mode: 0o700 },
    { type: "file", path: long, mode: 0o644, data: new Uint8Array(3) },
    { type: "file", path: longer, mode: 0o600, data: new TextEncoder().encode("hi") },
  ];
  const tar = tarArchive(entries);
  assert.equal(tar.length % 512, 0);
  const list = await gnuTarList(tar);
  assert.deepEqual(list, [
    "drwxr-xr-x 0/0 0 a/",
    "-rwsr-x--- 33/1000 1000 a/f",
    "hrwsr-x--- 0/0 0 a/h link to a/f",
    `lrwxrwxrwx 0/0 0 a/s -> /${"t".repeat(130)}`,
    `drwx------ 0/0 0 ${"d".repeat(120)}/`,
    `-rw-r--r-- 0/0 3 ${long}`,
    `-rw------- 0/0 2 ${longer}`,
  ]);
});

{
  const need = harnessRequires("dockerRegistry", "busybox");
  Deno.test({
    name: `fixtures are served by docker-registry with their media types and digests${need.suffix}`,
    ignore: need.ignore,
    async fn() {
      const fixtures = await fixtureLayout();
      const reg = await startRegistry();
      try {
        const pushed = await pushFixtures(fixtures.layoutDir, reg.host);
        assert.deepEqual(
          pushed.map((p) => p.ref).sort(),
          [
            "trun-fixtures/big:latest",
            "trun-fixtures/busybox:docker",
            "trun-fixtures/busybox:latest",
            "trun-fixtures/layered:latest",
            "trun-fixtures/multiarch:latest",
            "trun-fixtures/owners:latest",
            "trun-fixtures/zstd:latest",
          ],
        );
        const accept = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerManifest].join(", ");
        const getManifest = async (repo: string, ref: string) => {
          const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
            headers: { accept },
          });
          const body = new Uint8Array(await res.arrayBuffer());
          assert.equal(res.status, 200, `${repo}:${ref}`);
          return { res, body, doc: JSON.parse(dec.decode(body)) };
        };
        const getBlob = async (repo: string, digest: string) => {
          const res = await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`);
          const body = new Uint8Array(await res.arrayBuffer());
          assert.equal(res.status, 200, `${repo}@${digest}`);
          assert.equal(sha256(body), digest);
          return body;
        };

        const docs: Record<
          string,
          {
            mediaType: string;
            layers: { mediaType: string; digest: string; size: number }[];
            config: { digest: string };
          }
        > = {};
        for (const img of pushed) {
          const { res, body, doc } = await getManifest(img.repository, img.tag);
          assert.equal(res.headers.get("content-type"), img.mediaType, img.ref);
          assert.equal(res.headers.get("docker-content-digest"), img.digest, img.ref);
          assert.equal(sha256(body), img.digest, img.ref);
          assert.equal(doc.mediaType, img.mediaType, img.ref);
          docs[img.ref] = doc;
          if (img.mediaType === MEDIA.ociIndex) continue;
          for (const blob of [doc.config, ...doc.layers]) {
            const head = await fetch(`${reg.url}/v2/${img.repository}/blobs/${blob.digest}`, {
              method: "HEAD",
            });
            await head.body?.cancel();
            assert.equal(head.status, 200, `${img.ref} ${blob.digest}`);
            assert.equal(Number(head.headers.get("content-length")), blob.size);
          }
        }

        // busybox: one gzip layer; :docker has the same layer with Docker media types.
        const bb = docs["trun-fixtures/busybox:latest"]!;
        const bbDocker = docs["trun-fixtures/busybox:docker"]!;
        assert.deepEqual(bb.layers.map((l) => l.mediaType), [MEDIA.ociLayerGzip]);
        assert.deepEqual(bbDocker.layers.map((l) => l.mediaType), [MEDIA.dockerLayerGzip]);
        assert.equal(bbDocker.layers[0]!.digest, bb.layers[0]!.digest);
        const config = JSON.parse(
          dec.decode(await getBlob("trun-fixtures/busybox", bb.config.digest)),
        );
        assert.deepEqual(config.config.Cmd, ["sh"]);
        assert.equal(config.os, "linux");
        assert.equal(config.rootfs.diff_ids.length, 1);
        const bbList = await gnuTarList(
          await getBlob("trun-fixtures/busybox", bb.layers[0]!.digest),
          ["-z"],
        );
        assert.ok(bbList.includes("lrwxrwxrwx 0/0 0 bin/sh -> busybox"));
        assert.ok(bbList.includes("drwxrwxrwt 0/0 0 tmp/"));

        // layered: whiteouts and the opaque marker in the top layer.
        const layered = docs["trun-fixtures/layered:latest"]!;
        assert.equal(layered.layers.length, 3);
        const topList = await gnuTarList(
          await getBlob("trun-fixtures/layered", layered.layers[2]!.digest),
          ["-z"],
        );
        for (const name of ["data/.wh.a", "data/.wh.gone", "data/dir/.wh..wh..opq", "data/dir/y"]) {
          assert.ok(topList.some((l) => l.endsWith(` ${name}`)), name);
        }

        // multiarch: an index of three platforms, each manifest fetchable by digest.
        const index = docs["trun-fixtures/multiarch:latest"] as unknown as {
          manifests: { digest: string; mediaType: string; platform: Record<string, string> }[];
        };
        assert.deepEqual(
          index.manifests.map((m) => Object.values(m.platform).join("/")),
          ["amd64/linux", "arm64/linux", "arm/linux/v7"],
        );
        for (const m of index.manifests) {
          const { res, body } = await getManifest("trun-fixtures/multiarch", m.digest);
          assert.equal(res.headers.get("content-type"), m.mediaType);
          assert.equal(sha256(body), m.digest);
        }

        // zstd: both layers zstd.
        const zstd = docs["trun-fixtures/zstd:latest"]!;
        assert.deepEqual(zstd.layers.map((l) => l.mediaType), [
          MEDIA.ociLayerZstd,
          MEDIA.ociLayerZstd,
        ]);
        const zList = await gnuTarList(
          await getBlob("trun-fixtures/zstd", zstd.layers[1]!.digest),
          ["--zstd"],
        );
        assert.ok(zList.includes("-rw-r--r-- 0/0 16 zstd/hello"));

        // owners: ids 0, 33, 1000, set-id bits, symlinks, a hard link.
        const owners = docs["trun-fixtures/owners:latest"]!;
        const oList = await gnuTarList(
          await getBlob("trun-fixtures/owners", owners.layers[1]!.digest),
          ["-z"],
        );
        for (
          const line of [
            "-rw-r----- 33/33 11 owners/www/index.html",
            "-rw------- 1000/1000 4 owners/app/data",
            "-rwsr-xr-x 0/0 13 owners/setuid",
            "-rwxr-sr-x 0/33 13 owners/setgid",
            "lrwxrwxrwx 0/0 0 owners/link -> root-file",
            "hrw-r--r-- 0/0 0 owners/hardlink link to owners/root-file",
          ]
        ) assert.ok(oList.includes(line), line);

        // big: base plus four layers, 60-100 MB uncompressed.
        const big = docs["trun-fixtures/big:latest"]!;
        assert.equal(big.layers.length, 5);
        const bigConfig = JSON.parse(
          dec.decode(await getBlob("trun-fixtures/big", big.config.digest)),
        );
        assert.equal(bigConfig.rootfs.diff_ids.length, 5);
      } finally {
        await reg.stop();
      }
      // stop() removed the storage and closed the port.
      await assert.rejects(Deno.stat(reg.storageDir), Deno.errors.NotFound);
      await assert.rejects(fetch(`${reg.url}/v2/`));
    },
  });
}

Deno.test("trunCommand() runs in the sandbox with stdin and env, and kills on timeout", async () => {
  await using sb = await trunSandbox();
  const entry = `${sb.dir}/entry.ts`;
  // A duration no other test sleeps for (files run in parallel), to find it afterwards.
  const nap = `${300000 + Math.floor(Math.random() * 600000)}`;
  await Deno.writeTextFile(
    entry,
    [
      `const input = await new Response(Deno.stdin.readable).text();`,
      `if (Deno.args[0] === "hang") {`,
      `  new Deno.Command("sleep", { args: ["${nap}"] }).spawn();`,
      `  await new Promise(() => setInterval(() => {}, 1000));`,
      `}`,
      `await Deno.stdout.write(new TextEncoder().encode(`,
      '  `${Deno.env.get("TRUN_ROOT")} ${Deno.env.get("EXTRA")} ${input} ${Deno.args.join(",")}`));',
      `Deno.exit(3);`,
    ].join("\n"),
  );
  const r = await trunCommand(["a", "b"], {
    sandbox: sb,
    entry,
    stdin: "in",
    env: { EXTRA: "x" },
  });
  assert.equal(r.code, 3);
  assert.equal(r.stdout, `${sb.dir}/root x in a,b`);
  assert.equal(r.timedOut, false);

  const hang = await sb.run(["hang"], { entry, timeoutMs: 1000 });
  assert.equal(hang.timedOut, true);
  assert.equal(hang.signal, "SIGKILL");
  // The sleep it started was in its process group and died with it.
  const ps = await new Deno.Command("pgrep", { args: ["-f", `^sleep ${nap}$`] }).output();
  assert.equal(dec.decode(ps.stdout).trim(), "", "a child of the timed-out command survived");
});

{
  const need = harnessRequires("idmap", "rootless");
  Deno.test({
    name: `trunSandbox() cleanup removes files owned by subordinate ids${need.suffix}`,
    ignore: need.ignore,
    async fn() {
      const sb = await trunSandbox();
      const ranges = await subRanges();
      const out = await runInMappedUserns([
        "/bin/sh",
        "-c",
        'mkdir "$0/d" && touch "$0/d/f" && chown -R 1000:1000 "$0/d" && chmod 0 "$0/d"',
        sb.dir,
      ], ranges!);
      assert.ok(out.ok, out.stderr);
      assert.equal((await Deno.stat(`${sb.dir}/d`)).uid, ranges!.uid.start + 999);
      await sb.cleanup();
      await assert.rejects(Deno.stat(sb.dir), Deno.errors.NotFound);
    },
  });
}

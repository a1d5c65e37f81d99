// Each layer kept once: after a pull the store holds the unpacked layers and
// their tar-split records, not the compressed blobs. `save` rebuilds the
// exact tars (their digests are the diff ids), `push` mounts a layer from
// the repository it came from or compresses it again, containers still run,
// and a killed `save` or `push` leaves no file behind.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  hostCapabilities,
  MAIN_TS,
  requires,
  type TrunResult,
  trunSandbox,
} from "../_harness/host.ts";
import { startFixtureRegistry, startRegistry } from "../_harness/registry.ts";
import { loadIdMapping } from "../../lib/runtime/idmap.ts";

const caps = await hostCapabilities();
const mapping = loadIdMapping();
const helper = !caps.isRoot && mapping.mode === "subordinate";
const gate = requires(caps, "dockerRegistry", ...(helper ? ["idmap" as const] : []));
const runGate = requires(caps, "userns", "dockerRegistry", ...(helper ? ["idmap" as const] : []));

function test(name: string, fn: () => Promise<void>, g = gate) {
  Deno.test({ name: name + g.suffix, ignore: g.ignore, fn });
}

const LAYERED = "trun-fixtures/layered:latest";
const BIG = "trun-fixtures/big:latest";
type Sandbox = Awaited<ReturnType<typeof trunSandbox>>;

function ok(r: TrunResult, what = "trun"): void {
  assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

async function inspect(sb: Sandbox, ref: string) {
  const r = await sb.run(["image", "inspect", ref]);
  ok(r, `image inspect ${ref}`);
  return (JSON.parse(r.stdout) as {
    Id: string;
    RootFS: { Layers: string[] };
    GraphDriver: { Data: { LowerDir: string } };
  }[])[0]!;
}

/** Names in a store's blob directory (configs; layer blobs only when kept). */
function blobNames(sb: Sandbox): string[] {
  return [...Deno.readDirSync(`${sb.env.TRUN_ROOT!}/blobs/sha256`)].map((e) => e.name).sort();
}

/** Apparent bytes under `path` (`du -sb`), as the user running the test can see them. */
async function du(path: string): Promise<number> {
  const out = await new Deno.Command("du", { args: ["-sb", path], stderr: "null" }).output();
  return Number(new TextDecoder().decode(out.stdout).split("\t")[0]);
}

/** Every file of a tar, by name (the archive is small enough to read whole). */
async function tarFiles(path: string): Promise<Map<string, Uint8Array>> {
  const { default: tarStream } = await import("tar-stream");
  const extract = tarStream.extract();
  extract.end(await Deno.readFile(path));
  const out = new Map<string, Uint8Array>();
  for await (const e of extract) {
    const parts: Uint8Array[] = [];
    for await (const c of e) parts.push(c as Uint8Array);
    out.set(e.header.name, new Uint8Array(await new Blob(parts as BlobPart[]).arrayBuffer()));
  }
  return out;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

test("pull keeps each layer once: records beside the layers, no layer blobs, a smaller store", async () => {
  await using reg = await startFixtureRegistry({ images: [LAYERED] });
  await using sb = await trunSandbox();
  await using kept = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/layered`;
  ok(await sb.run(["pull", "-q", name]));
  ok(await kept.run(["pull", "-q", name], { env: { TRUN_KEEP_BLOBS: "1" } }));
  const id = (await inspect(sb, name)).Id;
  assert.deepEqual(blobNames(sb), [id.slice(7)], "only the config blob stays");
  assert.equal(blobNames(kept).length, 4, "TRUN_KEEP_BLOBS=1 keeps the three layer blobs");
  const records = [...Deno.readDirSync(`${sb.env.TRUN_ROOT}/layers`)]
    .filter((e) => e.name.endsWith(".tar-split.gz"));
  assert.equal(records.length, 3);
  const saved = (await du(`${kept.env.TRUN_ROOT}/blobs`)) - (await du(`${sb.env.TRUN_ROOT}/blobs`));
  assert.ok(saved > 500_000, `the layer blobs took ${saved} bytes`);
  // A second pull downloads nothing: the layers are there.
  const again = await sb.run(["pull", name]);
  ok(again);
  assert.match(again.stdout, /Image is up to date/);
  assert.deepEqual(blobNames(sb), [id.slice(7)]);
});

test("save rebuilds each layer's exact tar: digests are the diff ids; load brings the image back", async () => {
  await using reg = await startFixtureRegistry({ images: [LAYERED] });
  await using sb = await trunSandbox();
  await using other = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/layered`;
  ok(await sb.run(["pull", "-q", name]));
  const before = await inspect(sb, name);
  const archive = `${sb.dir}/layered.tar`;
  ok(await sb.run(["save", "-o", archive, name]));
  const files = await tarFiles(archive);
  const manifest = JSON.parse(new TextDecoder().decode(files.get("manifest.json")!)) as {
    Layers: string[];
  }[];
  assert.deepEqual(
    manifest[0]!.Layers,
    before.RootFS.Layers.map((d) => `blobs/sha256/${d.slice(7)}`),
  );
  for (const [path, bytes] of files) {
    if (path.startsWith("blobs/")) assert.equal(sha256(bytes), path.slice(6).replace("/", ":"));
  }
  const loaded = await other.run(["load", "-i", archive]);
  ok(loaded, "load");
  const after = await inspect(other, name);
  assert.equal(after.Id, before.Id);
  assert.deepEqual(after.RootFS.Layers, before.RootFS.Layers);
  const top = after.GraphDriver.Data.LowerDir.split(":")[0]!;
  assert.ok(Deno.lstatSync(`${top}/data/a`).isCharDevice, "whiteouts survive the trip");
});

test("save names the layer and the file when the unpacked layer was changed", async () => {
  await using reg = await startFixtureRegistry({ images: [LAYERED] });
  await using sb = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/layered`;
  ok(await sb.run(["pull", "-q", name]));
  const top = (await inspect(sb, name)).GraphDriver.Data.LowerDir.split(":")[0]!;
  // Owned by the image's root: the caller itself, rootless.
  Deno.writeTextFileSync(`${top}/data/dir/y`, "changed\n");
  const r = await sb.run(["save", "-o", `${sb.dir}/out.tar`, name]);
  assert.equal(r.code, 125, r.stderr);
  assert.match(
    r.stderr,
    /Layer sha256:[0-9a-f]{64} cannot be rebuilt: "data\/dir\/y" has 8 bytes instead of 2; the unpacked layer was changed: remove the image and pull it again/,
  );
  assert.deepEqual(
    [...Deno.readDirSync(sb.dir)].map((e) => e.name).sort().includes("out.tar"),
    false,
  );
});

test("push without a mountable source compresses again (gzip, zstd) and the image pulls back", async () => {
  await using reg = await startFixtureRegistry({ images: [LAYERED] });
  await using target = await startRegistry();
  await using sb = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/layered`;
  ok(await sb.run(["pull", "-q", name]));
  const before = await inspect(sb, name);
  for (const format of ["gzip", "zstd"]) {
    const ref = `${target.host}/copies/${format}:1`;
    ok(await sb.run(["tag", name, ref]));
    const r = await sb.run(["push", "--compression-format", format, ref]);
    ok(r, `push ${format}`);
    assert.equal(lines(r.stdout).filter((l) => / Pushed$/.test(l)).length, 3, r.stdout);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(r.stdout)![1]!;
    const manifest = JSON.parse(
      await (await fetch(`${target.url}/v2/copies/${format}/manifests/${digest}`, {
        headers: {
          accept:
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        },
      })).text(),
    ) as { layers: { mediaType: string }[] };
    assert.ok(
      manifest.layers.every((l) => l.mediaType.endsWith(format === "gzip" ? "gzip" : "+zstd")),
      JSON.stringify(manifest),
    );
    // Compressed again the same way, the layers are found under their new digests.
    const again = await sb.run(["push", "--compression-format", format, ref]);
    ok(again, `push ${format} again`);
    assert.equal(
      lines(again.stdout).filter((l) => / Layer already exists$/.test(l)).length,
      3,
      again.stdout,
    );
    assert.match(again.stdout, new RegExp(`digest: ${digest} `));
    await using back = await trunSandbox();
    ok(await back.run(["pull", "-q", ref]), `pull back ${format}`);
    const pulled = await inspect(back, ref);
    assert.equal(pulled.Id, before.Id);
    assert.deepEqual(pulled.RootFS.Layers, before.RootFS.Layers);
  }
  const bad = await sb.run([
    "push",
    "--compression-format",
    "lz4",
    `${target.host}/copies/gzip:1`,
  ]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /unsupported compression format "lz4"/);
});

test("a container runs from an image whose layer blobs were dropped", async () => {
  await using reg = await startFixtureRegistry({ images: [LAYERED] });
  await using sb = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/layered`;
  ok(await sb.run(["pull", "-q", name]));
  assert.equal(blobNames(sb).length, 1);
  const r = await sb.run(["run", "--rm", name, "cat", "/data/dir/y"]);
  ok(r, "run");
  assert.equal(r.stdout, "y\n");
}, runGate);

/** Spawns trun in its own process group, with the sandbox's environment. */
function spawnTrun(sb: Sandbox, args: string[]): Deno.ChildProcess {
  return new Deno.Command("setsid", {
    args: ["--wait", Deno.execPath(), "run", "-A", "--quiet", MAIN_TS, ...args],
    env: { NO_COLOR: "1", ...sb.env },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Descriptor targets of the processes that run with this sandbox's store. */
function openFiles(sb: Sandbox): string[] {
  const needle = `\0TRUN_ROOT=${sb.env.TRUN_ROOT}\0`;
  const out: string[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const env = `\0${
        new TextDecoder("latin1").decode(Deno.readFileSync(`/proc/${e.name}/environ`))
      }`;
      if (!env.includes(needle)) continue;
      for (const fd of Deno.readDirSync(`/proc/${e.name}/fd`)) {
        out.push(Deno.readLinkSync(`/proc/${e.name}/fd/${fd.name}`));
      }
    } catch {
      // Gone, or not ours to read.
    }
  }
  return out;
}

async function killWhen(child: Deno.ChildProcess, sb: Sandbox, open: RegExp): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!openFiles(sb).some((f) => open.test(f))) {
    if (Date.now() > deadline) throw new Error(`no process of the sandbox opened ${open}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  Deno.kill(-child.pid, "SIGKILL");
  await child.status;
}

/** Every path under `dir` whose name looks temporary. */
function leftovers(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = `${d}/${e.name}`;
      if (/\.tmp-|\.scratch-|\.partial$|\.tar-split$/.test(e.name)) out.push(p);
      if (e.isDirectory && !/^[0-9a-f]{64}$/.test(e.name)) walk(p);
    }
  };
  walk(dir);
  return out;
}

test("a killed save or push leaves no file behind", async () => {
  await using reg = await startFixtureRegistry({ images: [BIG] });
  await using sb = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/big`;
  ok(await sb.run(["pull", "-q", name], { timeoutMs: 120_000 }));
  const outDir = `${sb.dir}/out`;
  Deno.mkdirSync(outDir);
  // The archive is an unnamed file (O_TMPFILE) until it is complete.
  await killWhen(
    spawnTrun(sb, ["save", "-o", `${outDir}/big.tar`, name]),
    sb,
    new RegExp(`^${outDir}/#\\d+ \\(deleted\\)$`),
  );
  assert.deepEqual([...Deno.readDirSync(outDir)], [], "no archive, no temporary file");

  // A registry that takes the upload but never answers: push is killed
  // while sending a layer it compressed again into an unnamed scratch file.
  let putSeen = false;
  const ac = new AbortController();
  const stub = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/v2/") return new Response("{}");
      if (req.method === "HEAD") return new Response(null, { status: 404 });
      if (req.method === "POST") {
        return new Response(null, { status: 202, headers: { location: "/upload/1" } });
      }
      if (req.method === "PUT") {
        putSeen = true;
        await new Promise(() => {});
      }
      return new Response(null, { status: 404 });
    },
  );
  try {
    const host = `127.0.0.1:${stub.addr.port}`;
    ok(await sb.run(["tag", name, `${host}/stalled/big:1`]));
    const child = spawnTrun(sb, ["push", `${host}/stalled/big:1`]);
    const deadline = Date.now() + 60_000;
    while (!putSeen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(putSeen, "push reached the upload");
    assert.ok(
      openFiles(sb).some((f) => f.includes("/blobs/.scratch-") && f.endsWith(" (deleted)")),
      "the recompressed layer is an unnamed file",
    );
    Deno.kill(-child.pid, "SIGKILL");
    await child.status;
  } finally {
    ac.abort();
    await stub.finished;
  }
  assert.deepEqual(leftovers(sb.env.TRUN_ROOT!), [], "nothing temporary in the store");
});

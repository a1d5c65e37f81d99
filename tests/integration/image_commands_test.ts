// The image commands end to end: `trun pull|push|images|rmi|tag|history|
// inspect|save|load|login|logout|image …` run as a user would, against a
// real registry on 127.0.0.1 filled with the fixture images, each test in
// its own store. Unpacked layers are checked on disk through `image
// inspect`'s GraphDriver.LowerDir: whiteouts, opaque directories, and file
// owners as root, as a rootless user with subordinate ids (mapped host ids,
// unpacked in trun's user namespace helper) and without them (squashed).
import assert from "node:assert/strict";
import {
  findTool,
  hostCapabilities,
  MAIN_TS,
  requires,
  type TrunResult,
  trunSandbox,
} from "../_harness/host.ts";
import { type FixtureRegistry, startFixtureRegistry } from "../_harness/registry.ts";
import { loadIdMapping, mapToHost } from "../../lib/runtime/idmap.ts";
import { lgetxattr } from "../../ffi/fs.ts";

const caps = await hostCapabilities();
const mapping = loadIdMapping();
// Rootless with subordinate ids, pull/rmi/load run in trun's user namespace
// helper, which needs working newuidmap/newgidmap.
const helper = !caps.isRoot && mapping.mode === "subordinate";
const gate = requires(caps, "dockerRegistry", ...(helper ? ["idmap" as const] : []));
const scriptTool = await findTool("script");
// Running a container needs user namespaces on top.
const runGate = requires(
  caps,
  "userns",
  "dockerRegistry",
  ...(helper ? ["idmap" as const] : []),
);

function test(name: string, fn: () => Promise<void>, extra?: { ignore: boolean; suffix: string }) {
  const g = extra && extra.ignore ? extra : gate;
  Deno.test({ name: name + g.suffix, ignore: g.ignore, fn });
}

const BUSYBOX = "trun-fixtures/busybox:latest";
const LAYERED = "trun-fixtures/layered:latest";

/** The registry's digest of a fixture (its top manifest or index). */
function fixtureDigest(reg: FixtureRegistry, ref: string): string {
  const image = reg.fixtures.images.find((i) => i.ref === ref);
  assert.ok(image, `no fixture "${ref}"`);
  return image.digest;
}

function ok(r: TrunResult, what = "trun"): void {
  assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

interface Inspected {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
  Variant?: string;
  Os: string;
  Size: number;
  Config: Record<string, unknown>;
  GraphDriver: { Name: string; Data: { LowerDir: string } };
  RootFS: { Type: string; Layers: string[] };
}

type Sandbox = Awaited<ReturnType<typeof trunSandbox>>;

async function inspect(sb: Sandbox, ref: string): Promise<Inspected> {
  const r = await sb.run(["image", "inspect", ref]);
  ok(r, `image inspect ${ref}`);
  const doc = JSON.parse(r.stdout) as Inspected[];
  assert.equal(doc.length, 1);
  return doc[0]!;
}

/** The unpacked layer directories of an image, top first. */
async function layerDirs(sb: Sandbox, ref: string): Promise<string[]> {
  return (await inspect(sb, ref)).GraphDriver.Data.LowerDir.split(":");
}

async function pull(sb: Sandbox, ref: string, ...flags: string[]): Promise<TrunResult> {
  const r = await sb.run(["pull", ...flags, ref]);
  ok(r, `pull ${ref}`);
  return r;
}

/** The host uid a file of container uid `id` has in the store. */
function storedOwner(id: number): number {
  if (caps.isRoot) return id;
  if (mapping.mode === "subordinate") return mapToHost(id, mapping.uid)!;
  return Deno.uid()!;
}

/** Same for gids. */
function storedGroup(id: number): number {
  if (caps.isRoot) return id;
  if (mapping.mode === "subordinate") return mapToHost(id, mapping.gid)!;
  return Deno.gid()!;
}

test("pull: Docker's plain lines, the digest, the reference; a second pull is up to date", async () => {
  await using reg = await startFixtureRegistry({ images: [BUSYBOX] });
  await using sb = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/busybox`;
  const first = await pull(sb, name);
  const out = lines(first.stdout);
  assert.ok(!first.stdout.includes("\x1b"), "no cursor movement without a terminal");
  assert.equal(out[0], "Using default tag: latest");
  assert.equal(out[1], "latest: Pulling from trun-fixtures/busybox");
  const layer = /^([0-9a-f]{12}): /.exec(out[2] ?? "")?.[1];
  assert.ok(layer, first.stdout);
  for (const state of ["Pulling fs layer", "Download complete", "Pull complete"]) {
    assert.ok(out.includes(`${layer}: ${state}`), `"${state}" missing:\n${first.stdout}`);
  }
  assert.deepEqual(out.slice(-3), [
    `Digest: ${fixtureDigest(reg, BUSYBOX)}`,
    `Status: Downloaded newer image for ${name}:latest`,
    `${name}:latest`,
  ]);

  const second = await pull(sb, `${name}:latest`);
  assert.deepEqual(lines(second.stdout), [
    "latest: Pulling from trun-fixtures/busybox",
    `Digest: ${fixtureDigest(reg, BUSYBOX)}`,
    `Status: Image is up to date for ${name}:latest`,
    `${name}:latest`,
  ]);
});

test("pull -q prints only the fully qualified reference", async () => {
  await using reg = await startFixtureRegistry({ images: ["trun-fixtures/busybox:docker"] });
  await using sb = await trunSandbox();
  const r = await pull(sb, `${reg.host}/trun-fixtures/busybox:docker`, "-q");
  assert.equal(r.stdout, `${reg.host}/trun-fixtures/busybox:docker\n`);
  // A Docker schema 2 image: recorded and unpacked like an OCI one.
  const info = await inspect(sb, `${reg.host}/trun-fixtures/busybox:docker`);
  assert.equal(info.RootFS.Layers.length, 1);
  assert.ok((await Deno.stat(`${info.GraphDriver.Data.LowerDir}/bin/busybox`)).isFile);
});

test(
  "pull on a terminal redraws layer lines in place",
  async () => {
    await using reg = await startFixtureRegistry({ images: [BUSYBOX] });
    await using sb = await trunSandbox();
    const ref = `${reg.host}/trun-fixtures/busybox`;
    // script(1) gives trun a pseudo-terminal as stdout.
    const cmd = `${Deno.execPath()} run -A --quiet ${MAIN_TS} pull ${ref}`;
    const out = await new Deno.Command(scriptTool!, {
      args: ["-qefc", cmd, "/dev/null"],
      env: { ...sb.env, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
    // Escape characters made visible, for readable patterns.
    const shown = text.replaceAll("\x1b", "<ESC>");
    assert.match(shown, /<ESC>\[2K\r[0-9a-f]{12}: Pull complete \r/);
    assert.match(shown, /<ESC>\[\d+A/, "the cursor moves up to redraw");
    assert.match(text, /Status: Downloaded newer image for /);
  },
  scriptTool === null ? { ignore: true, suffix: " (skipped: no script(1))" } : undefined,
);

test("pull --platform picks that entry of a multi-platform index", async () => {
  await using reg = await startFixtureRegistry({ images: ["trun-fixtures/multiarch:latest"] });
  await using sb = await trunSandbox();
  const ref = `${reg.host}/trun-fixtures/multiarch`;
  await pull(sb, ref, "--platform", "linux/arm64");
  const arm = await inspect(sb, ref);
  assert.equal(arm.Architecture, "arm64");
  const top = arm.GraphDriver.Data.LowerDir.split(":")[0]!;
  assert.equal(await Deno.readTextFile(`${top}/etc/fixture-platform`), "linux/arm64\n");

  await pull(sb, ref, "--platform", "linux/arm/v7");
  const v7 = await inspect(sb, ref);
  assert.equal(v7.Architecture, "arm");
  assert.equal(v7.Variant, "v7");

  const bad = await sb.run(["pull", "--platform", "linux/s390x", ref]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /linux\/s390x/);
  assert.match(bad.stderr, /linux\/arm64/, "the message lists what the image offers");
});

test("pull of zstd layers unpacks them", async () => {
  await using reg = await startFixtureRegistry({ images: ["trun-fixtures/zstd:latest"] });
  await using sb = await trunSandbox();
  const ref = `${reg.host}/trun-fixtures/zstd`;
  await pull(sb, ref);
  const [top, base] = await layerDirs(sb, ref);
  assert.equal(await Deno.readTextFile(`${top}/zstd/hello`), "hello from zstd\n");
  assert.ok((await Deno.stat(`${base}/bin/busybox`)).isFile);
});

test("pull of a layered image keeps whiteouts and opaque directories in the top layer", async () => {
  await using reg = await startFixtureRegistry({ images: [LAYERED] });
  await using sb = await trunSandbox();
  const ref = `${reg.host}/trun-fixtures/layered`;
  await pull(sb, ref);
  const [top, middle] = await layerDirs(sb, ref);
  for (const gone of ["data/a", "data/gone"]) {
    const st = await Deno.lstat(`${top}/${gone}`);
    assert.ok(st.isCharDevice, `${gone} is a whiteout character device`);
    assert.equal(st.rdev, 0, `${gone} is device 0/0`);
  }
  assert.equal(await Deno.readTextFile(`${top}/data/dir/y`), "y\n");
  const opaque = lgetxattr(`${top}/data/dir`, "user.overlay.opaque");
  assert.equal(opaque && new TextDecoder().decode(opaque), "y");
  // The layer below still has what the top layer hides.
  assert.equal(await Deno.readTextFile(`${middle}/data/a`), "a\n");
  assert.equal(await Deno.readTextFile(`${middle}/data/dir/x`), "x\n");
});

test("pull keeps file owners and modes (mapped or squashed when rootless)", async () => {
  await using reg = await startFixtureRegistry({ images: ["trun-fixtures/owners:latest"] });
  await using sb = await trunSandbox();
  const ref = `${reg.host}/trun-fixtures/owners`;
  await pull(sb, ref);
  const [top] = await layerDirs(sb, ref);
  const cases: [string, number, number, number][] = [
    ["owners/root-file", 0, 0, 0o644],
    ["owners/www", 33, 33, 0o750],
    ["owners/app", 1000, 1000, 0o700],
    ["owners/shared", 1000, 33, 0o2775],
    ["owners/setuid", 0, 0, 0o4755],
    ["owners/sticky", 0, 0, 0o1777],
  ];
  for (const [path, uid, gid, mode] of cases) {
    const st = await Deno.lstat(`${top}/${path}`);
    assert.equal(st.uid, storedOwner(uid), `${path} uid`);
    assert.equal(st.gid, storedGroup(gid), `${path} gid`);
    assert.equal(st.mode! & 0o7777, mode, `${path} mode`);
  }
  const link = await Deno.lstat(`${top}/owners/app-link`);
  assert.ok(link.isSymlink);
  assert.equal(link.uid, storedOwner(1000));
});

test("images: Docker's table, --digests, --format json, -q and a reference filter", async () => {
  await using reg = await startFixtureRegistry({ images: [BUSYBOX, LAYERED] });
  await using sb = await trunSandbox();
  const busybox = `${reg.host}/trun-fixtures/busybox`;
  const layered = `${reg.host}/trun-fixtures/layered`;
  await pull(sb, busybox);
  await pull(sb, layered);
  const ids = {
    [busybox]: (await inspect(sb, busybox)).Id,
    [layered]: (await inspect(sb, layered)).Id,
  };

  const table = await sb.run(["images"]);
  ok(table);
  const [header, ...rows] = lines(table.stdout);
  assert.match(header!, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
  assert.equal(rows.length, 2);
  for (const row of rows) {
    const [repo, tag, id, ...rest] = row.split(/\s{2,}/);
    assert.ok(repo === busybox || repo === layered, row);
    assert.equal(tag, "latest");
    assert.equal(id, ids[repo!]!.slice(7, 19));
    assert.match(rest.join(" "), /ago \d+(\.\d+)?[kMG]?B$/);
  }
  const ls = await sb.run(["image", "ls"]);
  assert.equal(ls.stdout, table.stdout, "image ls is images");

  const json = await sb.run(["images", "--format", "json"]);
  ok(json);
  const docs = lines(json.stdout).map((l) => JSON.parse(l));
  assert.equal(docs.length, 2);
  for (const d of docs) {
    for (const key of ["Repository", "Tag", "ID", "Digest", "CreatedAt", "CreatedSince", "Size"]) {
      assert.ok(key in d, `${key} in ${JSON.stringify(d)}`);
    }
    assert.equal(d.ID, ids[d.Repository]!.slice(7, 19));
    assert.equal(d.Digest, "<none>");
    assert.match(d.CreatedAt, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
  }
  assert.match(json.stdout, /\\u003cnone\\u003e/, "Go's JSON escaping, as Docker's");

  const digests = await sb.run(["images", "--digests", busybox]);
  ok(digests);
  const [, row] = lines(digests.stdout);
  assert.ok(row?.includes(fixtureDigest(reg, BUSYBOX)), digests.stdout);
  assert.equal(lines(digests.stdout).length, 2, "the filter keeps only busybox");

  // A second tag adds a row but -q lists each image once.
  ok(await sb.run(["tag", busybox, "extra/name:v2"]));
  const quiet = await sb.run(["images", "-q"]);
  ok(quiet);
  assert.deepEqual(
    lines(quiet.stdout).sort(),
    Object.values(ids).map((i) => i.slice(7, 19)).sort(),
  );
  const noTrunc = await sb.run(["images", "-q", "--no-trunc", "extra/name"]);
  assert.deepEqual(lines(noTrunc.stdout), [ids[busybox]]);
  const template = await sb.run(["images", "--format", "{{.Repository}}:{{.Tag}}", "extra/*"]);
  assert.deepEqual(lines(template.stdout), ["extra/name:v2"]);
});

test("tag then rmi: Untagged and Deleted lines; the layers and their locks leave the disk", async () => {
  await using reg = await startFixtureRegistry({ images: [BUSYBOX] });
  await using sb = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/busybox`;
  await pull(sb, name);
  const info = await inspect(sb, name);
  ok(await sb.run(["tag", name, "mybox:1.0"]));
  assert.deepEqual((await inspect(sb, "mybox:1.0")).Id, info.Id);

  const untag = await sb.run(["rmi", "mybox:1.0"]);
  ok(untag);
  assert.equal(untag.stdout, "Untagged: mybox:1.0\n");

  const rm = await sb.run(["image", "rm", name]);
  ok(rm);
  const chain = info.RootFS.Layers[0]!; // one layer: its chain id is its diff id
  assert.deepEqual(lines(rm.stdout), [
    `Untagged: ${name}:latest`,
    `Untagged: ${name}@${fixtureDigest(reg, BUSYBOX)}`,
    `Deleted: ${info.Id}`,
    `Deleted: ${chain}`,
  ]);
  await assert.rejects(Deno.lstat(info.GraphDriver.Data.LowerDir), Deno.errors.NotFound);
  assert.equal((await sb.run(["images", "-q"])).stdout, "");
  // Nor do the lock files of the blobs and layers that went.
  const locks = await Array.fromAsync(Deno.readDir(`${sb.env.TRUN_ROOT}/locks`)).catch(() => []);
  assert.deepEqual(locks.map((e) => e.name), []);

  const missing = await sb.run(["rmi", "nosuch:tag"]);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /^trun: No such image: "nosuch:tag"/);
  const badTarget = await sb.run(["tag", "nosuch", "Bad Name"]);
  assert.equal(badTarget.code, 125);
  assert.match(badTarget.stderr, /"Bad Name"/);
});

test("image inspect: Docker's JSON array, GraphDriver on the unpacked layers", async () => {
  await using reg = await startFixtureRegistry({ images: [LAYERED] });
  await using sb = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/layered`;
  await pull(sb, name);
  const r = await sb.run(["inspect", name]);
  ok(r);
  assert.match(r.stdout, /^\[\n {4}\{\n {8}"Id": "sha256:[0-9a-f]{64}",\n/, "4-space indent");
  const [doc] = JSON.parse(r.stdout) as Record<string, unknown>[];
  assert.deepEqual(Object.keys(doc!), [
    "Id",
    "RepoTags",
    "RepoDigests",
    "Parent",
    "Comment",
    "Created",
    "DockerVersion",
    "Author",
    "Config",
    "Architecture",
    "Os",
    "Size",
    "GraphDriver",
    "RootFS",
    "Metadata",
  ]);
  const info = doc as unknown as Inspected;
  assert.deepEqual(info.RepoTags, [`${name}:latest`]);
  assert.deepEqual(info.RepoDigests, [`${name}@${fixtureDigest(reg, LAYERED)}`]);
  assert.equal(info.Os, "linux");
  assert.equal((info.Config as { WorkingDir?: string }).WorkingDir, "/data");
  assert.equal(info.RootFS.Type, "layers");
  assert.equal(info.RootFS.Layers.length, 3);
  assert.equal(info.GraphDriver.Name, "overlay");
  const dirs = info.GraphDriver.Data.LowerDir.split(":");
  assert.equal(dirs.length, 3);
  for (const d of dirs) assert.ok((await Deno.stat(d)).isDirectory, d);
  assert.ok((await Deno.stat(`${dirs[2]}/bin/busybox`)).isFile, "the base layer is last");
  assert.ok(info.Size > 1000);

  const id = await sb.run(["image", "inspect", "-f", "{{.Id}} {{json .RepoTags}}", name]);
  assert.equal(id.stdout, `${info.Id} ["${name}:latest"]\n`);

  const missing = await sb.run(["image", "inspect", name, "nosuch"]);
  assert.equal(missing.code, 125);
  assert.equal((JSON.parse(missing.stdout) as unknown[]).length, 1, "found ones are printed");
  assert.match(missing.stderr, /No such image: "nosuch"/);
});

test("history: a row per step, newest first, with sizes, --format json and -q", async () => {
  await using reg = await startFixtureRegistry({ images: [LAYERED] });
  await using sb = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/layered`;
  await pull(sb, name);
  const id = (await inspect(sb, name)).Id;
  const r = await sb.run(["history", name]);
  ok(r);
  const [header, ...rows] = lines(r.stdout);
  assert.match(header!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
  assert.equal(rows.length, 3);
  assert.ok(rows[0]!.startsWith(id.slice(7, 19)), rows[0]);
  assert.ok(rows[1]!.startsWith("<missing>") && rows[2]!.startsWith("<missing>"));
  for (const row of rows) assert.match(row, /ago\s+trun fixtures: layered\s+\d/);

  const json = await sb.run(["image", "history", "--format", "json", "--no-trunc", name]);
  ok(json);
  const docs = lines(json.stdout).map((l) => JSON.parse(l));
  assert.equal(docs[0].ID, id);
  assert.equal(docs[0].CreatedAt, "2023-11-14T22:13:20Z");
  // The base layer is busybox: by far the biggest step.
  assert.match(docs[2].Size, /MB$|kB$/);
  const quiet = await sb.run(["history", "-q", name]);
  assert.deepEqual(lines(quiet.stdout), [id.slice(7, 19), "<missing>", "<missing>"]);
});

test("save then rmi then load: docker-archive and oci-archive round trips", async () => {
  await using reg = await startFixtureRegistry({ images: [BUSYBOX, LAYERED] });
  await using sb = await trunSandbox();
  const busybox = `${reg.host}/trun-fixtures/busybox`;
  const layered = `${reg.host}/trun-fixtures/layered`;
  await pull(sb, busybox);
  await pull(sb, layered);
  const before = { busybox: await inspect(sb, busybox), layered: await inspect(sb, layered) };

  const docker = `${sb.dir}/images.tar`;
  ok(await sb.run(["save", "-o", docker, busybox, layered]));
  const oci = `${sb.dir}/busybox-oci.tar`;
  ok(await sb.run(["image", "save", "--format", "oci-archive", "-o", oci, busybox]));
  const list = async (tar: string) =>
    new TextDecoder().decode(
      (await new Deno.Command("tar", { args: ["-tf", tar] }).output()).stdout,
    );
  assert.match(await list(docker), /^manifest\.json$/m);
  assert.match(await list(oci), /^index\.json$/m);
  assert.doesNotMatch(await list(oci), /^manifest\.json$/m);

  ok(await sb.run(["rmi", busybox, layered]));
  assert.equal((await sb.run(["images", "-q"])).stdout, "");

  const loaded = await sb.run(["load", "-i", docker]);
  ok(loaded);
  assert.deepEqual(lines(loaded.stdout).sort(), [
    `Loaded image: ${busybox}:latest`,
    `Loaded image: ${layered}:latest`,
  ]);
  const after = await inspect(sb, layered);
  assert.equal(after.Id, before.layered.Id);
  assert.deepEqual(after.RootFS.Layers, before.layered.RootFS.Layers);
  const top = after.GraphDriver.Data.LowerDir.split(":")[0]!;
  assert.ok((await Deno.lstat(`${top}/data/a`)).isCharDevice, "whiteouts survive the trip");

  ok(await sb.run(["rmi", busybox]));
  const fromStdin = await sb.run(["image", "load"], { stdin: await Deno.readFile(oci) });
  ok(fromStdin);
  assert.equal(fromStdin.stdout, `Loaded image: ${busybox}:latest\n`);
  assert.equal((await inspect(sb, busybox)).Id, before.busybox.Id);

  const noFile = await sb.run(["load", "-i", `${sb.dir}/nope.tar`]);
  assert.equal(noFile.code, 125);
  assert.match(noFile.stderr, /nope\.tar/);
  const badFormat = await sb.run(["save", "--format", "zip", "-o", `${sb.dir}/x`, busybox]);
  assert.equal(badFormat.code, 125);
  assert.match(badFormat.stderr, /"zip"/);
});

test("an untagged image: save by id, load prints its id, image prune removes it", async () => {
  await using reg = await startFixtureRegistry({ images: [BUSYBOX] });
  await using sb = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/busybox`;
  await pull(sb, name);
  const { Id: id } = await inspect(sb, name);
  const tar = `${sb.dir}/byid.tar`;
  ok(await sb.run(["save", "-o", tar, id.slice(7, 19)]));
  ok(await sb.run(["rmi", name]));
  const loaded = await sb.run(["load", "-i", tar]);
  ok(loaded);
  assert.equal(loaded.stdout, `Loaded image ID: ${id}\n`);
  const table = await sb.run(["images"]);
  assert.match(lines(table.stdout)[1]!, new RegExp(`^<none>\\s+<none>\\s+${id.slice(7, 19)}\\s`));

  const refused = await sb.run(["image", "prune"]);
  assert.equal(refused.code, 125, "no terminal to confirm on and no -f");
  assert.match(refused.stderr, /--force/);
  assert.equal((await sb.run(["images", "-q"])).stdout, `${id.slice(7, 19)}\n`);

  const pruned = await sb.run(["image", "prune", "-f"]);
  ok(pruned);
  const out = lines(pruned.stdout);
  assert.equal(out[0], "Deleted Images:");
  assert.ok(out.includes(`deleted: ${id}`), pruned.stdout);
  assert.match(out.at(-1)!, /^Total reclaimed space: [1-9][\d.]*[kMG]?B$/);
  assert.equal((await sb.run(["images", "-q"])).stdout, "");

  const again = await sb.run(["image", "prune", "-f"]);
  assert.equal(again.stdout, "Total reclaimed space: 0B\n");
});

test("image prune -a removes tagged images too", async () => {
  await using reg = await startFixtureRegistry({ images: [BUSYBOX] });
  await using sb = await trunSandbox();
  const name = `${reg.host}/trun-fixtures/busybox`;
  await pull(sb, name);
  ok(await sb.run(["tag", name, "another:tag"]));
  const kept = await sb.run(["image", "prune", "-f"]);
  assert.equal(kept.stdout, "Total reclaimed space: 0B\n", "tagged images are not dangling");
  const all = await sb.run(["image", "prune", "-a", "-f"]);
  ok(all);
  assert.ok(lines(all.stdout).includes("untagged: another:tag"), all.stdout);
  assert.ok(lines(all.stdout).includes(`untagged: ${name}:latest`), all.stdout);
  assert.equal((await sb.run(["images", "-q"])).stdout, "");
});

test(
  "image prune -a keeps an image a container uses (also after its client is killed) until rm",
  async () => {
    await using reg = await startFixtureRegistry({ images: [BUSYBOX] });
    await using sb = await trunSandbox();
    const name = `${reg.host}/trun-fixtures/busybox`;
    await pull(sb, name);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN_TS, "run", name, "sh", "-c", "echo up; sleep 30"],
      env: sb.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Its stderr, to say why when the container never says "up".
    const stderr = new Response(child.stderr).text();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      const first = (await reader.read()).value;
      if (first !== "up\n") {
        await child.status;
        assert.fail(`trun run printed ${JSON.stringify(first)}; its stderr: ${await stderr}`);
      }
      const kept = await sb.run(["image", "prune", "-a", "-f"]);
      ok(kept);
      assert.equal(kept.stdout, "Total reclaimed space: 0B\n");
      assert.equal(lines((await sb.run(["images", "-q"])).stdout).length, 1);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
      await reader.cancel();
      await stderr;
    }
    // As with Docker, the container outlives its killed client and pins the
    // image until it is removed.
    const still = await sb.run(["image", "prune", "-a", "-f"]);
    ok(still);
    assert.equal(still.stdout, "Total reclaimed space: 0B\n");
    ok(await sb.run(["rm", "-f", ...lines((await sb.run(["ps", "-a", "-q"])).stdout)]));
    const pruned = await sb.run(["image", "prune", "-a", "-f"]);
    ok(pruned);
    assert.ok(lines(pruned.stdout).includes(`untagged: ${name}:latest`), pruned.stdout);
    assert.equal((await sb.run(["images", "-q"])).stdout, "");
  },
  runGate,
);

test("push under a new name, then pull it back into another store", async () => {
  await using reg = await startFixtureRegistry({ images: [LAYERED] });
  const target = `${reg.host}/pushed/copy:v1`;
  let id: string;
  let digest: string;
  {
    await using sb = await trunSandbox();
    const name = `${reg.host}/trun-fixtures/layered`;
    await pull(sb, name);
    id = (await inspect(sb, name)).Id;
    ok(await sb.run(["tag", name, target]));
    const r = await sb.run(["push", target]);
    ok(r, "push");
    const out = lines(r.stdout);
    assert.equal(out[0], `The push refers to repository [${reg.host}/pushed/copy]`);
    // The store dropped the layer blobs after unpacking; the registry links
    // them from the repository they were pulled from.
    assert.equal(
      out.filter((l) => / Mounted from trun-fixtures\/layered$/.test(l)).length,
      3,
      `three layers, no config:\n${r.stdout}`,
    );
    const last = /^v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)$/.exec(out.at(-1)!);
    assert.ok(last, r.stdout);
    digest = last[1]!;
    // Mounted layers keep their digests: the stored manifest goes up byte for byte.
    assert.equal(digest, fixtureDigest(reg, LAYERED));

    const again = await sb.run(["image", "push", target]);
    ok(again);
    assert.equal(lines(again.stdout).filter((l) => / Layer already exists$/.test(l)).length, 3);
    const quiet = await sb.run(["push", "-q", target]);
    assert.equal(quiet.stdout, `${target}\n`);
    const absent = await sb.run(["push", `${reg.host}/never/tagged:1`]);
    assert.equal(absent.code, 125);
    assert.match(absent.stderr, /never\/tagged/);
  }
  await using other = await trunSandbox();
  const back = await pull(other, target);
  assert.ok(back.stdout.includes(`Digest: ${digest}`), back.stdout);
  assert.equal((await inspect(other, target)).Id, id);
});

test("login and logout against a registry without authentication", async () => {
  await using reg = await startFixtureRegistry({ images: [BUSYBOX] });
  await using sb = await trunSandbox();
  // Docker's own config is read too: keep the user's out of the test.
  const env = { DOCKER_CONFIG: `${sb.dir}/docker` };
  const authFile = `${sb.env.TRUN_CONFIG_DIR}/auth.json`;

  // Like Docker: a registry that asks for no credentials accepts the login.
  const login = await sb.run(["login", "-u", "tester", "--password-stdin", reg.host], {
    env,
    stdin: "s3cret\n",
  });
  ok(login, "login");
  assert.equal(login.stdout, "Login Succeeded\n");
  const saved = JSON.parse(await Deno.readTextFile(authFile));
  assert.equal(saved.auths[reg.host].auth, btoa("tester:s3cret"));
  assert.equal((await Deno.stat(authFile)).mode! & 0o777, 0o600);
  await pull(sb, `${reg.host}/trun-fixtures/busybox`, "-q");

  const noTty = await sb.run(["login", reg.host], { env });
  assert.equal(noTty.code, 125);
  assert.match(noTty.stderr, /not a terminal/);
  const both = await sb.run(["login", "-u", "x", "-p", "y", "--password-stdin", reg.host], {
    env,
  });
  assert.equal(both.code, 125);

  const logout = await sb.run(["logout", reg.host], { env });
  ok(logout, "logout");
  assert.equal(logout.stdout, `Removing login credentials for ${reg.host}\n`);
  assert.equal(JSON.parse(await Deno.readTextFile(authFile)).auths[reg.host], undefined);
  const again = await sb.run(["logout", reg.host], { env });
  ok(again);
  assert.equal(again.stdout, `Not logged in to ${reg.host}\n`);
});

test("a malformed reference fails with 125 and names the bad part", async () => {
  await using sb = await trunSandbox();
  const upper = await sb.run(["pull", "127.0.0.1:5000/Trun/Busybox"]);
  assert.equal(upper.code, 125);
  assert.match(upper.stderr, /^trun: invalid reference "127\.0\.0\.1:5000\/Trun\/Busybox"/);
  assert.match(upper.stderr, /lowercase/);
  const tag = await sb.run(["pull", "busybox:bad$tag"]);
  assert.equal(tag.code, 125);
  assert.match(tag.stderr, /tag "bad\$tag" is not valid/);
  const usage = await sb.run(["pull"]);
  assert.equal(usage.code, 125);
  assert.match(usage.stderr, /"trun pull" requires at least 1 argument/);
});

test("pulling a tag the registry lacks fails with 125, a clear message and no image", async () => {
  await using reg = await startFixtureRegistry({ images: [BUSYBOX] });
  await using sb = await trunSandbox();
  const r = await sb.run(["pull", `${reg.host}/trun-fixtures/busybox:nope`]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /^trun: .*manifest "nope"/m);
  assert.match(r.stderr, /trun-fixtures\/busybox:nope/);
  assert.equal((await sb.run(["images", "-q"])).stdout, "");
  const repo = await sb.run(["pull", `${reg.host}/no/such-repo`]);
  assert.equal(repo.code, 125);
  assert.match(repo.stderr, /no\/such-repo/);
});

test("image: the subcommand dispatcher and its help", async () => {
  await using sb = await trunSandbox();
  const help = await sb.run(["image"]);
  ok(help);
  for (
    const sub of ["ls", "pull", "push", "rm", "tag", "inspect", "history", "prune", "save", "load"]
  ) {
    assert.match(help.stdout, new RegExp(`^  ${sub} `, "m"), `${sub} in help`);
  }
  const unknown = await sb.run(["image", "frobnicate"]);
  assert.equal(unknown.code, 125);
  assert.match(unknown.stderr, /'frobnicate' is not a trun image command/);
  const subHelp = await sb.run(["image", "ls", "--help"]);
  ok(subHelp);
  assert.match(subHelp.stdout, /^Usage: {2}trun image ls /);
  const list = await sb.run(["image", "list"]);
  ok(list);
  assert.match(list.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n$/);
});

/**
 * Unit tests of volumes: the store's `volumes` table (lib/store/volumes.ts),
 * the copy of an image's directory out of a layered root (copy-up), the
 * pure parts of `volume ls` / `volume prune` and `system df`.
 */
import assert from "node:assert/strict";
import { openStore, type VolumeRecord } from "../../lib/store/mod.ts";
import {
  ANONYMOUS_LABEL,
  anonymousVolumeName,
  checkVolumeName,
  volumeBacking,
} from "../../lib/store/volumes.ts";
import { copyDirOut, mergedDirOwners } from "../../lib/runtime/rootfs_files.ts";
import {
  parseVolumeFilters,
  renderVolumes,
  selectVolumes,
  volumeJson,
} from "../../lib/cli/volume.ts";
import { diskUsage, renderDiskUsage, systemPruneWarning } from "../../lib/cli/system.ts";
import { parseFormat } from "../../lib/cli/format.ts";
import { UsageError } from "../../lib/cli/args.ts";
import { cid, containerRecord } from "./_container_records.ts";
import { mknod } from "../../ffi/fs.ts";
import { S } from "../../ffi/syscalls.ts";

/** Runs `fn` with a store on a fresh temporary root. */
async function withStore(fn: (store: ReturnType<typeof openStore>) => void | Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "trun-vol-" });
  const store = openStore(root);
  try {
    await fn(store);
  } finally {
    store.close();
    await Deno.remove(root, { recursive: true });
  }
}

// ---------------------------------------------------------------------------
// Names and driver options

for (const name of ["ab", "data", "my.vol_1-x", "0", "A9"].filter((n) => n.length > 1)) {
  Deno.test(`checkVolumeName() accepts "${name}"`, () => checkVolumeName(name));
}
for (const name of ["a", "", ".x", "-x", "_x", "a/b", "a b", "../x", "x:y"]) {
  Deno.test(`checkVolumeName() refuses "${name}" in Docker's words`, () => {
    assert.throws(
      () => checkVolumeName(name),
      /includes invalid characters for a local volume name, only "\[a-zA-Z0-9\]\[a-zA-Z0-9_.-\]" are allowed/,
    );
  });
}

Deno.test("anonymousVolumeName() is 64 hex digits, fresh each time", () => {
  const a = anonymousVolumeName();
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, anonymousVolumeName());
});

Deno.test("volumeBacking() honours the local driver's type=tmpfs and type=bind", () => {
  const v = (options: Record<string, string>) => volumeBacking({ name: "v", options }, "/d");
  assert.deepEqual(v({}), { kind: "dir", path: "/d" });
  assert.deepEqual(v({ type: "tmpfs", device: "tmpfs", o: "size=1m,uid=1000" }), {
    kind: "tmpfs",
    options: ["size=1m", "uid=1000"],
  });
  assert.deepEqual(v({ type: "bind", device: "/srv/x", o: "bind" }), {
    kind: "dir",
    path: "/srv/x",
  });
  assert.deepEqual(v({ type: "bind", device: "/srv/x", o: "rbind,ro" }), {
    kind: "dir",
    path: "/srv/x",
    readOnly: true,
  });
});

const BAD_OPTIONS: [Record<string, string>, RegExp][] = [
  [{ type: "nfs", device: ":/x", o: "addr=1.2.3.4" }, /type=bind and type=tmpfs only, not "nfs"/],
  [{ type: "ext4", device: "/dev/sda1" }, /not "ext4"/],
  [{ size: "1g" }, /invalid option: "size"/],
  [{ device: "/x" }, /missing "type" option/],
  [{ type: "bind", device: "x", o: "bind" }, /device=ABSOLUTE-HOST-PATH/],
  [{ type: "bind", device: "/x" }, /needs o=bind/],
  [{ type: "bind", device: "/x", o: "bind,noexec" }, /bind option "noexec"/],
  [{ type: "tmpfs", device: "/dev/x" }, /takes no device/],
];
for (const [options, re] of BAD_OPTIONS) {
  Deno.test(`volumeBacking() refuses ${JSON.stringify(options)}`, () => {
    assert.throws(() => volumeBacking({ name: "v", options }, "/d"), re);
  });
}

// ---------------------------------------------------------------------------
// The store table

Deno.test("createVolume() records a volume and makes its _data 0755; again finds it", async () => {
  await withStore((store) => {
    const { volume, created } = store.createVolume({ name: "data", labels: { a: "b" } });
    assert.equal(created, true);
    assert.equal(volume.name, "data");
    assert.equal(volume.driver, "local");
    assert.deepEqual(volume.labels, { a: "b" });
    assert.match(volume.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const st = Deno.statSync(store.volumePath("data"));
    assert.ok(st.isDirectory);
    assert.equal(st.mode! & 0o777, 0o755);
    assert.equal(store.volumePath("data"), `${store.root}/volumes/data/_data`);
    const again = store.createVolume({ name: "data", labels: { other: "x" } });
    assert.equal(again.created, false);
    assert.deepEqual(again.volume.labels, { a: "b" });
    assert.deepEqual(store.listVolumes().map((v) => v.name), ["data"]);
  });
});

Deno.test("createVolume() makes an anonymous volume with Docker's label", async () => {
  await withStore((store) => {
    const { volume } = store.createVolume({ anonymous: true });
    assert.match(volume.name, /^[0-9a-f]{64}$/);
    assert.deepEqual(volume.labels, { [ANONYMOUS_LABEL]: "" });
  });
});

Deno.test("createVolume() refuses other drivers, bad names and bad options, recording nothing", async () => {
  await withStore((store) => {
    assert.throws(() => store.createVolume({ name: "x1", driver: "nfs" }), /local driver only/);
    assert.throws(() => store.createVolume({ name: "x" }), /invalid characters/);
    assert.throws(() => store.createVolume({ name: "x2", options: { type: "nfs" } }), /not "nfs"/);
    assert.deepEqual(store.listVolumes(), []);
  });
});

Deno.test("removeVolume() removes the row and the data; a later create starts empty", async () => {
  await withStore((store) => {
    store.createVolume({ name: "data" });
    Deno.writeTextFileSync(`${store.volumePath("data")}/f`, "x");
    assert.equal(store.removeVolume("data"), true);
    assert.equal(store.getVolume("data"), undefined);
    assert.deepEqual([...Deno.readDirSync(`${store.root}/volumes`)], []);
    assert.equal(store.removeVolume("data"), false);
    store.createVolume({ name: "data" });
    assert.deepEqual([...Deno.readDirSync(store.volumePath("data"))], []);
  });
});

Deno.test("a volume whose directory vanished gets an empty one back on use", async () => {
  await withStore((store) => {
    store.createVolume({ name: "data" });
    Deno.removeSync(`${store.root}/volumes/data`, { recursive: true });
    assert.equal(store.ensureVolumeDir("data"), store.volumePath("data"));
    assert.ok(Deno.statSync(store.volumePath("data")).isDirectory);
  });
});

Deno.test("sweepVolumeLeftovers() removes what a killed removal left, only that", async () => {
  await withStore((store) => {
    store.createVolume({ name: "keep" });
    Deno.mkdirSync(`${store.root}/volumes/gone.del-0123456789ab/_data`, { recursive: true });
    assert.equal(store.sweepVolumeLeftovers(), 1);
    assert.deepEqual([...Deno.readDirSync(`${store.root}/volumes`)].map((e) => e.name), ["keep"]);
  });
});

Deno.test("volumeUsers() counts records, and foreground runs only while their process lives", async () => {
  await withStore((store) => {
    store.addRecord(containerRecord({
      id: cid("a1"),
      name: "one",
      volumes: [{ name: "data", destination: "/d", anonymous: false }],
    }));
    store.addRecord(containerRecord({
      id: cid("a2"),
      name: "two",
      volumes: [
        { name: "data", destination: "/d", anonymous: false },
        { name: "x9", destination: "/x", anonymous: true },
      ],
    }));
    store.addRecord(containerRecord({ id: cid("a3"), name: "none" }));
    store.addContainer({ id: cid("b1"), name: null, imageId: "", pid: Deno.pid, volumes: ["fg"] });
    // A pid that cannot exist: the row of a killed `trun run`.
    store.addContainer({ id: cid("b2"), name: null, imageId: "", pid: 2 ** 30, volumes: ["dead"] });
    const users = store.volumeUsers();
    assert.deepEqual(users.get("data")?.sort(), [cid("a1"), cid("a2")]);
    assert.deepEqual(users.get("x9"), [cid("a2")]);
    assert.deepEqual(users.get("fg"), [cid("b1")]);
    assert.equal(users.has("dead"), false);
  });
});

Deno.test("the migration adds the volumes table to an existing store", async () => {
  await withStore((store) => {
    const cols = (store.db.prepare("PRAGMA table_info(volumes)").all() as { name: string }[])
      .map((c) => c.name);
    assert.deepEqual(cols, ["name", "driver", "created", "labels", "options"]);
  });
});

// ---------------------------------------------------------------------------
// Copy-up: an image's directory out of a layered root

Deno.test("copyDirOut() copies the merged directory: whiteouts, opaque dirs, links, modes", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "trun-copyup-" });
  try {
    const lower = `${tmp}/lower`;
    const upper = `${tmp}/upper`;
    const dest = `${tmp}/dest`;
    Deno.mkdirSync(`${lower}/srv/data/sub`, { recursive: true });
    Deno.mkdirSync(`${lower}/srv/data/opq`, { recursive: true });
    Deno.writeTextFileSync(`${lower}/srv/data/kept`, "lower");
    Deno.writeTextFileSync(`${lower}/srv/data/gone`, "x");
    Deno.writeTextFileSync(`${lower}/srv/data/over`, "lower");
    Deno.writeTextFileSync(`${lower}/srv/data/sub/deep`, "deep");
    Deno.writeTextFileSync(`${lower}/srv/data/opq/hidden`, "h");

    Deno.mkdirSync(`${upper}/srv/data/opq`, { recursive: true });
    Deno.writeTextFileSync(`${upper}/srv/data/over`, "upper");
    Deno.writeTextFileSync(`${upper}/srv/data/new`, "new");
    Deno.linkSync(`${upper}/srv/data/new`, `${upper}/srv/data/new2`);
    Deno.symlinkSync("../etc/passwd", `${upper}/srv/data/link`);
    Deno.chmodSync(`${upper}/srv/data/new`, 0o640);
    // The top layer's directory is the one the merged view shows.
    Deno.chmodSync(`${upper}/srv/data`, 0o1770);
    Deno.writeTextFileSync(`${upper}/srv/data/opq/shown`, "s");
    let whiteouts = true;
    try {
      mknod(`${upper}/srv/data/gone`, S.IFCHR | 0o000, 0, 0);
      const { lsetxattr } = await import("../../ffi/fs.ts");
      lsetxattr(`${upper}/srv/data/opq`, "user.overlay.opaque", new TextEncoder().encode("y"));
    } catch {
      // No mknod or user xattrs here (unprivileged, or tmpfs without them):
      // the plain merge is still checked below.
      whiteouts = false;
      Deno.removeSync(`${upper}/srv/data/gone`, { recursive: true });
    }
    Deno.mkdirSync(dest);
    const layers = [upper, lower];
    const r = copyDirOut(layers, "/srv/./data", dest);
    assert.equal(r.copied, true);
    const names = [...Deno.readDirSync(dest)].map((e) => e.name).sort();
    const want = ["kept", "link", "new", "new2", "opq", "over", "sub"];
    if (!whiteouts) want.push("gone");
    assert.deepEqual(names, want.sort());
    assert.equal(Deno.readTextFileSync(`${dest}/over`), "upper");
    assert.equal(Deno.readTextFileSync(`${dest}/sub/deep`), "deep");
    assert.equal(Deno.readLinkSync(`${dest}/link`), "../etc/passwd");
    assert.equal(Deno.statSync(`${dest}/new`).mode! & 0o777, 0o640);
    assert.equal(Deno.statSync(`${dest}/new`).ino, Deno.statSync(`${dest}/new2`).ino);
    // The directory's own mode goes onto the volume, as Docker's copy-up does.
    assert.equal(Deno.statSync(dest).mode! & 0o7777, 0o1770);
    const opq = [...Deno.readDirSync(`${dest}/opq`)].map((e) => e.name).sort();
    assert.deepEqual(opq, whiteouts ? ["shown"] : ["hidden", "shown"]);
    const self = `${Deno.uid()}:${Deno.gid()}`;
    assert.deepEqual([...mergedDirOwners(layers, "/srv/data")!], [self]);
    assert.deepEqual(copyDirOut(layers, "/srv/data/kept", dest), { copied: false });
    assert.deepEqual(copyDirOut(layers, "/missing", dest), { copied: false });
    assert.equal(mergedDirOwners(layers, "/missing"), null);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// volume ls / prune

const vol = (name: string, labels: Record<string, string> = {}): VolumeRecord => ({
  name,
  driver: "local",
  created: "2024-01-01T00:00:00Z",
  labels,
  options: {},
});

const LS = { name: "volume ls", usage: "", summary: "", flags: {} };

Deno.test("selectVolumes() applies dangling, name, label and label! filters", () => {
  const all = [vol("alpha", { env: "prod" }), vol("beta", { env: "dev" }), vol("gamma")];
  const users = new Map([["alpha", ["c1"]]]);
  const pick = (...f: string[]) =>
    selectVolumes(all, users, parseVolumeFilters(LS, f)).map((v) => v.name);
  assert.deepEqual(pick(), ["alpha", "beta", "gamma"]);
  assert.deepEqual(pick("dangling=true"), ["beta", "gamma"]);
  assert.deepEqual(pick("dangling=false"), ["alpha"]);
  assert.deepEqual(pick("name=a$"), ["alpha", "beta", "gamma"]);
  assert.deepEqual(pick("name=^b"), ["beta"]);
  assert.deepEqual(pick("name=et", "name=amm"), ["beta", "gamma"]);
  assert.deepEqual(pick("label=env"), ["alpha", "beta"]);
  assert.deepEqual(pick("label=env=dev"), ["beta"]);
  assert.deepEqual(pick("label!=env=dev"), ["alpha", "gamma"]);
  assert.deepEqual(pick("driver=local", "dangling=1"), ["beta", "gamma"]);
  assert.deepEqual(pick("driver=other"), []);
});

Deno.test("parseVolumeFilters() refuses unknown keys and bad values as usage errors", () => {
  for (const f of ["frob=1", "dangling=maybe", "nokey"]) {
    assert.throws(() => parseVolumeFilters(LS, [f]), UsageError, f);
  }
  assert.throws(() => parseVolumeFilters(LS, ["name=x"], ["label"]), /supports label=/);
});

Deno.test("renderVolumes() prints Docker's table, -q, JSON lines and templates", () => {
  const items = [{ volume: vol("data", { b: "2", a: "1" }), mountpoint: "/s/volumes/data/_data" }];
  assert.deepEqual(renderVolumes(items, { quiet: false, format: parseFormat(undefined) }), [
    "DRIVER    VOLUME NAME",
    "local     data",
  ]);
  assert.deepEqual(renderVolumes(items, { quiet: true, format: parseFormat(undefined) }), [
    "data",
  ]);
  assert.deepEqual(renderVolumes(items, { quiet: false, format: parseFormat("json") }), [
    JSON.stringify(volumeJson(items[0]!.volume, items[0]!.mountpoint)),
  ]);
  assert.deepEqual(volumeJson(items[0]!.volume, "/m"), {
    Availability: "N/A",
    Driver: "local",
    Group: "N/A",
    Labels: "a=1,b=2",
    Links: "N/A",
    Mountpoint: "/m",
    Name: "data",
    Scope: "local",
    Size: "N/A",
    Status: "N/A",
  });
  assert.deepEqual(
    renderVolumes(items, { quiet: false, format: parseFormat("table {{.Name}}\t{{.Mountpoint}}") }),
    ["VOLUME NAME   MOUNTPOINT", "data          /s/volumes/data/_data"],
  );
});

// ---------------------------------------------------------------------------
// system df

Deno.test("diskUsage() counts shared layers once and reclaims what no container uses", () => {
  const image = (id: string, layers: string[]) => ({
    id,
    manifestDigest: "",
    manifestMediaType: "",
    created: undefined,
    added: 0,
    size: 0,
    config: { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } },
    tags: [],
    digests: [],
    layers,
  });
  const rows = diskUsage(
    [
      { image: image("i1", ["base", "app"]), layerSizes: [1000, 500], containers: 1 },
      { image: image("i2", ["base", "other"]), layerSizes: [1000, 1500], containers: 0 },
    ],
    [
      { rec: containerRecord({ id: cid("1"), name: "a" }), status: "running", size: 300 },
      { rec: containerRecord({ id: cid("2"), name: "b" }), status: "exited", size: 100 },
    ],
    [
      { volume: vol("used"), size: 36, links: 1 },
      { volume: vol("free"), size: 12, links: 0 },
      { volume: vol("empty"), size: 0, links: 0 },
    ],
  );
  assert.deepEqual(rows, [
    { Type: "Images", TotalCount: "2", Active: "1", Size: "3kB", Reclaimable: "1.5kB (50%)" },
    { Type: "Containers", TotalCount: "2", Active: "1", Size: "400B", Reclaimable: "100B (25%)" },
    { Type: "Local Volumes", TotalCount: "3", Active: "1", Size: "48B", Reclaimable: "12B (25%)" },
    { Type: "Build Cache", TotalCount: "0", Active: "0", Size: "0B", Reclaimable: "0B" },
  ]);
  assert.deepEqual(renderDiskUsage(rows, parseFormat(undefined)), [
    "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE",
    "Images          2         1         3kB       1.5kB (50%)",
    "Containers      2         1         400B      100B (25%)",
    "Local Volumes   3         1         48B       12B (25%)",
    "Build Cache     0         0         0B        0B",
  ]);
  assert.deepEqual(renderDiskUsage(rows.slice(2, 3), parseFormat("{{.Type}}: {{.Size}}")), [
    "Local Volumes: 48B",
  ]);
  assert.deepEqual(diskUsage([], [], [])[2], {
    Type: "Local Volumes",
    TotalCount: "0",
    Active: "0",
    Size: "0B",
    Reclaimable: "0B",
  });
});

Deno.test("systemPruneWarning() lists what the flags remove, as Docker's", () => {
  assert.equal(
    systemPruneWarning(false, false),
    "WARNING! This will remove:\n  - all stopped containers\n  - all dangling images\n",
  );
  assert.equal(
    systemPruneWarning(true, true),
    "WARNING! This will remove:\n  - all stopped containers\n" +
      "  - all anonymous volumes not used by at least one container\n" +
      "  - all images without at least one container associated to them\n",
  );
});

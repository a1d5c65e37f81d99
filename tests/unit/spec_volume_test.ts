// Table tests of the mount flags (-v, --mount, --tmpfs) and the standard
// mounts, as OCI mounts.
import assert from "node:assert/strict";
import { standardMounts } from "../../lib/spec/defaults.ts";
import {
  type BindRequest,
  type MountRequest,
  mountRequests,
  ociMounts,
  parseByteSize,
  parseMount,
  parseTmpfs,
  parseVolume,
  TMPFS_DEFAULTS,
  type VolumeRequest,
} from "../../lib/spec/mounts.ts";
import { normalizePath } from "../../lib/util/path.ts";
import type { Mount } from "../../lib/spec/types.ts";

const bind = (
  source: string,
  destination: string,
  readOnly: boolean,
  spec: string,
  mode = "",
): BindRequest => ({
  type: "bind",
  source,
  destination,
  readOnly,
  recursive: true,
  createSource: true,
  flag: "volume",
  spec,
  mode,
});
const named = (
  name: string,
  destination: string,
  readOnly: boolean,
  spec: string,
  mode = "z",
): VolumeRequest => ({
  type: "volume",
  name,
  destination,
  readOnly,
  noCopy: false,
  labels: {},
  driverOptions: {},
  flag: "volume",
  spec,
  mode,
});

const VOLUMES: [string, MountRequest][] = [
  ["/a:/b", bind("/a", "/b", false, "/a:/b")],
  ["/a:/b:ro", bind("/a", "/b", true, "/a:/b:ro", "ro")],
  ["/a:/b:rw", bind("/a", "/b", false, "/a:/b:rw", "rw")],
  ["/a:/b:ro,z", bind("/a", "/b", true, "/a:/b:ro,z", "ro,z")],
  ["/a:/b:Z,rw", bind("/a", "/b", false, "/a:/b:Z,rw", "Z,rw")],
  ["/a:/b:ro,rw", bind("/a", "/b", false, "/a:/b:ro,rw", "ro,rw")],
  ["/a:/b:", bind("/a", "/b", false, "/a:/b:")],
  ["/a/../c//d/:/x/./y", bind("/c/d", "/x/y", false, "/a/../c//d/:/x/./y")],
  [
    "/a:/b:rshared",
    { ...bind("/a", "/b", false, "/a:/b:rshared", "rshared"), propagation: "rshared" },
  ],
  ["data:/b", named("data", "/b", false, "data:/b")],
  ["my.vol_1:/srv/x:ro", named("my.vol_1", "/srv/x", true, "my.vol_1:/srv/x:ro", "ro")],
  ["data:/b:nocopy", { ...named("data", "/b", false, "data:/b:nocopy", "nocopy"), noCopy: true }],
  ["/data", {
    type: "volume",
    destination: "/data",
    readOnly: false,
    noCopy: false,
    labels: {},
    driverOptions: {},
    flag: "volume",
    spec: "/data",
    mode: "",
  }],
];
for (const [spec, want] of VOLUMES) {
  Deno.test(`parseVolume() parses "${spec}"`, () => assert.deepEqual(parseVolume(spec), want));
}

const BAD: [string, RegExp][] = [
  ["data", /the container path "data" must be absolute/],
  [":/b", /expected \[SOURCE:\]CONTAINER-PATH/],
  ["/a:", /expected \[SOURCE:\]CONTAINER-PATH/],
  ["./data:/b", /neither an absolute host path nor a volume name/],
  ["a/b:/b", /neither an absolute host path nor a volume name/],
  ["/a:b", /the container path "b" must be absolute/],
  ["/a:/b:rx", /unknown option "rx"/],
  ["/a:/b:nocopy", /unknown option "nocopy"/],
  ["data:/b:rshared", /unknown option "rshared"/],
  ["/a:/b:ro:x", /expected \[SOURCE:\]CONTAINER-PATH/],
  ["/a:/", /cannot be "\/"/],
  ["/a:/x/..", /cannot be "\/"/],
  ["/", /cannot be "\/"/],
];
for (const [spec, re] of BAD) {
  Deno.test(`parseVolume() rejects "${spec}"`, () => {
    assert.throws(() => parseVolume(spec), (e: Error) => {
      assert.match(e.message, new RegExp(`^invalid volume "${RegExp.escape(spec)}": `));
      assert.match(e.message, re);
      return true;
    });
  });
}

// ---------------------------------------------------------------------------
// parseMount (Docker's --mount CSV)

const MOUNTS: [string, Partial<MountRequest> & Record<string, unknown>][] = [
  ["type=bind,source=/a,target=/b", {
    type: "bind",
    source: "/a",
    destination: "/b",
    readOnly: false,
    recursive: true,
    createSource: false,
    mode: "",
  }],
  ["type=bind,src=/a,dst=/b,readonly", { type: "bind", readOnly: true }],
  ["type=bind,src=/a,destination=/b,ro=true", { type: "bind", readOnly: true }],
  ["type=bind,src=/a,dst=/b,readonly=false", { type: "bind", readOnly: false }],
  ["type=bind,src=/a,dst=/b,ro=0", { type: "bind", readOnly: false }],
  ["type=bind,src=/a,dst=/b,bind-propagation=rslave", { propagation: "rslave" }],
  ["type=bind,src=/a,dst=/b,bind-recursive=disabled", { recursive: false }],
  ["type=bind,src=/a,dst=/b,bind-nonrecursive", { recursive: false }],
  ["src=vol,dst=/d", { type: "volume", name: "vol", destination: "/d", noCopy: false }],
  ["type=volume,target=/d", { type: "volume", destination: "/d" }],
  ["type=volume,src=v,dst=/d,volume-nocopy", { noCopy: true }],
  ["type=volume,src=v,dst=/d,volume-nocopy=false", { noCopy: false }],
  [
    "type=volume,src=v,dst=/d,volume-label=a=b,volume-opt=type=tmpfs,volume-opt=o=size=1m",
    { labels: { a: "b" }, driverOptions: { type: "tmpfs", o: "size=1m" } },
  ],
  ["type=volume,src=v,dst=/d,volume-driver=local", { driver: "local" }],
  ["type=tmpfs,dst=/t", {
    type: "tmpfs",
    destination: "/t",
    options: ["rw", "noexec", "nosuid", "nodev"],
  }],
  ["type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770", {
    options: ["rw", "noexec", "nosuid", "nodev", "size=65536k", "mode=1770"],
    sizeBytes: 64 * 1024 * 1024,
    fileMode: 0o1770,
  }],
  ["type=tmpfs,dst=/t,readonly", { readOnly: true, options: [...TMPFS_DEFAULTS, "ro"] }],
  ["Type=Bind,Source=/a,Target=/b,consistency=cached", { type: "bind", source: "/a" }],
];
for (const [spec, want] of MOUNTS) {
  Deno.test(`parseMount() parses "${spec}"`, () => {
    const got = parseMount(spec) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, k);
    assert.equal(got.flag, "mount");
    assert.equal(got.spec, spec);
  });
}

const BAD_MOUNTS: [string, RegExp][] = [
  ["type=bind,src=/a", /target is required/],
  ["type=bind,dst=/b", /field Source must not be empty/],
  ["type=bind,src=a,dst=/b", /'a' mount path must be absolute/],
  ["type=bind,src=/a,dst=b", /the container path "b" must be absolute/],
  ["type=tmpfs,src=x,dst=/t", /field Source must not be specified/],
  ["type=nfs,dst=/t", /mount type "nfs" is not supported/],
  ["type=bind,src=/a,dst=/b,frob=1", /unexpected key 'frob' in 'frob=1'/],
  [
    "type=bind,src=/a,dst=/b,volume-nocopy",
    /cannot mix 'volume-\*' options with mount type 'bind'/,
  ],
  ["type=volume,dst=/b,bind-propagation=shared", /cannot mix 'bind-\*' options/],
  ["type=volume,dst=/b,tmpfs-size=1m", /cannot mix 'tmpfs-\*' options/],
  ["type=bind,src=/a,dst=/b,bind-propagation=weird", /invalid bind-propagation "weird"/],
  ["type=bind,src=/a,dst=/b,readonly=maybe", /invalid value for 'readonly': maybe/],
  ["type=bind,source,dst=/b", /invalid field 'source' must be a key=value pair/],
  ["type=tmpfs,dst=/t,tmpfs-size=lots", /invalid tmpfs-size "lots"/],
  ["type=tmpfs,dst=/t,tmpfs-mode=999", /invalid tmpfs-mode "999"/],
  ["type=volume,src=/abs,dst=/d", /is a path, not a volume name/],
  ["type=volume,src=v,dst=/d,volume-opt=novalue", /must be a key=value pair/],
  ["type=volume,src=v,dst=/", /cannot be "\/"/],
];
for (const [spec, re] of BAD_MOUNTS) {
  Deno.test(`parseMount() rejects "${spec}"`, () => {
    assert.throws(() => parseMount(spec), (e: Error) => {
      assert.match(
        e.message,
        new RegExp(`^invalid argument "${RegExp.escape(spec)}" for "--mount" flag: `),
      );
      assert.match(e.message, re);
      return true;
    });
  });
}

// ---------------------------------------------------------------------------
// parseTmpfs, parseByteSize

const TMPFS: [string, string, string[], boolean][] = [
  ["/run", "/run", [], false],
  ["/run:size=64m,mode=1777", "/run", ["size=64m", "mode=1777"], false],
  ["/x/../cache:exec,uid=1000,gid=1000", "/cache", ["exec", "uid=1000", "gid=1000"], false],
  ["/ro:ro", "/ro", ["ro"], true],
  ["/ro:ro,rw", "/ro", ["ro", "rw"], false],
];
for (const [spec, destination, extra, readOnly] of TMPFS) {
  Deno.test(`parseTmpfs() parses "${spec}": Docker's defaults, then the options`, () => {
    assert.deepEqual(parseTmpfs(spec), {
      type: "tmpfs",
      destination,
      readOnly,
      options: ["rw", "noexec", "nosuid", "nodev", ...extra],
      flag: "tmpfs",
      spec,
      mode: "",
    });
  });
}

for (
  const [spec, re] of [
    ["", /expected PATH/],
    ["run", /must be absolute/],
    ["/:size=1m", /cannot be "\/"/],
    ["/run:frob", /unknown tmpfs option "frob"/],
    ["/run:sync", /unknown tmpfs option "sync"/],
    ["/run:color=blue", /unknown tmpfs option "color=blue"/],
  ] as [string, RegExp][]
) {
  Deno.test(`parseTmpfs() rejects "${spec}"`, () => assert.throws(() => parseTmpfs(spec), re));
}

for (
  const [text, want] of [
    ["65536", 65536],
    ["64k", 65536],
    ["64m", 64 * 1024 * 1024],
    ["1g", 1024 ** 3],
    ["1.5GiB", 1.5 * 1024 ** 3],
    ["2 MB", 2 * 1024 * 1024],
    ["lots", undefined],
    ["-1", undefined],
  ] as [string, number | undefined][]
) {
  Deno.test(`parseByteSize() reads "${text}" as ${want}`, () =>
    assert.equal(parseByteSize(text), want));
}

// ---------------------------------------------------------------------------
// mountRequests, ociMounts

Deno.test("mountRequests() takes -v, --mount and --tmpfs in that order", () => {
  const r = mountRequests({
    volumes: ["/a:/a"],
    mounts: ["type=tmpfs,dst=/t"],
    tmpfs: ["/run"],
  });
  assert.deepEqual(r.map((x) => [x.flag, x.type, x.destination]), [
    ["volume", "bind", "/a"],
    ["mount", "tmpfs", "/t"],
    ["tmpfs", "tmpfs", "/run"],
  ]);
});

Deno.test("mountRequests() refuses two mounts on one destination, as Docker", () => {
  assert.throws(
    () => mountRequests({ volumes: ["v:/data"], tmpfs: ["/data/../data"] }),
    /^Error: Duplicate mount point: \/data$/,
  );
});

Deno.test("ociMounts() mounts parents first and gives each kind its options", () => {
  const requests = mountRequests({
    volumes: ["/host/x:/a/b/c:ro", "data:/a", "/anon"],
    mounts: ["type=bind,src=/h,dst=/a/b,bind-propagation=rshared,bind-recursive=disabled"],
    tmpfs: ["/a/t:size=1m"],
  });
  const mounts = ociMounts(requests, {
    "/a": { kind: "dir", name: "data", path: "/store/volumes/data/_data" },
    "/anon": { kind: "tmpfs", name: "f".repeat(64), options: ["size=2m"] },
  });
  assert.deepEqual(mounts, [
    {
      destination: "/a",
      type: "bind",
      source: "/store/volumes/data/_data",
      options: ["rbind", "rw"],
    },
    { destination: "/anon", type: "tmpfs", source: "tmpfs", options: ["size=2m"] },
    { destination: "/a/b", type: "bind", source: "/h", options: ["bind", "rw", "rshared"] },
    {
      destination: "/a/t",
      type: "tmpfs",
      source: "tmpfs",
      options: ["rw", "noexec", "nosuid", "nodev", "size=1m"],
    },
    { destination: "/a/b/c", type: "bind", source: "/host/x", options: ["rbind", "ro"] },
  ]);
});

Deno.test("ociMounts() makes a volume read-only when the mount or the volume says so", () => {
  const [ro] = ociMounts(mountRequests({ volumes: ["v:/v:ro"] }), {
    "/v": { kind: "dir", name: "v", path: "/d" },
  });
  assert.deepEqual(ro?.options, ["rbind", "ro"]);
  const [byVolume] = ociMounts(mountRequests({ volumes: ["v:/v"] }), {
    "/v": { kind: "dir", name: "v", path: "/d", readOnly: true },
  });
  assert.deepEqual(byVolume?.options, ["rbind", "ro"]);
});

Deno.test("ociMounts() refuses a volume request whose source was not prepared", () => {
  assert.throws(() => ociMounts(mountRequests({ volumes: ["v:/v"] }), {}), /was not prepared/);
});

const PATHS: [string, string][] = [
  ["/", "/"],
  ["/../../etc", "/etc"],
  ["//a///b//", "/a/b"],
  ["/a/./b/.", "/a/b"],
  ["/a/b/../../..", "/"],
  ["/a/b/../c", "/a/c"],
];
for (const [path, want] of PATHS) {
  Deno.test(`normalizePath() turns "${path}" into "${want}", never above /`, () => {
    assert.equal(normalizePath(path), want);
  });
}

// ---------------------------------------------------------------------------
// standardMounts()

const at = (mounts: Mount[], destination: string) =>
  mounts.find((m) => m.destination === destination);

Deno.test("standardMounts() gives /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys in order", () => {
  for (const ownNetwork of [false, true]) {
    const mounts = standardMounts({ ownNetwork, ttyGroupMapped: true });
    assert.deepEqual(mounts.map((m) => m.destination), [
      "/proc",
      "/dev",
      "/dev/pts",
      "/dev/shm",
      "/dev/mqueue",
      "/sys",
    ]);
  }
});

Deno.test("standardMounts() gives each kernel filesystem its type and source", () => {
  const mounts = standardMounts({ ownNetwork: true, ttyGroupMapped: true });
  assert.deepEqual(mounts.map((m) => [m.destination, m.type, m.source]), [
    ["/proc", "proc", "proc"],
    ["/dev", "tmpfs", "tmpfs"],
    ["/dev/pts", "devpts", "devpts"],
    ["/dev/shm", "tmpfs", "shm"],
    ["/dev/mqueue", "mqueue", "mqueue"],
    ["/sys", "sysfs", "sysfs"],
  ]);
});

Deno.test("standardMounts() binds the host /sys read-only without a network namespace", () => {
  assert.deepEqual(at(standardMounts({ ownNetwork: false, ttyGroupMapped: true }), "/sys"), {
    destination: "/sys",
    type: "bind",
    source: "/sys",
    options: ["rbind", "nosuid", "noexec", "nodev", "ro"],
  });
});

Deno.test("standardMounts() mounts a read-only sysfs with a network namespace", () => {
  assert.deepEqual(at(standardMounts({ ownNetwork: true, ttyGroupMapped: true }), "/sys"), {
    destination: "/sys",
    type: "sysfs",
    source: "sysfs",
    options: ["nosuid", "noexec", "nodev", "ro"],
  });
});

Deno.test("standardMounts() gives devpts gid=5 only when the tty group is mapped", () => {
  const pts = (mapped: boolean) =>
    at(standardMounts({ ownNetwork: false, ttyGroupMapped: mapped }), "/dev/pts")?.options ?? [];
  assert.equal(pts(true).includes("gid=5"), true);
  assert.equal(pts(false).some((o) => o.startsWith("gid=")), false);
  for (const mapped of [true, false]) {
    for (const o of ["newinstance", "ptmxmode=0666", "mode=0620", "nosuid", "noexec"]) {
      assert.ok(pts(mapped).includes(o), `${o} (mapped: ${mapped})`);
    }
  }
});

Deno.test("standardMounts() makes every standard mount nosuid, and all but /dev and /dev/pts nodev", () => {
  for (const ownNetwork of [false, true]) {
    for (const m of standardMounts({ ownNetwork, ttyGroupMapped: true })) {
      assert.ok(m.options?.includes("nosuid"), m.destination);
      const devices = m.destination === "/dev" || m.destination === "/dev/pts";
      assert.equal(m.options?.includes("nodev"), !devices, m.destination);
    }
  }
});

Deno.test("standardMounts() returns a fresh list each call", () => {
  const a = standardMounts({ ownNetwork: false, ttyGroupMapped: true });
  a.push({ destination: "/x", type: "bind", source: "/x" });
  a[0]!.options!.push("ro");
  const b = standardMounts({ ownNetwork: false, ttyGroupMapped: true });
  assert.equal(b.length, 6);
  assert.ok(!b[0]!.options!.includes("ro"));
});

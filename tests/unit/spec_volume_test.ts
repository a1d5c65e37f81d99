// Table tests of volume parsing (-v) and the standard mounts, as OCI mounts.
import assert from "node:assert/strict";
import { standardMounts } from "../../lib/spec/defaults.ts";
import { parseVolume, type VolumeSpec } from "../../lib/spec/generate.ts";
import { normalizePath } from "../../lib/util/path.ts";
import type { Mount } from "../../lib/spec/types.ts";

const VOLUMES: [string, VolumeSpec][] = [
  ["/a:/b", { source: "/a", target: "/b", readOnly: false }],
  ["/a:/b:ro", { source: "/a", target: "/b", readOnly: true }],
  ["/a:/b:rw", { source: "/a", target: "/b", readOnly: false }],
  ["/a:/b:ro,z", { source: "/a", target: "/b", readOnly: true }],
  ["/a:/b:Z,rw", { source: "/a", target: "/b", readOnly: false }],
  ["/a:/b:ro,rw", { source: "/a", target: "/b", readOnly: false }],
  ["/a:/b:", { source: "/a", target: "/b", readOnly: false }],
  ["/a/../c//d/:/x/./y", { source: "/c/d", target: "/x/y", readOnly: false }],
];
for (const [spec, want] of VOLUMES) {
  Deno.test(`parseVolume() parses "${spec}"`, () => assert.deepEqual(parseVolume(spec), want));
}

const BAD: [string, RegExp][] = [
  ["/a", /expected HOST-PATH:CONTAINER-PATH/],
  [":/b", /expected HOST-PATH:CONTAINER-PATH/],
  ["/a:", /expected HOST-PATH:CONTAINER-PATH/],
  ["data:/b", /named volumes are not supported yet/],
  ["./data:/b", /named volumes are not supported yet/],
  ["/a:b", /the container path "b" must be absolute/],
  ["/a:/b:rx", /unknown option "rx"/],
  ["/a:/b:ro:x", /expected HOST-PATH/],
  ["/a:/", /cannot be "\/"/],
  ["/a:/x/..", /cannot be "\/"/],
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

// Table tests of volume parsing and the standard mounts.
import assert from "node:assert/strict";
import { normalizePath, parseVolume, standardMounts } from "../../lib/runtime/mounts.ts";

const VOLUMES: [string, { source: string; target: string; readOnly: boolean }][] = [
  ["/a:/b", { source: "/a", target: "/b", readOnly: false }],
  ["/a:/b:ro", { source: "/a", target: "/b", readOnly: true }],
  ["/a:/b:rw", { source: "/a", target: "/b", readOnly: false }],
  ["/a:/b:ro,z", { source: "/a", target: "/b", readOnly: true }],
  ["/a/../c//d/:/x/./y", { source: "/c/d", target: "/x/y", readOnly: false }],
];
for (const [spec, want] of VOLUMES) {
  Deno.test(`parseVolume() parses "${spec}"`, () => assert.deepEqual(parseVolume(spec), want));
}

const BAD: [string, RegExp][] = [
  ["/a", /expected HOST-PATH:CONTAINER-PATH/],
  ["data:/b", /named volumes are not supported yet/],
  ["/a:b", /must be absolute/],
  ["/a:/b:rx", /unknown option "rx"/],
  ["/a:/b:ro:x", /expected HOST-PATH/],
];
for (const [spec, re] of BAD) {
  Deno.test(`parseVolume() rejects "${spec}"`, () => assert.throws(() => parseVolume(spec), re));
}

Deno.test("normalizePath() never climbs above /", () => {
  assert.equal(normalizePath("/../../etc"), "/etc");
  assert.equal(normalizePath("/"), "/");
});

Deno.test("standardMounts() binds the host /sys read-only without a network namespace", () => {
  const sys = standardMounts({ ownNetwork: false, ttyGroupMapped: true }).find((m) =>
    m.target === "/sys"
  );
  assert.equal(sys?.kind, "bind");
  assert.equal(sys?.attrs.readOnly, true);
  const own = standardMounts({ ownNetwork: true, ttyGroupMapped: true }).find((m) =>
    m.target === "/sys"
  );
  assert.equal(own?.kind === "fs" && own.fstype, "sysfs");
});

Deno.test("standardMounts() gives devpts gid=5 only when the tty group is mapped", () => {
  const pts = (mapped: boolean) =>
    standardMounts({ ownNetwork: false, ttyGroupMapped: mapped }).find((m) =>
      m.target === "/dev/pts"
    );
  const a = pts(true), b = pts(false);
  assert.equal(a?.kind === "fs" && a.options.gid, "5");
  assert.equal(b?.kind === "fs" && "gid" in b.options, false);
});

Deno.test("standardMounts() refuses symlinks on every standard target", () => {
  for (const m of standardMounts({ ownNetwork: false, ttyGroupMapped: true })) {
    assert.equal(m.noSymlinks, true, m.target);
  }
});

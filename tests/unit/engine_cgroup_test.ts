// The engine's cgroup v2 helpers: discovery from mountinfo and /proc/self/cgroup, the directory of
// linux.cgroupsPath, and the conversions from the spec's resources to v2 files.
import assert from "node:assert/strict";
import {
  blkioToIoWeight,
  cgroupDir,
  resourceFiles,
  sharesToWeight,
} from "../../lib/engine/cgroup.ts";
import { cgroup2Mount, parseOwnCgroup } from "../../lib/host/cgroup.ts";
import { parseMountInfo } from "../../lib/host/mountinfo.ts";

const HYBRID = [
  "30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755",
  "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw",
  "32 30 0:28 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory",
].join("\n");
const PURE =
  "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw";

Deno.test("cgroup2Mount() finds the v2 hierarchy on hybrid and pure hosts, null without", () => {
  const at = (text: string) => cgroup2Mount(parseMountInfo(text))?.mountPoint ?? null;
  assert.equal(at(HYBRID), "/sys/fs/cgroup/unified");
  assert.equal(at(PURE), "/sys/fs/cgroup");
  assert.equal(at(HYBRID.split("\n")[2]!), null);
});

Deno.test("parseOwnCgroup() reads the 0:: line of /proc/self/cgroup", () => {
  assert.equal(
    parseOwnCgroup("12:memory:/x\n0::/user.slice/user-1000.slice/session-2.scope\n"),
    "/user.slice/user-1000.slice/session-2.scope",
  );
  assert.equal(parseOwnCgroup("12:memory:/x\n"), null);
});

for (
  const [path, own, want] of [
    ["/trun/c1", "/user.slice", "/sys/fs/cgroup/trun/c1"],
    ["c1", "/user.slice/app.scope", "/sys/fs/cgroup/user.slice/app.scope/c1"],
    ["a//b/./c", "/", "/sys/fs/cgroup/a/b/c"],
  ] as const
) {
  Deno.test(`cgroupDir() places "${path}" from "${own}" at ${want}`, () => {
    assert.equal(cgroupDir("/sys/fs/cgroup", own, path), want);
  });
}

Deno.test("cgroupDir() refuses a path that climbs with ..", () => {
  assert.throws(() => cgroupDir("/sys/fs/cgroup", "/", "/a/../../etc"), /"\.\."/);
});

for (const [shares, weight] of [[2, 1], [1024, 39], [262144, 10000], [0, 0]] as const) {
  Deno.test(`sharesToWeight(${shares}) is ${weight}, as runc converts`, () => {
    assert.equal(sharesToWeight(shares), weight);
  });
}

for (const [w, want] of [[10, 1], [500, 4950], [1000, 10000]] as const) {
  Deno.test(`blkioToIoWeight(${w}) is ${want}`, () => assert.equal(blkioToIoWeight(w), want));
}

Deno.test("resourceFiles() converts Docker's limits to cgroup v2 files", () => {
  const { files, unsupported } = resourceFiles({
    memory: { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20 },
    cpu: { quota: 200000, period: 100000, shares: 1024, cpus: "0-1" },
    pids: { limit: 100 },
    blockIO: { weight: 500 },
  });
  assert.deepEqual(files, [
    ["memory.low", String(32 << 20)],
    ["memory.max", String(64 << 20)],
    // The spec's swap is memory + swap; v2's swap.max is the swap alone.
    ["memory.swap.max", String(64 << 20)],
    ["cpu.weight", "39"],
    ["cpu.max", "200000 100000"],
    ["cpuset.cpus", "0-1"],
    ["pids.max", "100"],
    ["io.weight", "default 4950"],
  ]);
  assert.deepEqual(unsupported, []);
});

Deno.test("resourceFiles() writes max for unlimited values and names what v2 lacks", () => {
  const { files, unsupported } = resourceFiles({
    memory: { limit: -1, swap: -1, kernel: 1 << 20 },
    cpu: { quota: -1, period: 50000 },
    pids: { limit: 0 },
    unified: { "memory.high": "1G", "../escape": "x" },
  });
  assert.deepEqual(files, [
    ["memory.max", "max"],
    ["memory.swap.max", "max"],
    ["cpu.max", "max 50000"],
    ["pids.max", "max"],
    ["memory.high", "1G"],
  ]);
  assert.deepEqual(unsupported, ["memory.kernel", "unified.../escape"]);
});

Deno.test("resourceFiles() of empty resources writes nothing", () => {
  assert.deepEqual(resourceFiles({}), { files: [], unsupported: [] });
});

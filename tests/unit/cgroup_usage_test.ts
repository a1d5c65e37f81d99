/**
 * Unit tests of the cgroup side of pause and stats: cgroup.events and the
 * freeze handshake on fake cgroup directories, whose-cgroup checks, the
 * parsers of cpu.stat/memory.stat/io.stat/net/dev and /proc/PID/stat, the
 * CPU % and memory arithmetic, a sample from a fake cgroup and one from
 * /proc, and Docker's units (go-units' BytesSize).
 */
import assert from "node:assert/strict";
import { isFrozen, parseCgroupEvents, setFrozen } from "../../lib/cgroup/freeze.ts";
import { holdsOnly } from "../../lib/cgroup/container_cgroup.ts";
import {
  cpuPercent,
  memoryLimit,
  memoryUsage,
  parseFlatKeyed,
  parseIoStat,
  parseNetDev,
  parseProcStat,
  sampleUsage,
} from "../../lib/cgroup/stats.ts";
import { binarySize } from "../../lib/cli/format.ts";

async function fakeCgroup(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "trun-fake-cgroup-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  return dir;
}

Deno.test("parseCgroupEvents() and isFrozen() read cgroup.events", async () => {
  assert.deepEqual(parseCgroupEvents("populated 1\nfrozen 0\n"), { populated: 1, frozen: 0 });
  const dir = await fakeCgroup({ "cgroup.events": "populated 1\nfrozen 1\n" });
  try {
    assert.equal(isFrozen(dir), true);
    await Deno.writeTextFile(`${dir}/cgroup.events`, "populated 1\nfrozen 0\n");
    assert.equal(isFrozen(dir), false);
    assert.equal(isFrozen(`${dir}/missing`), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("setFrozen() writes cgroup.freeze and returns once cgroup.events agrees", async () => {
  const dir = await fakeCgroup({
    "cgroup.freeze": "0\n",
    "cgroup.events": "populated 1\nfrozen 0\n",
  });
  try {
    // The "kernel" reports frozen a little later.
    const later = setTimeout(
      () => Deno.writeTextFileSync(`${dir}/cgroup.events`, "populated 1\nfrozen 1\n"),
      30,
    );
    await setFrozen(dir, true, 2000);
    clearTimeout(later);
    assert.equal(Deno.readTextFileSync(`${dir}/cgroup.freeze`), "1");
    Deno.writeTextFileSync(`${dir}/cgroup.events`, "populated 1\nfrozen 0\n");
    await setFrozen(dir, false, 2000);
    assert.equal(Deno.readTextFileSync(`${dir}/cgroup.freeze`), "0");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("setFrozen() that never completes thaws again and names the cgroup", async () => {
  const dir = await fakeCgroup({
    "cgroup.freeze": "0\n",
    "cgroup.events": "populated 1\nfrozen 0\n",
  });
  try {
    await assert.rejects(() => setFrozen(dir, true, 100), {
      message:
        `the cgroup "${dir}" did not report "frozen 1" in cgroup.events within 0.1 s (thawed again)`,
    });
    assert.equal(Deno.readTextFileSync(`${dir}/cgroup.freeze`), "0");
    await assert.rejects(() => setFrozen(`${dir}/nothing`, true, 100), /no cgroup v2 freezer/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("holdsOnly() takes a cgroup for a container's only when nothing else is in it", () => {
  const members = new Set([10, 11, 12]);
  assert.equal(holdsOnly([10, 12], members), true);
  assert.equal(holdsOnly([10, 99], members), false);
  assert.equal(holdsOnly([], members), false);
  // A process listed, then gone before the members were listed.
  assert.equal(holdsOnly([10, 99], members, (p) => p === 99), true);
});

Deno.test("the cgroup file parsers read cpu.stat, memory.stat and io.stat", () => {
  const cpu = parseFlatKeyed("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n");
  assert.equal(cpu.get("usage_usec"), 2_500_000);
  assert.deepEqual(
    parseIoStat(
      "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n" +
        "253:1 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
    ),
    { read: 4196, write: 8192 },
  );
  assert.deepEqual(parseIoStat(""), { read: 0, write: 0 });
});

Deno.test("parseNetDev() sums the interfaces but loopback", () => {
  const text = [
    "Inter-|   Receive                                                |  Transmit",
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
    "    lo:    5000      10    0    0    0     0          0         0     5000      10    0    0    0     0       0          0",
    "  eth0:    1500       3    0    0    0     0          0         0      700       2    0    0    0     0       0          0",
    "   tap0:     100       1    0    0    0     0          0         0       50       1    0    0    0     0       0          0",
  ].join("\n");
  assert.deepEqual(parseNetDev(text), { rx: 1600, tx: 750 });
});

Deno.test("parseProcStat() adds the CPU times and reads the threads, command names with spaces too", () => {
  const stat =
    "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 4 0 12345 1000 10";
  assert.deepEqual(parseProcStat(stat), { ticks: 210, threads: 4 });
});

Deno.test("cpuPercent() is CPU time over wall time between samples, else since the start", () => {
  const prev = { at: 10_000, cpuNs: 1e9 };
  // 0.5 s of CPU in 1 s: 50%; 2 s in 1 s (two CPUs busy): 200%.
  assert.equal(cpuPercent({ at: 11_000, cpuNs: 1.5e9 }, prev, undefined), 50);
  assert.equal(cpuPercent({ at: 11_000, cpuNs: 3e9 }, prev, undefined), 200);
  // A counter that went back (a process left) is no negative use.
  assert.equal(cpuPercent({ at: 11_000, cpuNs: 0.5e9 }, prev, undefined), 0);
  assert.equal(cpuPercent({ at: 14_000, cpuNs: 1e9 }, undefined, 10_000), 25);
  assert.equal(cpuPercent({ at: 14_000, cpuNs: 1e9 }, undefined, undefined), undefined);
  assert.equal(cpuPercent({ at: 14_000 }, prev, 0), undefined);
});

Deno.test("memoryUsage() leaves out inactive file cache; memoryLimit() reads memory.max", () => {
  assert.equal(memoryUsage(10_000, new Map([["inactive_file", 4000]])), 6000);
  assert.equal(memoryUsage(1000, new Map([["inactive_file", 4000]])), 0);
  assert.equal(memoryUsage(1000, new Map()), 1000);
  assert.equal(memoryLimit("104857600\n", 8e9), 104857600);
  assert.equal(memoryLimit("max\n", 8e9), 8e9);
  assert.equal(memoryLimit(null, 8e9), 8e9);
});

Deno.test("binarySize() prints go-units' BytesSize", () => {
  const cases: [number, string][] = [
    [0, "0B"],
    [512, "512B"],
    [1536, "1.5KiB"],
    [1.5 * 1024 * 1024, "1.5MiB"],
    [24683584 * 1024, "23.54GiB"],
    [8 * 1024 ** 3 - 1, "8GiB"],
    [1023, "1023B"],
  ];
  for (const [n, want] of cases) assert.equal(binarySize(n), want, String(n));
});

Deno.test("sampleUsage() reads a cgroup's files where they exist", async () => {
  const dir = await fakeCgroup({
    "cpu.stat": "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n",
    "memory.current": "20971520\n",
    "memory.stat": "anon 10485760\ninactive_file 4194304\n",
    "memory.max": "104857600\n",
    "pids.current": "3\n",
    "io.stat": "8:0 rbytes=1000 wbytes=2000 rios=1 wios=1 dbytes=0 dios=0\n",
  });
  try {
    const s = sampleUsage(
      { pid: Deno.pid, cgroup: dir, processes: () => assert.fail("no /proc fallback wanted") },
      8e9,
    );
    assert.equal(s.cpuNs, 3e9);
    assert.equal(s.memory, 20971520 - 4194304);
    assert.equal(s.memoryLimit, 104857600);
    assert.equal(s.pids, 3);
    assert.deepEqual(s.block, { read: 1000, write: 2000 });
    // This process is on the caller's network: none of it is the container's.
    assert.deepEqual(s.net, { rx: 0, tx: 0 });
    assert.deepEqual(s.notes, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sampleUsage() without a cgroup falls back to /proc and says so", () => {
  const s = sampleUsage({ pid: Deno.pid, processes: () => [Deno.pid] }, 8e9);
  assert.ok(s.cpuNs !== undefined && s.cpuNs > 0);
  assert.ok(s.memory !== undefined && s.memory > 1024 * 1024, String(s.memory));
  assert.equal(s.memoryLimit, 8e9);
  // Deno runs several threads.
  assert.ok(s.pids !== undefined && s.pids > 1);
  assert.equal(s.notes.length, 4, s.notes.join("\n"));
  assert.match(s.notes.join("\n"), /^CPU: .*no cgroup of its own/m);
  assert.match(s.notes.join("\n"), /^MEM: .*no limit is enforced/m);
});

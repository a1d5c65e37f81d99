/**
 * Unit tests of lib/spec/resources.ts: Docker's resource flags as
 * linux.resources, with Docker's units and messages, the checks of an
 * update against the current limits, and inspect's HostConfig fields.
 */
import assert from "node:assert/strict";
import {
  hostConfigResources,
  parseMemoryBytes,
  parseNanoCpus,
  parseResourceFlags,
  ResourceError,
  resourcesFromFlags,
  updateResources,
} from "../../lib/spec/resources.ts";
import { resourceFlagValues } from "../../lib/cli/resource_flags.ts";

const MiB = 1024 * 1024;

Deno.test("parseMemoryBytes() reads go-units' RAMInBytes forms", () => {
  const cases: [string, number][] = [
    ["1024", 1024],
    ["10k", 10 * 1024],
    ["512m", 512 * MiB],
    ["512M", 512 * MiB],
    ["512mb", 512 * MiB],
    ["512MiB", 512 * MiB],
    ["1.5g", 1.5 * 1024 * MiB],
    ["2 GB", 2 * 1024 * MiB],
    ["1t", 1024 ** 4],
  ];
  for (const [text, want] of cases) {
    assert.equal(parseMemoryBytes(text, "-m, --memory"), want, text);
  }
});

Deno.test("parseMemoryBytes() refuses what Docker refuses, with its message", () => {
  for (const bad of ["", "abc", "-1", "10x", "1.2.3m", "m"]) {
    assert.throws(
      () => parseMemoryBytes(bad, "-m, --memory"),
      (e: Error) =>
        e instanceof ResourceError &&
        e.message === `invalid argument "${bad}" for "-m, --memory" flag: invalid size: '${bad}'`,
      bad,
    );
  }
});

Deno.test("parseNanoCpus() reads decimals and bounds them by the host's CPUs", () => {
  assert.equal(parseNanoCpus("1.5", 4), 1_500_000_000);
  assert.equal(parseNanoCpus("0.01", 4), 10_000_000);
  assert.equal(parseNanoCpus("0", 4), 0);
  assert.throws(() => parseNanoCpus("5", 4), {
    message: "Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available",
  });
  assert.throws(() => parseNanoCpus("0.001", 4), /Range of CPUs/);
  assert.throws(() => parseNanoCpus("one", 4), {
    message: 'invalid argument "one" for "--cpus" flag: failed to parse one as a rational number',
  });
});

Deno.test("resourcesFromFlags() maps each flag to its linux.resources field", () => {
  const r = resourcesFromFlags({
    memory: "100m",
    memorySwap: "300m",
    memoryReservation: "50m",
    cpus: "2",
    cpuShares: "512",
    cpusetCpus: "0-1",
    cpusetMems: "0",
    pidsLimit: "100",
    blkioWeight: "300",
  }, 4);
  assert.deepEqual(r, {
    memory: { limit: 100 * MiB, reservation: 50 * MiB, swap: 300 * MiB },
    cpu: { shares: 512, period: 100000, quota: 200000, cpus: "0-1", mems: "0" },
    pids: { limit: 100 },
    blockIO: { weight: 300 },
  });
  assert.deepEqual(resourcesFromFlags({}, 4), {});
  assert.deepEqual(resourcesFromFlags({ pidsLimit: "0" }, 4), { pids: { limit: -1 } });
  assert.deepEqual(resourcesFromFlags({ pidsLimit: "-1" }, 4), { pids: { limit: -1 } });
  assert.deepEqual(resourcesFromFlags({ memory: "10m", memorySwap: "-1" }, 4), {
    memory: { limit: 10 * MiB, swap: -1 },
  });
  assert.deepEqual(resourcesFromFlags({ cpus: "0.5" }, 4).cpu, { period: 100000, quota: 50000 });
  assert.deepEqual(resourcesFromFlags({ cpuPeriod: "50000", cpuQuota: "25000" }, 4).cpu, {
    period: 50000,
    quota: 25000,
  });
});

Deno.test("resourcesFromFlags() refuses with dockerd's messages", () => {
  const cases: [Parameters<typeof resourcesFromFlags>[0], string][] = [
    [{ memory: "4m" }, "Minimum memory limit allowed is 6MB"],
    [
      { memorySwap: "100m" },
      "You should always set the Memory limit when using Memoryswap limit, see usage",
    ],
    [
      { memory: "100m", memorySwap: "50m" },
      "Minimum memoryswap limit should be larger than memory limit, see usage",
    ],
    [{ memoryReservation: "1m" }, "Minimum memory reservation allowed is 6MB"],
    [
      { memory: "10m", memoryReservation: "20m" },
      "Minimum memory limit can not be less than memory reservation limit, see usage",
    ],
    [
      { cpus: "1", cpuPeriod: "1000" },
      "Conflicting options: Nano CPUs and CPU Period cannot both be set",
    ],
    [
      { cpus: "1", cpuQuota: "1000" },
      "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
    ],
    [
      { cpuPeriod: "100" },
      "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
    ],
    [{ cpuQuota: "100" }, "CPU cfs quota can not be less than 1ms (i.e. 1000)"],
    [{ blkioWeight: "5" }, "Range of blkio weight is from 10 to 1000"],
    [{ cpusetCpus: "1-0" }, "Invalid value 1-0 for cpuset cpus"],
    [{ cpusetMems: "a" }, "Invalid value a for cpuset mems"],
    [
      { pidsLimit: "x" },
      `invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax`,
    ],
  ];
  for (const [flags, message] of cases) {
    assert.throws(() => resourcesFromFlags(flags, 2), { name: "ResourceError", message }, message);
  }
});

Deno.test("updateResources() merges a change into the current limits, with Docker's update rules", () => {
  const current = resourcesFromFlags({ memory: "100m", memorySwap: "200m", cpus: "1" }, 2);
  // A memory limit above the swap limit already set needs a new swap limit.
  assert.throws(() => updateResources(current, parseResourceFlags({ memory: "300m" }, 2)), {
    message:
      "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
  });
  assert.deepEqual(
    updateResources(current, parseResourceFlags({ memory: "300m", memorySwap: "400m" }, 2)).memory,
    { limit: 300 * MiB, swap: 400 * MiB },
  );
  // Swap alone is checked against the memory limit already set, not refused for lacking one.
  assert.deepEqual(
    updateResources(current, parseResourceFlags({ memorySwap: "150m" }, 2)).memory,
    { limit: 100 * MiB, swap: 150 * MiB },
  );
  const next = updateResources(
    current,
    parseResourceFlags({ pidsLimit: "20", cpuShares: "100" }, 2),
  );
  assert.deepEqual(next.pids, { limit: 20 });
  assert.deepEqual(next.cpu, { period: 100000, quota: 100000, shares: 100 });
  assert.throws(() => updateResources({}, parseResourceFlags({ memory: "1m" }, 2)), /6MB/);
  // The current document is not changed in place.
  assert.equal(current.pids, undefined);
});

Deno.test("hostConfigResources() gives Docker's HostConfig fields and zero values", () => {
  assert.deepEqual(hostConfigResources(undefined), {
    BlkioWeight: 0,
    CpuShares: 0,
    Memory: 0,
    NanoCpus: 0,
    CpuPeriod: 0,
    CpuQuota: 0,
    CpusetCpus: "",
    CpusetMems: "",
    MemoryReservation: 0,
    MemorySwap: 0,
    PidsLimit: null,
  });
  const r = resourcesFromFlags({
    memory: "100m",
    memorySwap: "-1",
    memoryReservation: "10m",
    cpus: "1.5",
    cpuShares: "512",
    cpusetCpus: "0",
    pidsLimit: "-1",
    blkioWeight: "500",
  }, 2);
  assert.deepEqual(hostConfigResources(r), {
    BlkioWeight: 500,
    CpuShares: 512,
    Memory: 100 * MiB,
    NanoCpus: 1_500_000_000,
    CpuPeriod: 100000,
    CpuQuota: 150000,
    CpusetCpus: "0",
    CpusetMems: "",
    MemoryReservation: 10 * MiB,
    MemorySwap: -1,
    PidsLimit: -1,
  });
});

Deno.test("resourceFlagValues() maps the command line's flag names", () => {
  const none = {
    "blkio-weight": undefined,
    "cpu-period": undefined,
    "cpu-quota": undefined,
    "cpu-shares": undefined,
    cpus: undefined,
    "cpuset-cpus": undefined,
    "cpuset-mems": undefined,
    memory: undefined,
    "memory-reservation": undefined,
    "memory-swap": undefined,
    "pids-limit": undefined,
  };
  assert.deepEqual(resourceFlagValues(none), {});
  assert.deepEqual(
    resourceFlagValues({ ...none, memory: "1g", "memory-swap": "-1", "pids-limit": "5" }),
    { memory: "1g", memorySwap: "-1", pidsLimit: "5" },
  );
});

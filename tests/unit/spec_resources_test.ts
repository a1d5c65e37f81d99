/**
 * The chain `run` and `create` use: Docker's resource flags → the spec's
 * `linux.resources` (with dockerd's default swap) → the cgroup v2 files
 * and values written; and which flag a file is named by in the warning.
 * (The flags' parsing and Docker's messages: resources_test.ts.)
 */
import assert from "node:assert/strict";
import {
  flagOfFile,
  type ResourceFlags,
  resourcesFromFlags,
  withDefaultSwap,
} from "../../lib/spec/resources.ts";
import { resourceFiles } from "../../lib/engine/cgroup.ts";

const MIB = 1024 * 1024;

const FILES: [string, ResourceFlags, [string, string][]][] = [
  ["--memory 512m (swap as much again, Docker's default)", { memory: "512m" }, [
    ["memory.max", String(512 * MIB)],
    ["memory.swap.max", String(512 * MIB)],
  ]],
  ["--memory 1g --memory-swap 1g (no swap)", { memory: "1g", memorySwap: "1g" }, [
    ["memory.max", String(1024 * MIB)],
    ["memory.swap.max", "0"],
  ]],
  ["--memory 10m --memory-swap -1 (unlimited swap)", { memory: "10m", memorySwap: "-1" }, [
    ["memory.max", String(10 * MIB)],
    ["memory.swap.max", "max"],
  ]],
  ["--memory-reservation 64m", { memoryReservation: "64m" }, [["memory.low", String(64 * MIB)]]],
  ["--cpus 2", { cpus: "2" }, [["cpu.max", "200000 100000"]]],
  ["--cpus 0.5", { cpus: "0.5" }, [["cpu.max", "50000 100000"]]],
  ["--cpu-quota 50000 --cpu-period 200000", { cpuQuota: "50000", cpuPeriod: "200000" }, [
    ["cpu.max", "50000 200000"],
  ]],
  ["--cpu-shares 1024", { cpuShares: "1024" }, [["cpu.weight", "39"]]],
  ["--cpuset-cpus 0-1 --cpuset-mems 0", { cpusetCpus: "0-1", cpusetMems: "0" }, [
    ["cpuset.cpus", "0-1"],
    ["cpuset.mems", "0"],
  ]],
  ["--pids-limit 5", { pidsLimit: "5" }, [["pids.max", "5"]]],
  ["--blkio-weight 500", { blkioWeight: "500" }, [["io.weight", "default 4950"]]],
];
for (const [what, flags, want] of FILES) {
  Deno.test(`resource flags ${what}`, () => {
    const resources = withDefaultSwap(resourcesFromFlags(flags, 2));
    assert.deepEqual(resourceFiles(resources).files, want);
  });
}

Deno.test("flagOfFile() names the flags the user gave", () => {
  assert.equal(flagOfFile("memory.swap.max", { memory: "1g" }), "--memory");
  assert.equal(flagOfFile("memory.swap.max", { memory: "1g", memorySwap: "2g" }), "--memory-swap");
  assert.equal(flagOfFile("cpu.max", { cpus: "1" }), "--cpus");
  assert.equal(flagOfFile("cpu.max", { cpuQuota: "50000" }), "--cpu-quota");
  assert.equal(flagOfFile("pids.max", { pidsLimit: "5" }), "--pids-limit");
});

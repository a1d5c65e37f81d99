/**
 * Docker's resource flags: parsing (units, `-1`, `--cpus` decimals), the
 * daemon's checks with its messages, and the spec's `linux.resources`
 * with Docker's arithmetic; then the cgroup v2 files they become.
 */
import assert from "node:assert/strict";
import {
  checkResources,
  flagOfFile,
  ociResources,
  parseCpuset,
  parseResourceFlags,
  type ResourceFlagValues,
} from "../../lib/spec/resources.ts";
import { resourceFiles } from "../../lib/engine/cgroup.ts";

const MIB = 1024 * 1024;
const HOST = { cpus: 2, onlineCpus: "0-1", onlineMems: "0" };

/** Flags → the files and values written (the whole chain run and create use). */
const FILES: [string, ResourceFlagValues, [string, string][]][] = [
  ["--memory 512m (swap as much again, Docker's default)", { memory: "512m" }, [
    ["memory.max", String(512 * MIB)],
    ["memory.swap.max", String(512 * MIB)],
  ]],
  ["--memory 1g --memory-swap 1g (no swap)", { memory: "1g", "memory-swap": "1g" }, [
    ["memory.max", String(1024 * MIB)],
    ["memory.swap.max", "0"],
  ]],
  ["--memory 10m --memory-swap -1 (unlimited swap)", { memory: "10m", "memory-swap": "-1" }, [
    ["memory.max", String(10 * MIB)],
    ["memory.swap.max", "max"],
  ]],
  ["--memory-reservation 64m", { "memory-reservation": "64m" }, [
    ["memory.low", String(64 * MIB)],
  ]],
  ["--cpus 2", { cpus: "2" }, [["cpu.max", "200000 100000"]]],
  ["--cpus 0.5", { cpus: "0.5" }, [["cpu.max", "50000 100000"]]],
  ["--cpu-quota 50000 --cpu-period 200000", { "cpu-quota": "50000", "cpu-period": "200000" }, [
    ["cpu.max", "50000 200000"],
  ]],
  ["--cpu-shares 1024", { "cpu-shares": "1024" }, [["cpu.weight", "39"]]],
  ["--cpu-shares 1 (clamped to 2)", { "cpu-shares": "1" }, [["cpu.weight", "1"]]],
  ["--cpuset-cpus 0-1 --cpuset-mems 0", { "cpuset-cpus": "0-1", "cpuset-mems": "0" }, [
    ["cpuset.cpus", "0-1"],
    ["cpuset.mems", "0"],
  ]],
  ["--pids-limit 5", { "pids-limit": "5" }, [["pids.max", "5"]]],
  ["--pids-limit -1 (unlimited: nothing to write)", { "pids-limit": "-1" }, []],
  ["--blkio-weight 500", { "blkio-weight": "500" }, [["io.weight", "default 4950"]]],
];
for (const [what, flags, want] of FILES) {
  Deno.test(`resource flags ${what}`, () => {
    const r = parseResourceFlags(flags);
    checkResources(r, HOST);
    const resources = ociResources(r);
    assert.deepEqual(resources ? resourceFiles(resources).files : [], want);
  });
}

/** Flag values Docker's CLI refuses, with its message. */
const BAD_VALUES: [ResourceFlagValues, string][] = [
  [{ memory: "lots" }, `invalid argument "lots" for "-m, --memory" flag: invalid size: 'lots'`],
  [{ "memory-swap": "-2" }, `invalid argument "-2" for "--memory-swap" flag: invalid size: '-2'`],
  [
    { cpus: "two" },
    `invalid argument "two" for "--cpus" flag: failed to parse two as a rational number`,
  ],
  [
    { cpus: "0.0000000001" },
    `invalid argument "0.0000000001" for "--cpus" flag: value is too precise`,
  ],
  [
    { "pids-limit": "x" },
    `invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax`,
  ],
];
for (const [flags, message] of BAD_VALUES) {
  Deno.test(`parseResourceFlags() refuses ${JSON.stringify(flags)} as Docker's CLI`, () => {
    assert.throws(() => parseResourceFlags(flags), (e: Error & { exitCode?: number }) => {
      assert.equal(e.message, message);
      assert.equal(e.exitCode, 125);
      return true;
    });
  });
}

/** Requests Docker's daemon refuses, with its message. */
const REFUSED: [ResourceFlagValues, string][] = [
  [{ memory: "4m" }, "Minimum memory limit allowed is 6MB"],
  [
    { memory: "64m", "memory-swap": "32m" },
    "Minimum memoryswap limit should be larger than memory limit, see usage",
  ],
  [
    { "memory-swap": "64m" },
    "You should always set the Memory limit when using Memoryswap limit, see usage",
  ],
  [{ "memory-reservation": "1m" }, "Minimum memory reservation allowed is 6MB"],
  [
    { memory: "32m", "memory-reservation": "64m" },
    "Minimum memory limit can not be less than memory reservation limit, see usage",
  ],
  [
    { cpus: "1", "cpu-period": "50000" },
    "Conflicting options: Nano CPUs and CPU Period cannot both be set",
  ],
  [
    { cpus: "1", "cpu-quota": "50000" },
    "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
  ],
  [{ cpus: "3" }, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"],
  [
    { "cpu-period": "999" },
    "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
  ],
  [{ "cpu-quota": "500" }, "CPU cfs quota can not be less than 1ms (i.e. 1000)"],
  [{ "cpuset-cpus": "1-0" }, "Invalid value 1-0 for cpuset cpus"],
  [{ "cpuset-cpus": "0-3" }, "Requested CPUs are not available - requested 0-3, available: 0-1"],
  [{ "cpuset-mems": "1" }, "Requested memory nodes are not available - requested 1, available: 0"],
  [{ "blkio-weight": "5" }, "Range of blkio weight is from 10 to 1000"],
];
for (const [flags, message] of REFUSED) {
  Deno.test(`checkResources() refuses ${JSON.stringify(flags)}: "${message}"`, () => {
    assert.throws(() => checkResources(parseResourceFlags(flags), HOST), (e: Error) => {
      assert.equal(e.message, message);
      return true;
    });
  });
}

Deno.test("checkResources() for update allows a swap limit alone", () => {
  checkResources(parseResourceFlags({ "memory-swap": "64m" }), HOST, true);
});

Deno.test("ociResources() of no flags is undefined", () => {
  assert.equal(ociResources(parseResourceFlags({})), undefined);
});

Deno.test("parseCpuset() reads ranges and lists, refuses the malformed", () => {
  assert.deepEqual(parseCpuset("0-2,5"), [0, 1, 2, 5]);
  assert.equal(parseCpuset("a"), null);
  assert.equal(parseCpuset("3-1"), null);
});

Deno.test("flagOfFile() names the flags the user gave", () => {
  assert.equal(flagOfFile("memory.swap.max", { memory: "1g" }), "--memory");
  assert.equal(
    flagOfFile("memory.swap.max", { memory: "1g", "memory-swap": "2g" }),
    "--memory-swap",
  );
  assert.equal(flagOfFile("cpu.max", { cpus: "1" }), "--cpus");
  assert.equal(flagOfFile("cpu.max", { "cpu-quota": "50000" }), "--cpu-quota");
  assert.equal(flagOfFile("pids.max", { "pids-limit": "5" }), "--pids-limit");
});

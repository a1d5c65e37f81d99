/**
 * Unit tests of lib/cli/stats.ts: Docker's stats rows (units, percentages,
 * zeros for a stopped container, `--` for what could not be read), the
 * table, JSON and template output, and the in-place redraw.
 */
import assert from "node:assert/strict";
import { redrawFrame, renderStats, type StatsItem, statsJson } from "../../lib/cli/stats.ts";
import { parseFormat } from "../../lib/cli/format.ts";
import { cid, containerRecord } from "./_container_records.ts";

const START = Date.parse("2024-01-01T12:00:00Z");
const MiB = 1024 * 1024;

const RUNNING: StatsItem = {
  rec: containerRecord({
    id: cid("ab"),
    name: "web",
    state: "running",
    pid: 10,
    startedAt: new Date(START).toISOString(),
  }),
  ref: "web",
  prev: { at: START + 9_000, cpuNs: 2e9, notes: [] },
  sample: {
    at: START + 10_000,
    cpuNs: 2.255e9,
    memory: 1.5 * MiB,
    memoryLimit: 7.6 * 1024 * MiB,
    net: { rx: 1450, tx: 648 },
    block: { read: 0, write: 4096 },
    pids: 3,
    notes: [],
  },
};

const STOPPED: StatsItem = {
  rec: containerRecord({ id: cid("cd"), name: "old", state: "exited" }),
  ref: "cd0000000000",
};

Deno.test("statsJson(): Docker's fields and units for a running container", () => {
  assert.deepEqual(statsJson(RUNNING, false), {
    BlockIO: "0B / 4.1kB",
    CPUPerc: "25.50%",
    Container: "web",
    ID: "ab0000000000",
    Name: "web",
    MemPerc: "0.02%",
    MemUsage: "1.5MiB / 7.6GiB",
    NetIO: "1.45kB / 648B",
    PIDs: "3",
  });
  assert.equal(statsJson(RUNNING, true).ID, cid("ab"));
});

Deno.test("statsJson(): the first sample's CPU % is over the time since the start", () => {
  const { prev: _p, ...first } = RUNNING;
  // 2.255 s of CPU in the 10 s since it started.
  assert.equal(statsJson(first, false).CPUPerc, "22.55%");
});

Deno.test("statsJson(): zeros for a container that does not run, -- for what is unknown, notes", () => {
  assert.deepEqual(statsJson(STOPPED, false), {
    BlockIO: "0B / 0B",
    CPUPerc: "0.00%",
    Container: "cd0000000000",
    ID: "cd0000000000",
    Name: "old",
    MemPerc: "0.00%",
    MemUsage: "0B / 0B",
    NetIO: "0B / 0B",
    PIDs: "0",
  });
  const { startedAt: _s, ...rec } = RUNNING.rec;
  const unknown: StatsItem = { rec, ref: "web", sample: { at: START, notes: ["MEM: from /proc"] } };
  assert.deepEqual(statsJson(unknown, false), {
    BlockIO: "--",
    CPUPerc: "--",
    Container: "web",
    ID: "ab0000000000",
    Name: "web",
    MemPerc: "--",
    MemUsage: "--",
    NetIO: "--",
    PIDs: "--",
    Notes: ["MEM: from /proc"],
  });
});

Deno.test("renderStats(): Docker's table, JSON lines, templates", () => {
  assert.deepEqual(renderStats([RUNNING, STOPPED], { format: parseFormat(""), noTrunc: false }), [
    "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O         BLOCK I/O    PIDS",
    "ab0000000000   web       25.50%    1.5MiB / 7.6GiB     0.02%     1.45kB / 648B   0B / 4.1kB   3",
    "cd0000000000   old       0.00%     0B / 0B             0.00%     0B / 0B         0B / 0B      0",
  ]);
  assert.deepEqual(renderStats([], { format: parseFormat("table"), noTrunc: false }), [
    "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS",
  ]);
  const [json] = renderStats([RUNNING], { format: parseFormat("json"), noTrunc: false });
  assert.equal(JSON.parse(json!).MemUsage, "1.5MiB / 7.6GiB");
  assert.deepEqual(
    renderStats([RUNNING], { format: parseFormat("{{.Name}}: {{.CPUPerc}}"), noTrunc: false }),
    ["web: 25.50%"],
  );
  assert.deepEqual(
    renderStats([RUNNING], {
      format: parseFormat("table {{.Container}}\t{{.MemUsage}}\t{{.PIDs}}"),
      noTrunc: false,
    }),
    ["CONTAINER   MEM USAGE / LIMIT   PIDS", "web         1.5MiB / 7.6GiB     3"],
  );
});

Deno.test("redrawFrame() draws over the previous frame without clearing first", () => {
  assert.equal(redrawFrame(["a", "b"]), "\x1b[Ha\x1b[K\nb\x1b[K\n\x1b[J");
});

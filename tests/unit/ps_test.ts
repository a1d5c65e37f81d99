/**
 * Unit tests of lib/cli/ps.ts: Docker's STATUS wording, the IMAGE and
 * COMMAND columns, which containers the flags and filters select, the
 * table, JSON and template output, the writable layer's size, and one run
 * of the command on a temporary store.
 */
import { IN_USERNS_ENV } from "../../lib/runtime/userns_exec.ts";
import assert from "node:assert/strict";
import {
  goQuote,
  imageColumn,
  main,
  parsePsFilters,
  type PsFilters,
  type PsItem,
  renderPs,
  selectContainers,
  statusText,
  treeSize,
} from "../../lib/cli/ps.ts";
import { UsageError } from "../../lib/cli/args.ts";
import { parseFormat } from "../../lib/cli/format.ts";
import type { ContainerStatus } from "../../lib/container/status.ts";
import { processStat } from "../../lib/engine/state.ts";
import { capture, cid, containerRecord, IMAGE_ID, withRecords } from "./_container_records.ts";

const NOW = Date.parse("2024-01-01T12:00:00Z");
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const DEF = { name: "ps", usage: "", summary: "", flags: {} };

const STATUS: [string, Partial<Parameters<typeof containerRecord>[0]>, ContainerStatus, string][] =
  [
    ["running for 5 s", { startedAt: ago(5_000) }, "running", "Up 5 seconds"],
    ["running for an hour", { startedAt: ago(3_600_000) }, "running", "Up About an hour"],
    ["running, start unknown", {}, "running", "Up"],
    ["created", {}, "created", "Created"],
    [
      "exited 0, 3 s ago",
      { startedAt: ago(10_000), finishedAt: ago(3_000), exitCode: 0 },
      "exited",
      "Exited (0) 3 seconds ago",
    ],
    [
      "killed 2 hours ago",
      { startedAt: ago(9e6), finishedAt: ago(7.2e6), exitCode: 137 },
      "exited",
      "Exited (137) 2 hours ago",
    ],
    ["failed to start", { exitCode: 127, error: "no such file" }, "exited", "Created"],
    ["end unrecorded", { startedAt: ago(10_000) }, "exited", "Exited"],
    ["being removed", {}, "removing", "Removal In Progress"],
  ];
for (const [what, over, status, want] of STATUS) {
  Deno.test(`statusText(): ${what} is "${want}"`, () => {
    const rec = containerRecord({ id: cid("a"), name: "x", ...over });
    assert.equal(statusText(rec, status, NOW), want);
  });
}

const IMAGE: [string, string, boolean, string][] = [
  ["busybox", IMAGE_ID, false, "busybox"],
  ["busybox:latest", IMAGE_ID, false, "busybox:latest"],
  ["docker.io/library/alpine:3.19", IMAGE_ID, false, "alpine:3.19"],
  [`busybox@sha256:${"1".repeat(64)}`, IMAGE_ID, false, "busybox"],
  [`busybox:1.36@sha256:${"1".repeat(64)}`, IMAGE_ID, false, "busybox:1.36"],
  ["localhost:5000/app", IMAGE_ID, false, "localhost:5000/app"],
  ["c".repeat(12), IMAGE_ID, false, "c".repeat(12)],
  [IMAGE_ID, IMAGE_ID, false, "c".repeat(12)],
  ["/srv/rootfs", "", false, "/srv/rootfs"],
  ["docker.io/library/alpine:3.19", IMAGE_ID, true, "docker.io/library/alpine:3.19"],
];
for (const [image, imageId, noTrunc, want] of IMAGE) {
  Deno.test(`imageColumn() shows "${image}"${noTrunc ? " untruncated" : ""} as "${want}"`, () => {
    const rec = containerRecord({ id: cid("a"), name: "x", image, imageId });
    assert.equal(imageColumn(rec, noTrunc), want);
  });
}

const QUOTE: [string, string][] = [
  ["sleep 1000", '"sleep 1000"'],
  ['sh -c "echo hi"', '"sh -c \\"echo hi\\""'],
  ["a\tb\n", '"a\\tb\\n"'],
  ["bell\u0007\u0001", '"bell\\a\\x01"'],
  ["sleep 100000000000…", '"sleep 100000000000…"'],
];
for (const [s, want] of QUOTE) {
  Deno.test(`goQuote() quotes ${JSON.stringify(s)} as Go's strconv.Quote`, () => {
    assert.equal(goQuote(s), want);
  });
}

// Newest first, as store.listRecords() returns them.
const ITEMS: PsItem[] = [
  {
    rec: containerRecord({
      id: cid("f1"),
      name: "web",
      image: "nginx:1.25",
      imageId: `sha256:${"e".repeat(64)}`,
      labels: { tier: "front", env: "prod" },
      created: ago(60_000),
      startedAt: ago(50_000),
      command: ["nginx", "-g", "daemon off; worker_processes 2;"],
    }),
    status: "running",
  },
  {
    rec: containerRecord({
      id: cid("e2"),
      name: "job",
      labels: { env: "dev" },
      created: ago(120_000),
      startedAt: ago(110_000),
      finishedAt: ago(100_000),
      exitCode: 3,
    }),
    status: "exited",
  },
  {
    rec: containerRecord({ id: cid("e3"), name: "fresh", created: ago(180_000) }),
    status: "created",
  },
  {
    rec: containerRecord({
      id: cid("d4"),
      name: "webcache",
      created: ago(240_000),
      startedAt: ago(230_000),
    }),
    status: "running",
  },
  {
    rec: containerRecord({
      id: cid("c5"),
      name: "ok",
      created: ago(300_000),
      startedAt: ago(290_000),
      finishedAt: ago(280_000),
      exitCode: 0,
    }),
    status: "exited",
  },
];

const NO_FILTERS: PsFilters = {
  status: [],
  names: [],
  ids: [],
  labels: [],
  ancestors: [],
  exited: [],
};

const SELECT: [string, { all?: boolean; last?: number; filters?: string[] }, string[]][] = [
  ["running ones by default", {}, ["web", "webcache"]],
  ["all with -a", { all: true }, ["web", "job", "fresh", "webcache", "ok"]],
  ["the latest of any state with -n 1", { last: 1 }, ["web"]],
  ["the last 2 with -n 2", { last: 2 }, ["web", "job"]],
  ["status=exited without -a", { filters: ["status=exited"] }, ["job", "ok"]],
  ["status=created or exited", { filters: ["status=created", "status=exited"] }, [
    "job",
    "fresh",
    "ok",
  ]],
  ["name= as a substring", { all: true, filters: ["name=web"] }, ["web", "webcache"]],
  ["id= as a prefix", { all: true, filters: ["id=e"] }, ["job", "fresh"]],
  ["label=KEY", { all: true, filters: ["label=env"] }, ["web", "job"]],
  ["label=KEY=VALUE", { all: true, filters: ["label=env=dev"] }, ["job"]],
  ["labels all apply", { all: true, filters: ["label=env", "label=tier=front"] }, ["web"]],
  ["ancestor= by name as recorded", { all: true, filters: ["ancestor=nginx:1.25"] }, ["web"]],
  ["ancestor= in another form", { all: true, filters: ["ancestor=busybox:latest"] }, [
    "job",
    "fresh",
    "webcache",
    "ok",
  ]],
  ["ancestor= by image id prefix", { all: true, filters: ["ancestor=eeee"] }, ["web"]],
  ["exited=CODE", { all: true, filters: ["exited=0"] }, ["ok"]],
  ["before=NAME", { all: true, filters: ["before=fresh"] }, ["webcache", "ok"]],
  ["since=ID prefix", { all: true, filters: ["since=e3"] }, ["web", "job"]],
  ["filters, then the limit", { last: 1, filters: ["status=exited"] }, ["job"]],
  ["keys all apply", { filters: ["status=running", "name=cache"] }, ["webcache"]],
];
for (const [what, opts, want] of SELECT) {
  Deno.test(`selectContainers(): ${what}`, () => {
    const filters = parsePsFilters(DEF, opts.filters ?? []);
    const got = selectContainers(ITEMS, {
      all: opts.all ?? false,
      last: opts.last ?? -1,
      filters,
    });
    assert.deepEqual(got.map((i) => i.rec.name), want);
  });
}

Deno.test("selectContainers(): ancestor= matches the id the store resolved", () => {
  const filters = { ...NO_FILTERS, ancestors: [{ value: "mybox:1", imageId: IMAGE_ID }] };
  const got = selectContainers(ITEMS, { all: true, last: -1, filters });
  assert.deepEqual(got.map((i) => i.rec.name), ["job", "fresh", "webcache", "ok"]);
});

Deno.test("selectContainers(): before= a container that does not exist is No such container", () => {
  const filters = { ...NO_FILTERS, before: "nosuch" };
  assert.throws(
    () => selectContainers(ITEMS, { all: true, last: -1, filters }),
    (e: Error & { exitCode?: number }) =>
      e.message === "No such container: nosuch" && e.exitCode === 1,
  );
});

const BAD_FILTERS: [string, RegExp][] = [
  ["status=sleeping", /invalid filter "status=sleeping": status is one of created, /],
  ["color=red", /invalid filter "color=red": trun supports status=/],
  ["exited=x", /exited takes an integer/],
  ["name", /bad format of filter "name": expected name=value/],
];
for (const [f, want] of BAD_FILTERS) {
  Deno.test(`parsePsFilters() refuses "${f}" as a usage error`, () => {
    assert.throws(() => parsePsFilters(DEF, [f]), (e: Error) => e instanceof UsageError);
    assert.throws(() => parsePsFilters(DEF, [f]), want);
  });
}

const OPTS = { noTrunc: false, quiet: false, size: false, now: NOW };
const RUNNING = ITEMS.filter((i) => i.status === "running");

Deno.test("renderPs() prints Docker's table: quoted, truncated command, ages, status", () => {
  const lines = renderPs(ITEMS.slice(0, 3), { ...OPTS, format: { kind: "table" } });
  assert.deepEqual(lines, [
    "CONTAINER ID   IMAGE        COMMAND                  CREATED              STATUS                          PORTS     NAMES",
    'f10000000000   nginx:1.25   "nginx -g daemon off…"   About a minute ago   Up 50 seconds                             web',
    'e20000000000   busybox      "sleep 1000"             2 minutes ago        Exited (3) About a minute ago             job',
    'e30000000000   busybox      "sleep 1000"             3 minutes ago        Created                                   fresh',
  ]);
});

Deno.test("renderPs() -q prints ids, --no-trunc full ids and commands", () => {
  assert.deepEqual(renderPs(RUNNING, { ...OPTS, quiet: true, format: { kind: "table" } }), [
    "f10000000000",
    "d40000000000",
  ]);
  assert.deepEqual(
    renderPs(RUNNING, { ...OPTS, quiet: true, noTrunc: true, format: { kind: "table" } }),
    [cid("f1"), cid("d4")],
  );
  const [, first] = renderPs(RUNNING, { ...OPTS, noTrunc: true, format: { kind: "table" } });
  assert.ok(
    first!.startsWith(`${cid("f1")}   nginx:1.25   "nginx -g daemon off; worker_processes 2;"`),
    first,
  );
});

Deno.test("renderPs() --format json: Docker's keys, sorted", () => {
  const [line] = renderPs(ITEMS.slice(1, 2), { ...OPTS, format: parseFormat("json") });
  assert.deepEqual(JSON.parse(line!), {
    Command: '"sleep 1000"',
    CreatedAt: "2024-01-01 11:58:00 +0000 UTC",
    ID: "e20000000000",
    Image: "busybox",
    Labels: "env=dev",
    LocalVolumes: "0",
    Mounts: "",
    Names: "job",
    Networks: "",
    Ports: "",
    RunningFor: "2 minutes ago",
    Size: "0B",
    State: "exited",
    Status: "Exited (3) About a minute ago",
  });
});

Deno.test("renderPs() Go templates: plain, table with Docker's headers, labels sorted", () => {
  assert.deepEqual(
    renderPs(RUNNING, { ...OPTS, format: parseFormat("{{.Names}} {{.State}} {{.Labels}}") }),
    ["web running env=prod,tier=front", "webcache running "],
  );
  assert.deepEqual(
    renderPs(RUNNING, { ...OPTS, format: parseFormat("table {{.ID}}\\t{{.RunningFor}}") }),
    [
      "CONTAINER ID   CREATED",
      "f10000000000   About a minute ago",
      "d40000000000   4 minutes ago",
    ],
  );
});

Deno.test("renderPs() --size adds SIZE: writable layer and virtual size", () => {
  const items: PsItem[] = [
    { ...ITEMS[0]!, sizeRw: 1234, sizeImage: 4_261_550 },
    { ...ITEMS[3]!, sizeRw: 0 },
  ];
  const lines = renderPs(items, { ...OPTS, size: true, format: { kind: "table" } });
  assert.match(lines[0]!, /NAMES {6}SIZE$/);
  assert.match(lines[1]!, / web {8}1\.23kB \(virtual 4\.26MB\)$/);
  assert.match(lines[2]!, /webcache {3}0B$/);
});

Deno.test("treeSize() sums files once per inode and skips what it cannot read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/a/b`, { recursive: true });
    await Deno.writeFile(`${dir}/a/one`, new Uint8Array(100));
    await Deno.writeFile(`${dir}/a/b/two`, new Uint8Array(20));
    await Deno.link(`${dir}/a/one`, `${dir}/a/b/one-again`);
    await Deno.symlink("one", `${dir}/a/link`);
    await Deno.mkdir(`${dir}/closed`);
    await Deno.writeFile(`${dir}/closed/secret`, new Uint8Array(7));
    await Deno.chmod(`${dir}/closed`, 0o000);
    const size = treeSize(dir);
    // "link" counts its own length (3), as lstat reports it.
    const readable = Deno.uid() === 0 ? 7 : 0;
    assert.equal(size, 100 + 20 + 3 + readable);
    assert.equal(treeSize(`${dir}/missing`), 0);
    await Deno.chmod(`${dir}/closed`, 0o700);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trun ps on a store: running by default, -a, --format, bad flags", async () => {
  const self = processStat(Deno.pid);
  assert.ok(self !== null);
  const now = new Date().toISOString();
  const records = [
    containerRecord({
      id: cid("aa"),
      name: "old_exit",
      created: new Date(Date.now() - 60_000).toISOString(),
      state: "exited",
      startedAt: now,
      finishedAt: now,
      exitCode: 2,
    }),
    containerRecord({
      id: cid("bb"),
      name: "alive",
      created: now,
      state: "running",
      pid: Deno.pid,
      startTime: self.startTime,
      startedAt: now,
    }),
    // The monitor wrote "running" but the process is gone: ps says exited.
    containerRecord({
      id: cid("cc"),
      name: "dead",
      created: new Date(Date.now() - 30_000).toISOString(),
      state: "running",
      pid: 2 ** 22 + 1,
      startTime: "1",
      startedAt: now,
    }),
  ];
  await withRecords(records, async (root) => {
    const run = (...argv: string[]) => capture(() => main(argv));
    const plain = await run();
    assert.equal(plain.result, 0);
    const rows = plain.stdout.trimEnd().split("\n");
    assert.equal(rows.length, 2);
    assert.match(rows[0]!, /^CONTAINER ID {3}IMAGE {5}COMMAND {8}CREATED/);
    assert.match(
      rows[1]!,
      /^bb0000000000 {3}busybox {3}"sleep 1000" {3}(Less than a second|1 second|\d+ seconds) ago {3}Up .* {3}alive$/,
    );

    const all = await run("-a", "--format", "{{.Names}}\\t{{.State}}");
    assert.deepEqual(all.stdout.trimEnd().split("\n"), [
      "alive\trunning",
      "dead\texited",
      "old_exit\texited",
    ]);

    const quiet = await run("-q", "--no-trunc", "-f", "status=exited");
    assert.equal(quiet.stdout, `${cid("cc")}\n${cid("aa")}\n`);

    assert.equal((await run("-l", "-q")).stdout, "bb0000000000\n");

    await Deno.mkdir(`${root}/containers/${cid("bb")}/upper/etc`, { recursive: true });
    await Deno.writeTextFile(`${root}/containers/${cid("bb")}/upper/etc/motd`, "hello\n");
    // Rootless, sizes are counted in the storage user namespace; this test
    // counts them here, as inside it.
    Deno.env.set(IN_USERNS_ENV, "1");
    let sized;
    try {
      sized = await run("--format", "{{.Names}} {{.Size}}");
    } finally {
      Deno.env.delete(IN_USERNS_ENV);
    }
    assert.equal(sized.stdout, "alive 6B\n");

    const bad = await run("-n", "x");
    assert.ok(bad.error instanceof UsageError);
    assert.match((bad.error as Error).message, /invalid argument "x" for "-n, --last"/);
    const extra = await run("foo");
    assert.ok(extra.error instanceof UsageError);
  });
});

Deno.test("a paused container: Docker's (Paused) status, state paused, status=paused filter", () => {
  const paused = RUNNING.map((i) => ({ ...i, paused: i.rec.name === "web" }));
  const [line] = renderPs(paused.slice(0, 1), { ...OPTS, format: parseFormat("json") });
  const j = JSON.parse(line!);
  assert.equal(j.State, "paused");
  assert.equal(j.Status, "Up 50 seconds (Paused)");
  const only = (status: string) =>
    selectContainers(paused, {
      all: false,
      last: -1,
      filters: parsePsFilters(DEF, [`status=${status}`]),
    }).map((i) => i.rec.name);
  assert.deepEqual(only("paused"), ["web"]);
  assert.ok(!only("running").includes("web"));
  // Without -a a paused container is listed: it is running.
  assert.ok(
    selectContainers(paused, { all: false, last: -1, filters: NO_FILTERS }).some((i) =>
      i.rec.name === "web"
    ),
  );
});

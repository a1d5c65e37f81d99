/**
 * Unit tests of lib/cli/format.ts (Docker's sizes, ages, tables, JSON and
 * template subset) and of the pure renderers of lib/cli/images.ts,
 * history.ts and inspect.ts that build on it (`images` rows, reference
 * patterns, history, inspect).
 * Expected values come from go-units' and Docker CLI's own tests and
 * output.
 */
import assert from "node:assert/strict";
import {
  compileTemplate,
  ellipsis,
  goFormatG,
  goJson,
  goTimeString,
  humanDuration,
  humanSize,
  parseFormat,
  renderItems,
  shortId,
  table,
  TemplateError,
  timeAgo,
} from "../../lib/cli/format.ts";
import { imageRows, referenceMatches, renderImages } from "../../lib/cli/images.ts";
import { historyEntries, renderHistory } from "../../lib/cli/history.ts";
import { inspectImage } from "../../lib/cli/inspect.ts";
import type { ImageRecord } from "../../lib/store/mod.ts";

const KB = 1000, MB = 1000 * KB, GB = 1000 * MB, TB = 1000 * GB, PB = 1000 * TB;

Deno.test("humanSize() matches go-units HumanSize (precision 4)", () => {
  const cases: [number, string][] = [
    [0, "0B"],
    [1, "1B"],
    [999, "999B"],
    [1000, "1kB"],
    [1024, "1.024kB"],
    [MB, "1MB"],
    [1048576, "1.049MB"],
    [2 * MB, "2MB"],
    [3.42 * GB, "3.42GB"],
    [5.372 * TB, "5.372TB"],
    [2.22 * PB, "2.22PB"],
    [999_999, "1000kB"],
    [10_000_000_000_000 * PB, "1e+04YB"],
  ];
  for (const [bytes, want] of cases) assert.equal(humanSize(bytes), want, `${bytes}`);
});

Deno.test("humanSize() with precision 3 gives Docker's SIZE column", () => {
  assert.equal(humanSize(4_261_550, 3), "4.26MB");
  assert.equal(humanSize(77_800_000, 3), "77.8MB");
  assert.equal(humanSize(1_090_000_000, 3), "1.09GB");
  assert.equal(humanSize(7_800_000, 3), "7.8MB");
  assert.equal(humanSize(0, 3), "0B");
});

Deno.test("goFormatG() follows Go's %g: exponent form outside [-4, precision)", () => {
  assert.equal(goFormatG(12.5, 3), "12.5");
  assert.equal(goFormatG(1.0049, 3), "1");
  assert.equal(goFormatG(10000, 4), "1e+04");
  assert.equal(goFormatG(0.00001, 4), "1e-05");
  assert.equal(goFormatG(0.0001234, 4), "0.0001234");
});

Deno.test("humanDuration() matches go-units HumanDuration", () => {
  const s = 1000, m = 60 * s, h = 60 * m, d = 24 * h;
  const cases: [number, string][] = [
    [450, "Less than a second"],
    [1 * s, "1 second"],
    [45 * s, "45 seconds"],
    [59 * s, "59 seconds"],
    [60 * s, "About a minute"],
    [2 * m, "2 minutes"],
    [35 * m + 40 * s, "35 minutes"],
    [59 * m + 59 * s, "59 minutes"],
    [1 * h, "About an hour"],
    [1 * h + 29 * m, "About an hour"],
    [1 * h + 45 * m, "2 hours"],
    [47 * h, "47 hours"],
    [48 * h, "2 days"],
    [5 * d, "5 days"],
    [14 * d, "2 weeks"],
    [3 * 30 * d, "3 months"],
    [2 * 365 * d, "2 years"],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, `${ms} ms`);
});

Deno.test("timeAgo() and goTimeString() read RFC 3339 and say N/A when unknown", () => {
  const now = Date.parse("2024-01-01T12:00:00Z");
  assert.equal(timeAgo("2024-01-01T10:00:00Z", now), "2 hours ago");
  assert.equal(timeAgo("2023-12-31T12:00:00.123456789Z", now), "24 hours ago");
  assert.equal(timeAgo(undefined, now), "N/A");
  assert.equal(timeAgo("0001-01-01T00:00:00Z", now), "N/A");
  assert.equal(timeAgo("not a time", now), "N/A");
  assert.equal(goTimeString("2023-11-14T22:13:20Z"), "2023-11-14 22:13:20 +0000 UTC");
  assert.equal(goTimeString("2023-11-14T23:13:20.5+01:00"), "2023-11-14 22:13:20 +0000 UTC");
  assert.equal(goTimeString(undefined), "");
});

Deno.test("table() aligns like Docker's tabwriter (min width 10, padding 3)", () => {
  const out = table([
    ["REPOSITORY", "TAG", "IMAGE ID", "SIZE"],
    ["busybox", "latest", "8a1dd4d2e4b0", "4.26MB"],
    ["localhost:5000/a-much-longer-name", "1", "0123456789ab", "12kB"],
  ]);
  assert.equal(
    out,
    [
      "REPOSITORY                          TAG       IMAGE ID       SIZE",
      "busybox                             latest    8a1dd4d2e4b0   4.26MB",
      "localhost:5000/a-much-longer-name   1         0123456789ab   12kB",
    ].join("\n"),
  );
  assert.equal(table([["only"]]), "only");
});

Deno.test("table() with docker top's minimum width of 20", () => {
  assert.equal(
    table([["PID", "COMMAND"], ["12345", "sleep 1000"]], 20),
    "PID                 COMMAND\n12345               sleep 1000",
  );
  const long = "a-cell-of-twenty-one!";
  assert.equal(table([[long, "x"]], 20), `${long}   x`);
});

Deno.test("ellipsis() and shortId() cut as Docker does", () => {
  assert.equal(ellipsis("abcdef", 6), "abcdef");
  assert.equal(ellipsis("abcdefg", 6), "abcde…");
  assert.equal(ellipsis("héllo wörld", 5), "héll…");
  assert.equal(shortId(`sha256:${"ab".repeat(32)}`), "abababababab");
  assert.equal(shortId("0123456789abcdef"), "0123456789ab");
});

Deno.test("goJson() escapes <, > and & like Go's encoder", () => {
  assert.equal(goJson({ Tag: "<none>", Q: "a&b" }), '{"Tag":"\\u003cnone\\u003e","Q":"a\\u0026b"}');
  assert.deepEqual(JSON.parse(goJson({ Tag: "<none>" })), { Tag: "<none>" });
  assert.equal(goJson([1], "    "), "[\n    1\n]");
});

Deno.test("compileTemplate() renders fields, nested fields and json", () => {
  const v = { Id: "sha256:x", RootFS: { Layers: ["a", "b"] }, Config: { Env: ["A=1"] } };
  assert.equal(compileTemplate("{{.Id}}")(v), "sha256:x");
  assert.equal(
    compileTemplate("id={{ .Id }} n={{json .RootFS.Layers}}")(v),
    'id=sha256:x n=["a","b"]',
  );
  assert.equal(compileTemplate("{{.RootFS.Layers}}")(v), "[a b]");
  assert.equal(compileTemplate("{{.Missing}}")(v), "<no value>");
  assert.equal(compileTemplate("{{json .}}")({ a: "<" }), '{"a":"\\u003c"}');
  assert.equal(compileTemplate("plain")(v), "plain");
});

Deno.test("compileTemplate() refuses actions outside the subset, naming them", () => {
  assert.throws(() => compileTemplate("{{range .X}}{{end}}"), (e: unknown) => {
    assert.ok(e instanceof TemplateError);
    assert.match(e.message, /\{\{range \.X\}\}/);
    return true;
  });
  assert.throws(() => compileTemplate("{{.Id"), TemplateError);
  assert.throws(() => compileTemplate("{{.A..B}}"), TemplateError);
});

Deno.test("parseFormat() tells table, json and templates apart", () => {
  assert.deepEqual(parseFormat(undefined), { kind: "table" });
  assert.deepEqual(parseFormat("table"), { kind: "table" });
  assert.deepEqual(parseFormat("json"), { kind: "json" });
  assert.deepEqual(parseFormat("{{json .}}"), { kind: "json" });
  const t = parseFormat("table {{.A}}\\t{{.B}}");
  assert.equal(t.kind, "template");
  assert.ok(t.kind === "template" && t.table && t.source === "{{.A}}\t{{.B}}");
});

Deno.test("renderItems() makes a header of a table template", () => {
  const items = [{ A: "x", B: "yy" }, { A: "longer-value", B: "z" }];
  const view = {
    headers: ["A", "B"],
    row: (i: { A: string; B: string }) => [i.A, i.B],
    json: (i: { A: string; B: string }) => i,
    labels: { A: "FIRST" },
  };
  assert.deepEqual(renderItems(parseFormat("table {{.A}}\\t{{.B}}"), items, view), [
    "FIRST          B",
    "x              yy",
    "longer-value   z",
  ]);
  assert.deepEqual(renderItems(parseFormat("{{.A}}:{{.B}}"), items, view), [
    "x:yy",
    "longer-value:z",
  ]);
  assert.deepEqual(renderItems(parseFormat("json"), items.slice(0, 1), view), [
    '{"A":"x","B":"yy"}',
  ]);
});

// ---------------------------------------------------------------------------
// images, history and inspect rendering (lib/cli/images.ts, history.ts, inspect.ts)

const ID_A = `sha256:${"a".repeat(64)}`;
const ID_B = `sha256:${"b".repeat(64)}`;
const ID_C = `sha256:${"c".repeat(64)}`;
const DIG_1 = `sha256:${"1".repeat(64)}`;
const DIG_2 = `sha256:${"2".repeat(64)}`;

function record(over: Partial<ImageRecord> & { id: string }): ImageRecord {
  return {
    manifestDigest: DIG_1,
    manifestMediaType: "application/vnd.oci.image.manifest.v1+json",
    created: "2024-01-01T10:00:00Z",
    added: 0,
    size: 4_261_550,
    config: {
      architecture: "amd64",
      os: "linux",
      created: "2024-01-01T10:00:00Z",
      config: { Cmd: ["sh"] },
      rootfs: { type: "layers", diff_ids: [DIG_1, DIG_2] },
    },
    tags: [],
    digests: [],
    layers: [DIG_1, DIG_2],
    ...over,
  };
}

const IMAGES: ImageRecord[] = [
  record({
    id: ID_A,
    tags: ["docker.io/library/busybox:latest", "docker.io/library/busybox:musl"],
    digests: [`docker.io/library/busybox@${DIG_1}`],
  }),
  record({ id: ID_B, created: "2024-01-01T11:00:00Z", tags: [], digests: [] }),
  record({
    id: ID_C,
    created: "2023-01-01T00:00:00Z",
    tags: ["localhost:5000/app:1"],
    digests: [`localhost:5000/other@${DIG_2}`],
  }),
];
const NO_FILTERS = { references: [], labels: [] };
const NOW = Date.parse("2024-01-01T12:00:00Z");

Deno.test("imageRows() has a row per tag, <none> for digest-only and dangling, newest first", () => {
  const rows = imageRows(IMAGES, { digests: false, filters: NO_FILTERS });
  assert.deepEqual(rows.map((r) => [r.repository, r.tag, r.image.id]), [
    ["<none>", "<none>", ID_B],
    ["busybox", "latest", ID_A],
    ["busybox", "musl", ID_A],
    ["localhost:5000/app", "1", ID_C],
    ["localhost:5000/other", "<none>", ID_C],
  ]);
  const withDigests = imageRows(IMAGES, { digests: true, filters: NO_FILTERS });
  assert.deepEqual(withDigests.filter((r) => r.image.id === ID_A).map((r) => r.digest), [
    DIG_1,
    DIG_1,
  ]);
  assert.equal(withDigests.find((r) => r.repository === "localhost:5000/other")?.digest, DIG_2);
});

Deno.test("imageRows() filters by reference pattern, dangling and label", () => {
  const refs = (patterns: string[]) =>
    imageRows(IMAGES, { digests: false, filters: { references: patterns, labels: [] } })
      .map((r) => `${r.repository}:${r.tag}`);
  assert.deepEqual(refs(["busybox"]), ["busybox:latest", "busybox:musl"]);
  assert.deepEqual(refs(["busybox:musl"]), ["busybox:musl"]);
  assert.deepEqual(refs(["docker.io/library/busybox:latest"]), ["busybox:latest"]);
  assert.deepEqual(refs(["localhost:5000/*"]), [
    "localhost:5000/app:1",
    "localhost:5000/other:<none>",
  ]);
  assert.deepEqual(refs(["nothing"]), []);
  const dangling = imageRows(IMAGES, {
    digests: false,
    filters: { references: [], labels: [], dangling: true },
  });
  assert.deepEqual(dangling.map((r) => r.image.id), [ID_B]);
  const labelled = [record({ id: ID_A, tags: ["docker.io/library/x:1"] })];
  labelled[0]!.config.config = { Labels: { tier: "web" } };
  const by = (key: string, value?: string) =>
    imageRows(labelled, {
      digests: false,
      filters: { references: [], labels: [value === undefined ? { key } : { key, value }] },
    }).length;
  assert.equal(by("tier"), 1);
  assert.equal(by("tier", "web"), 1);
  assert.equal(by("tier", "db"), 0);
  assert.equal(by("other"), 0);
});

Deno.test("referenceMatches() follows Docker's FamiliarMatch and normalised names", () => {
  const stored = "docker.io/library/busybox:latest";
  assert.ok(referenceMatches("busybox", stored));
  assert.ok(referenceMatches("busybox:latest", stored));
  assert.ok(referenceMatches("busy*", stored));
  assert.ok(referenceMatches("busybox:l?test", stored));
  assert.ok(referenceMatches("docker.io/library/busybox", stored));
  assert.ok(!referenceMatches("busybox:musl", stored));
  assert.ok(!referenceMatches("*", "docker.io/user/app:1"), "* does not cross /");
  assert.ok(referenceMatches("*/*", "docker.io/user/app:1"));
});

Deno.test("renderImages() prints Docker's table, JSON lines and deduplicated -q ids", () => {
  const base = { digests: false, noTrunc: false, quiet: false, filters: NO_FILTERS, now: NOW };
  const lines = renderImages(IMAGES, { ...base, format: parseFormat(undefined) });
  assert.deepEqual(lines, [
    "REPOSITORY             TAG       IMAGE ID       CREATED             SIZE",
    "<none>                 <none>    bbbbbbbbbbbb   About an hour ago   4.26MB",
    "busybox                latest    aaaaaaaaaaaa   2 hours ago         4.26MB",
    "busybox                musl      aaaaaaaaaaaa   2 hours ago         4.26MB",
    "localhost:5000/app     1         cccccccccccc   12 months ago       4.26MB",
    "localhost:5000/other   <none>    cccccccccccc   12 months ago       4.26MB",
  ]);
  assert.deepEqual(renderImages(IMAGES, { ...base, quiet: true, format: parseFormat(undefined) }), [
    "bbbbbbbbbbbb",
    "aaaaaaaaaaaa",
    "cccccccccccc",
  ]);
  const json = renderImages(IMAGES, { ...base, format: parseFormat("json") });
  assert.equal(json.length, 5);
  const first = JSON.parse(json[1]!);
  assert.deepEqual(first, {
    Containers: "N/A",
    CreatedAt: "2024-01-01 10:00:00 +0000 UTC",
    CreatedSince: "2 hours ago",
    Digest: "<none>",
    ID: "aaaaaaaaaaaa",
    Repository: "busybox",
    SharedSize: "N/A",
    Size: "4.26MB",
    Tag: "latest",
    UniqueSize: "N/A",
    VirtualSize: "4.262MB",
  });
  assert.match(json[1]!, /"Digest":"\\u003cnone\\u003e"/);
  const full = renderImages(IMAGES, {
    ...base,
    noTrunc: true,
    quiet: true,
    format: parseFormat(""),
  });
  assert.equal(full[0], ID_B);
  const digests = renderImages(IMAGES, { ...base, digests: true, format: parseFormat("") });
  assert.match(digests[0]!, /^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+CREATED\s+SIZE$/);
});

Deno.test("historyEntries() gives sizes to non-empty steps, the id to the newest only", () => {
  const image = record({ id: ID_A });
  image.config.history = [
    { created: "2024-01-01T09:00:00Z", created_by: "ADD rootfs.tar /" },
    { created: "2024-01-01T09:30:00Z", created_by: "ENV A=1", empty_layer: true },
    { created: "2024-01-01T10:00:00Z", created_by: "RUN\tmake", comment: "build" },
  ];
  const entries = historyEntries(image, [1_000_000, 2_500]);
  assert.deepEqual(entries.map((e) => [e.id, e.createdBy, e.size, e.comment]), [
    [ID_A, "RUN\tmake", 2_500, "build"],
    ["<missing>", "ENV A=1", 0, ""],
    ["<missing>", "ADD rootfs.tar /", 1_000_000, ""],
  ]);
  const lines = renderHistory(entries, {
    noTrunc: false,
    quiet: false,
    human: true,
    format: parseFormat(undefined),
    now: NOW,
  });
  assert.deepEqual(lines, [
    "IMAGE          CREATED       CREATED BY         SIZE      COMMENT",
    "aaaaaaaaaaaa   2 hours ago   RUN make           2.5kB     build",
    "<missing>      3 hours ago   ENV A=1            0B        ",
    "<missing>      3 hours ago   ADD rootfs.tar /   1MB       ",
  ]);
  const raw = renderHistory(entries, {
    noTrunc: true,
    quiet: false,
    human: false,
    format: parseFormat("json"),
    now: NOW,
  });
  assert.deepEqual(JSON.parse(raw[0]!), {
    Comment: "build",
    CreatedAt: "2024-01-01T10:00:00Z",
    CreatedBy: "RUN make",
    CreatedSince: "2024-01-01T10:00:00Z",
    ID: ID_A,
    Size: "2500",
  });
  const quiet = renderHistory(entries, {
    noTrunc: false,
    quiet: true,
    human: true,
    format: parseFormat(undefined),
  });
  assert.deepEqual(quiet, ["aaaaaaaaaaaa", "<missing>", "<missing>"]);
  const long = historyEntries(
    { ...image, config: { ...image.config, history: [{ created_by: "x".repeat(60) }] } },
    [1],
  );
  const cut = renderHistory(long, {
    noTrunc: false,
    quiet: false,
    human: true,
    format: parseFormat("{{.CreatedBy}}"),
  });
  assert.deepEqual(cut, [`${"x".repeat(44)}…`]);
});

Deno.test("historyEntries() makes a step per layer when the config has no history", () => {
  const entries = historyEntries(record({ id: ID_A }), [10, 20]);
  assert.deepEqual(entries.map((e) => [e.id, e.size]), [[ID_A, 20], ["<missing>", 10]]);
});

Deno.test("inspectImage() has Docker's keys, familiar references and lowerdirs top first", () => {
  const image = record({
    id: ID_A,
    tags: ["docker.io/library/busybox:latest"],
    digests: [`docker.io/library/busybox@${DIG_1}`],
  });
  const out = inspectImage(image, ["/s/layers/bottom", "/s/layers/top"]);
  assert.deepEqual(Object.keys(out), [
    "Id",
    "RepoTags",
    "RepoDigests",
    "Parent",
    "Comment",
    "Created",
    "DockerVersion",
    "Author",
    "Config",
    "Architecture",
    "Os",
    "Size",
    "GraphDriver",
    "RootFS",
    "Metadata",
  ]);
  assert.deepEqual(out.RepoTags, ["busybox:latest"]);
  assert.deepEqual(out.RepoDigests, [`busybox@${DIG_1}`]);
  assert.deepEqual(out.GraphDriver, {
    Data: { LowerDir: "/s/layers/top:/s/layers/bottom" },
    Name: "overlay",
  });
  assert.deepEqual(out.RootFS, { Type: "layers", Layers: [DIG_1, DIG_2] });
  assert.deepEqual(out.Config, { Cmd: ["sh"] });
  const arm = inspectImage(
    record({ id: ID_B, config: { ...image.config, architecture: "arm", variant: "v7" } }),
    [],
  );
  assert.equal(arm.Variant, "v7");
});

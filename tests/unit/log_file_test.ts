/**
 * Unit tests of lib/container/log_file.ts: the CRI log record format,
 * LogWriter's line splitting (conmon's F and P records), and what
 * `trun logs` prints of a file (tail, since, until, timestamps, P joining).
 */
import assert from "node:assert/strict";
import {
  formatLogRecord,
  LogReader,
  type LogRecord,
  type LogStream,
  LogWriter,
  type LogWriterOptions,
  normalizeLogTime,
  parseLogRecord,
  parseTimeArg,
  readLogs,
  type ReadLogsOptions,
} from "../../lib/container/log_file.ts";

const T0 = "2026-12-02T05:53:27.123456789Z";

Deno.test("formatLogRecord() writes CRI records with nine fraction digits", () => {
  const cases: [Date | string, LogStream, string, boolean, string][] = [
    [T0, "stdout", "hello", false, `${T0} stdout F hello\n`],
    [T0, "stderr", "half", true, `${T0} stderr P half\n`],
    [T0, "stdout", "", false, `${T0} stdout F \n`],
    [T0, "stdout", "a b  c\r", false, `${T0} stdout F a b  c\r\n`],
    [
      new Date("2026-12-02T05:53:27.123Z"),
      "stdout",
      "x",
      false,
      "2026-12-02T05:53:27.123000000Z stdout F x\n",
    ],
    [
      new Date(Date.UTC(2026, 0, 1)),
      "stdout",
      "x",
      false,
      "2026-01-01T00:00:00.000000000Z stdout F x\n",
    ],
    ["2026-12-02T05:53:27Z", "stdout", "x", false, "2026-12-02T05:53:27.000000000Z stdout F x\n"],
    [
      "2026-12-02T06:53:27.5+01:00",
      "stdout",
      "x",
      false,
      "2026-12-02T05:53:27.500000000Z stdout F x\n",
    ],
  ];
  for (const [time, stream, content, partial, want] of cases) {
    assert.equal(formatLogRecord(time, stream, content, partial), want, `${time} ${content}`);
  }
});

Deno.test("formatLogRecord() refuses bad times and content with a newline", () => {
  assert.throws(() => formatLogRecord("yesterday", "stdout", "x", false), RangeError);
  assert.throws(() => formatLogRecord(new Date(NaN), "stdout", "x", false), RangeError);
  assert.throws(() => formatLogRecord(T0, "stdout", "a\nb", false), RangeError);
});

Deno.test("parseLogRecord() reads what formatLogRecord() writes", () => {
  const cases: [LogStream, string, boolean][] = [
    ["stdout", "hello", false],
    ["stderr", "", false],
    ["stdout", "  leading and trailing  ", true],
    ["stderr", "tab\tcr\r", false],
    ["stdout", "ünïcødé 😀", false],
    ["stdout", "stdout F x", false],
  ];
  for (const [stream, content, partial] of cases) {
    const line = formatLogRecord(T0, stream, content, partial);
    assert.deepEqual(parseLogRecord(line), { time: T0, stream, partial, content }, line);
    assert.deepEqual(parseLogRecord(line.slice(0, -1)), { time: T0, stream, partial, content });
  }
});

Deno.test("parseLogRecord() reads conmon's offsets, short fractions and tag extensions", () => {
  const cases: [string, LogRecord][] = [
    [
      "2021-03-24T14:15:16.123456789+01:00 stdout F hi",
      { time: "2021-03-24T13:15:16.123456789Z", stream: "stdout", partial: false, content: "hi" },
    ],
    [
      "2021-03-24T00:15:16.1-01:30 stderr P x",
      { time: "2021-03-24T01:45:16.100000000Z", stream: "stderr", partial: true, content: "x" },
    ],
    [
      "2021-03-24T14:15:16Z stdout F:extra hi",
      { time: "2021-03-24T14:15:16.000000000Z", stream: "stdout", partial: false, content: "hi" },
    ],
    [
      "2021-03-24T14:15:16Z stdout F",
      { time: "2021-03-24T14:15:16.000000000Z", stream: "stdout", partial: false, content: "" },
    ],
  ];
  for (const [line, want] of cases) assert.deepEqual(parseLogRecord(line), want, line);
});

Deno.test("parseLogRecord() returns null for malformed lines", () => {
  const bad = [
    "",
    "garbage",
    `${T0}`,
    `${T0} stdout`,
    `${T0} stdin F x`,
    `${T0} stdout X x`,
    `${T0} stdout f x`,
    "2026-12-02 05:53:27Z stdout F x",
    "2026-12-02T05:53:27 stdout F x",
    "2026-02-30T05:53:27Z stdout F x",
    "2026-12-02T24:00:00Z stdout F x",
    "2026-12-02T05:53:27.1234567890Z stdout F x",
    `${T0} stdout F a\nb`,
  ];
  for (const line of bad) assert.equal(parseLogRecord(line), null, JSON.stringify(line));
});

Deno.test("normalizeLogTime() gives fixed UTC text that sorts in time order", () => {
  const times = [
    "2026-12-02T05:53:27.9+01:00",
    "2026-12-02T05:53:27Z",
    "2026-12-02T05:53:27.000000001Z",
    "2026-12-02T05:53:27.1Z",
  ].map((t) => normalizeLogTime(t)!);
  assert.deepEqual([...times].sort(), [times[0], times[1], times[2], times[3]]);
  assert.equal(times[0], "2026-12-02T04:53:27.900000000Z");
});

const enc = new TextEncoder();

/** A LogWriter whose records land in `lines`; every write at time T0. */
function writer(opts: LogWriterOptions = {}) {
  const calls: string[] = [];
  const w = new LogWriter((t) => calls.push(t), { now: () => T0, ...opts });
  return {
    w,
    calls,
    records: () =>
      calls.join("").split("\n").slice(0, -1).map((l) => {
        const r = parseLogRecord(l)!;
        return `${r.stream[3]}${r.partial ? "P" : "F"}:${r.content}`;
      }),
  };
}

Deno.test("LogWriter splits chunks into F records and holds the unterminated rest", () => {
  const cases: { name: string; chunks: [LogStream, string][]; want: string[]; closed: string[] }[] =
    [
      { name: "one line", chunks: [["stdout", "a\n"]], want: ["oF:a"], closed: [] },
      {
        name: "lines across chunks",
        chunks: [["stdout", "he"], ["stdout", "llo\nwor"], ["stdout", "ld\n"]],
        want: ["oF:hello", "oF:world"],
        closed: [],
      },
      {
        name: "several lines in a chunk",
        chunks: [["stdout", "a\nb\nc"]],
        want: ["oF:a", "oF:b"],
        closed: ["oP:c"],
      },
      {
        name: "empty lines",
        chunks: [["stdout", "\n\nx\n\n"]],
        want: ["oF:", "oF:", "oF:x", "oF:"],
        closed: [],
      },
      {
        name: "CRLF is content",
        chunks: [["stdout", "dos\r\n"], ["stdout", "\r"], ["stdout", "\n"]],
        want: ["oF:dos\r", "oF:\r"],
        closed: [],
      },
      {
        name: "streams are split apart",
        chunks: [["stdout", "out "], ["stderr", "err\n"], ["stdout", "line\n"]],
        want: ["eF:err", "oF:out line"],
        closed: [],
      },
      {
        name: "nothing held",
        chunks: [["stdout", ""]],
        want: [],
        closed: [],
      },
    ];
  for (const c of cases) {
    const { w, records } = writer();
    for (const [s, text] of c.chunks) w.write(s, enc.encode(text));
    assert.deepEqual(records(), c.want, c.name);
    w.close();
    assert.deepEqual(records(), [...c.want, ...c.closed], `${c.name}, closed`);
  }
});

Deno.test("LogWriter keeps UTF-8 characters split across chunks whole", () => {
  const text = "é€😀 ok\n";
  const bytes = enc.encode(text);
  // Every way of cutting the bytes in two, and one byte at a time.
  for (let cut = 0; cut <= bytes.length; cut++) {
    const { w, records } = writer();
    w.write("stdout", bytes.subarray(0, cut));
    w.write("stdout", bytes.subarray(cut));
    assert.deepEqual(records(), ["oF:é€😀 ok"], `cut at ${cut}`);
  }
  const { w, records } = writer();
  for (const b of bytes) w.write("stderr", Uint8Array.of(b));
  assert.deepEqual(records(), ["eF:é€😀 ok"]);
});

Deno.test("LogWriter decodes each stream apart and turns invalid UTF-8 into U+FFFD", () => {
  const { w, records } = writer();
  const euro = enc.encode("€");
  w.write("stdout", euro.subarray(0, 1));
  w.write("stderr", enc.encode("x\n"));
  w.write("stdout", euro.subarray(1));
  w.write("stdout", Uint8Array.of(0xff, 0x0a));
  w.write("stdout", euro.subarray(0, 2));
  w.close();
  assert.deepEqual(records(), ["eF:x", "oF:€\ufffd", "oP:\ufffd"]);
});

Deno.test("LogWriter writes a fragment beyond maxPartialBytes as P and flush() writes the rest", () => {
  const { w, records } = writer();
  w.write("stdout", enc.encode("a".repeat(16 * 1024)));
  assert.deepEqual(records(), [], "16 KiB is held");
  w.write("stdout", enc.encode("b"));
  assert.deepEqual(records(), [`oP:${"a".repeat(16 * 1024)}b`], "beyond 16 KiB is written");
  w.write("stdout", enc.encode("c\nd"));
  w.write("stderr", enc.encode("e"));
  w.flush();
  w.flush();
  w.write("stdout", enc.encode("\n"));
  assert.deepEqual(records().slice(1), ["oF:c", "oP:d", "eP:e", "oF:"]);

  // The limit counts UTF-8 bytes, not characters.
  const small = writer({ maxPartialBytes: 4 });
  small.w.write("stdout", enc.encode("éé"));
  assert.deepEqual(small.records(), []);
  small.w.write("stdout", enc.encode("é"));
  assert.deepEqual(small.records(), ["oP:ééé"]);
});

Deno.test("LogWriter gives one sink call per write with one time, and refuses writes once closed", () => {
  let t = 0;
  const times = ["2026-01-01T00:00:01Z", new Date("2026-01-01T00:00:02.5Z"), T0];
  const calls: string[] = [];
  const w = new LogWriter((s) => calls.push(s), { now: () => times[t++]! });
  w.write("stdout", enc.encode("a\nb\n"));
  w.write("stdout", enc.encode("c\n"));
  assert.deepEqual(calls, [
    "2026-01-01T00:00:01.000000000Z stdout F a\n2026-01-01T00:00:01.000000000Z stdout F b\n",
    "2026-01-01T00:00:02.500000000Z stdout F c\n",
  ]);
  w.close();
  w.close();
  assert.equal(calls.length, 2, "nothing held: close writes nothing");
  assert.throws(() => w.write("stdout", enc.encode("x")), /closed/);
});

/** A log file from [seconds after 2026-01-01T00:00:00Z, stream, tag, content] rows. */
function logText(rows: [number, LogStream, "F" | "P", string][]): string {
  return rows.map(([s, stream, tag, content]) =>
    formatLogRecord(new Date(Date.UTC(2026, 0, 1, 0, 0, s)), stream, content, tag === "P")
  ).join("");
}

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
const ts = (s: number) => `${at(s).toISOString().slice(0, 19)}.000000000Z`;

const LOG = logText([
  [1, "stdout", "F", "one"],
  [2, "stderr", "F", "warn"],
  [3, "stdout", "P", "tw"],
  [4, "stderr", "P", "e1"],
  [5, "stdout", "F", "o"],
  [6, "stderr", "F", "e2"],
  [7, "stdout", "F", "three"],
]);

Deno.test("readLogs() prints each stream in order, joining P records per stream", () => {
  const cases: { name: string; opts: ReadLogsOptions; want: [LogStream, string][] }[] = [
    {
      name: "everything",
      opts: { timestamps: false },
      want: [
        ["stdout", "one\n"],
        ["stderr", "warn\n"],
        ["stdout", "tw"],
        ["stderr", "e1"],
        ["stdout", "o\n"],
        ["stderr", "e2\n"],
        ["stdout", "three\n"],
      ],
    },
    {
      name: "stdout only, merged",
      opts: { timestamps: false, streams: ["stdout"] },
      want: [["stdout", "one\ntwo\nthree\n"]],
    },
    {
      name: "timestamps: a joined line has its first record's time",
      opts: { timestamps: true, streams: ["stdout"] },
      want: [["stdout", `${ts(1)} one\n${ts(3)} two\n${ts(7)} three\n`]],
    },
    {
      name: "tail counts joined lines",
      opts: { timestamps: false, tail: 2, streams: ["stdout"] },
      want: [["stdout", "two\nthree\n"]],
    },
    {
      name: "tail across streams",
      opts: { timestamps: false, tail: 3 },
      want: [["stdout", "tw"], ["stderr", "e1"], ["stdout", "o\n"], ["stderr", "e2\n"], [
        "stdout",
        "three\n",
      ]],
    },
    { name: "tail 0", opts: { timestamps: false, tail: 0 }, want: [] },
    {
      name: "tail beyond the lines",
      opts: { timestamps: false, tail: 99, streams: ["stderr"] },
      want: [["stderr", "warn\ne1e2\n"]],
    },
    {
      name: "negative tail is all",
      opts: { timestamps: false, tail: -1, streams: ["stderr"] },
      want: [["stderr", "warn\ne1e2\n"]],
    },
    {
      name: "since is inclusive and keeps lines whole",
      opts: { timestamps: false, since: at(3) },
      want: [["stdout", "tw"], ["stderr", "e1"], ["stdout", "o\n"], ["stderr", "e2\n"], [
        "stdout",
        "three\n",
      ]],
    },
    {
      name: "a line started before since is dropped whole",
      opts: { timestamps: false, since: at(4), streams: ["stdout"] },
      want: [["stdout", "three\n"]],
    },
    {
      name: "until is inclusive",
      opts: { timestamps: false, until: at(2) },
      want: [["stdout", "one\n"], ["stderr", "warn\n"]],
    },
    {
      name: "a line started before until is shown whole",
      opts: { timestamps: false, until: at(3), streams: ["stdout"] },
      want: [["stdout", "one\ntwo\n"]],
    },
    {
      name: "tail, then the time filters",
      opts: { timestamps: true, tail: 2, since: at(7), streams: ["stdout"] },
      want: [["stdout", `${ts(7)} three\n`]],
    },
  ];
  for (const c of cases) {
    assert.deepEqual(
      readLogs(LOG, c.opts).map((o) => [o.stream, o.text]),
      c.want,
      c.name,
    );
  }
});

Deno.test("readLogs() skips malformed lines and reads a last line without a newline", () => {
  const text = [
    "not a record",
    `${T0} stdout F kept`,
    `${T0} stdin F gone`,
    "",
    `${T0} stdout Q gone`,
    `${T0} stderr F last`,
  ].join("\n");
  assert.deepEqual(readLogs(text, { timestamps: false, tail: 2 }), [
    { stream: "stdout", text: "kept\n" },
    { stream: "stderr", text: "last\n" },
  ]);
  assert.deepEqual(readLogs("", { timestamps: true }), []);
});

Deno.test("readLogs() prints a line left partial at the end without a newline", () => {
  const text = logText([[1, "stdout", "F", "a"], [2, "stdout", "P", "prompt> "]]);
  assert.deepEqual(readLogs(text, { timestamps: true }), [
    { stream: "stdout", text: `${ts(1)} a\n${ts(2)} prompt> ` },
  ]);
});

Deno.test("LogReader follows a file cut anywhere; tail counts only the first feed", () => {
  const reader = new LogReader({ timestamps: false, tail: 1, streams: ["stdout"] });
  const text = LOG;
  const cut1 = text.indexOf("tw") + 1; // inside the P record of "tw"
  const out = [
    ...reader.feed(text.slice(0, text.indexOf("\n") + 1)), // "one"
    ...reader.feed(text.slice(text.indexOf("\n") + 1, cut1)),
    ...reader.feed(text.slice(cut1)),
    ...reader.feed(logText([[8, "stdout", "P", "pro"]]).slice(0, -1)),
    ...reader.end(),
  ];
  assert.deepEqual(out.map((o) => o.text).join(""), "one\ntwo\nthree\npro");
});

Deno.test("parseTimeArg() reads Docker's --since and --until values", () => {
  const now = new Date("2026-01-01T12:00:00.750Z");
  const cases: [string, string][] = [
    ["10m", "2026-01-01T11:50:00.000Z"],
    ["1h30m", "2026-01-01T10:30:00.000Z"],
    ["42s", "2026-01-01T11:59:18.000Z"],
    ["1.5h", "2026-01-01T10:30:00.000Z"],
    ["500ms", "2026-01-01T12:00:00.000Z"],
    ["-1h", "2026-01-01T13:00:00.000Z"],
    ["2013-01-02T13:23:37Z", "2013-01-02T13:23:37.000Z"],
    ["2013-01-02T13:23:37.123456789Z", "2013-01-02T13:23:37.123Z"],
    ["2013-01-02T13:23:37+02:00", "2013-01-02T11:23:37.000Z"],
    ["2013-01-02T13:23Z", "2013-01-02T13:23:00.000Z"],
    ["2013-01-02T13Z", "2013-01-02T13:00:00.000Z"],
    ["2013-01-02Z", "2013-01-02T00:00:00.000Z"],
    ["1136073600", "2006-01-01T00:00:00.000Z"],
    ["1136073600.5", "2006-01-01T00:00:00.500Z"],
    ["0", "1970-01-01T00:00:00.000Z"],
  ];
  for (const [value, want] of cases) {
    assert.equal(parseTimeArg(value, now).toISOString(), want, value);
  }
  // Without a zone, Docker reads the time as local.
  assert.equal(
    parseTimeArg("2013-01-02T13:23:37", now).getTime(),
    new Date(2013, 0, 2, 13, 23, 37).getTime(),
  );
  assert.equal(parseTimeArg("2013-01-02", now).getTime(), new Date(2013, 0, 2).getTime());
  for (const bad of ["", "yesterday", "10x", "2013-13-01", "2013-02-30T00:00:00Z", "1h-"]) {
    assert.throws(() => parseTimeArg(bad, now), /parse/, bad);
  }
});

// Container state under the runtime root: /proc/PID/stat parsing (fake proc
// trees), pid-reuse and zombie detection, ids, records and their status in a
// temporary root, and the sweep of killed `trun run`s.
import assert from "node:assert/strict";
import { makeFifo } from "../../ffi/fs.ts";
import {
  checkContainerId,
  containerDir,
  type ContainerRecord,
  execFifoPath,
  isAlive,
  listIds,
  processesInPidNamespace,
  processStat,
  readRecord,
  stateOf,
  statusOf,
  writeRecord,
} from "../../lib/engine/state.ts";

// ---------------------------------------------------------------------------
// Helpers

/** A /proc/PID/stat line: fields 3.. numbered, but for state (3) and starttime (22). */
function statLine(pid: number, comm: string, state: string, startTime: string): string {
  const rest = Array.from({ length: 50 }, (_, i) => String(i + 3));
  rest[0] = state;
  rest[19] = startTime;
  return `${pid} (${comm}) ${rest.join(" ")}\n`;
}

/** A temporary fake /proc holding `<pid>/stat` for each entry. */
function fakeProc(entries: Record<number, string>): string {
  const proc = Deno.makeTempDirSync({ prefix: "trun-state-proc-" });
  for (const [pid, text] of Object.entries(entries)) {
    Deno.mkdirSync(`${proc}/${pid}`);
    Deno.writeTextFileSync(`${proc}/${pid}/stat`, text);
  }
  return proc;
}

function withTempDir(prefix: string, fn: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix });
  try {
    fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const exists = (path: string) => {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
};

/** This process's real start time, as the kernel reports it. */
function myStartTime(): string {
  const st = processStat(Deno.pid);
  assert.ok(st, "this process has a /proc/PID/stat");
  return st.startTime;
}

/** A pid no process has: from the top of the pid range down. */
function unusedPid(): number {
  const max = Number(Deno.readTextFileSync("/proc/sys/kernel/pid_max").trim());
  for (let pid = max - 1; pid > 1; pid--) {
    if (!exists(`/proc/${pid}`)) return pid;
  }
  throw new Error("no unused pid");
}

function record(id: string, over: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id,
    pid: 0,
    startTime: "",
    bundle: "/run/bundles/c1",
    created: "2025-01-02T03:04:05.000Z",
    annotations: { "org.example/key": "value" },
    namespaces: ["pid", "mount"],
    userns: "subordinate",
    ...over,
  };
}

// ---------------------------------------------------------------------------
// processStat()

const COMMS: [string, string][] = [
  ["a plain name", "sh"],
  ["spaces and a parenthesis", "a) b"],
  ["parentheses around a word", "x (y) z"],
  ["only a parenthesis", ")"],
  ["a fake field list", ") Z 1 2 3 4 5"],
  ["an empty name", ""],
];
for (const [what, comm] of COMMS) {
  Deno.test(`processStat() reads state and start time past a comm with ${what}`, () => {
    const proc = fakeProc({ 123: statLine(123, comm, "S", "987654") });
    try {
      assert.deepEqual(processStat(123, proc), { state: "S", startTime: "987654" });
    } finally {
      Deno.removeSync(proc, { recursive: true });
    }
  });
}

Deno.test("processStat() reads the literal line `123 (a) b) S 1 …`", () => {
  const fields = Array.from({ length: 49 }, (_, i) => String(i + 4));
  fields[18] = "4242"; // field 22
  const proc = fakeProc({ 123: `123 (a) b) S ${fields.join(" ")}\n` });
  try {
    assert.deepEqual(processStat(123, proc), { state: "S", startTime: "4242" });
  } finally {
    Deno.removeSync(proc, { recursive: true });
  }
});

Deno.test("processStat() gives null for a missing or truncated stat", () => {
  const proc = fakeProc({ 5: "5 (sh) S 1 2 3\n", 6: "" });
  try {
    assert.equal(processStat(4, proc), null);
    assert.equal(processStat(5, proc), null);
    assert.equal(processStat(6, proc), null);
  } finally {
    Deno.removeSync(proc, { recursive: true });
  }
});

Deno.test("processStat() reads this process from the real /proc", () => {
  const st = processStat(Deno.pid);
  assert.ok(st);
  assert.match(st.state, /^[RS]$/);
  assert.match(st.startTime, /^\d+$/);
});

// ---------------------------------------------------------------------------
// isAlive()

const ALIVE: [string, Pick<ContainerRecord, "pid" | "startTime">, boolean][] = [
  ["the same pid and start time", { pid: 123, startTime: "987654" }, true],
  ["a reused pid (another start time)", { pid: 123, startTime: "987000" }, false],
  ["a zombie", { pid: 124, startTime: "987654" }, false],
  ["a dead task (X)", { pid: 125, startTime: "987654" }, false],
  ["a pid that is gone", { pid: 126, startTime: "987654" }, false],
  ["pid 0 (not started)", { pid: 0, startTime: "987654" }, false],
  ["a negative pid", { pid: -1, startTime: "987654" }, false],
];
for (const [what, rec, want] of ALIVE) {
  Deno.test(`isAlive() says ${want} for ${what}`, () => {
    const proc = fakeProc({
      123: statLine(123, "sleep 1", "S", "987654"),
      124: statLine(124, "sh", "Z", "987654"),
      125: statLine(125, "sh", "X", "987654"),
    });
    try {
      assert.equal(isAlive(rec, proc), want);
    } finally {
      Deno.removeSync(proc, { recursive: true });
    }
  });
}

Deno.test("isAlive() knows this process by its real start time", () => {
  assert.equal(isAlive({ pid: Deno.pid, startTime: myStartTime() }), true);
  assert.equal(isAlive({ pid: Deno.pid, startTime: `${myStartTime()}0` }), false);
});

// ---------------------------------------------------------------------------
// checkContainerId()

const GOOD_IDS = ["abc", "web-1", "a.b_c+d", "0123456789abcdef".repeat(4), "..a", ".x", "A_Z"];
for (const id of GOOD_IDS) {
  Deno.test(`checkContainerId() accepts "${id}"`, () => {
    checkContainerId(id);
    assert.equal(containerDir("/run/r", id), `/run/r/${id}`);
  });
}

const BAD_IDS = ["", ".", "..", "a/b", "../x", "a b", "a\nb", "a:b", "é", "a*"];
for (const id of BAD_IDS) {
  Deno.test(`checkContainerId() refuses ${JSON.stringify(id)}`, () => {
    assert.throws(() => checkContainerId(id), /invalid container id/);
    assert.throws(() => containerDir("/run/r", id), /invalid container id/);
  });
}

// ---------------------------------------------------------------------------
// Records and status

Deno.test("writeRecord() and readRecord() round-trip a record, leaving no temporary file", () => {
  withTempDir("trun-state-root-", (root) => {
    const rec = record("c1", { pid: 42, startTime: "12345" });
    Deno.mkdirSync(`${root}/c1`);
    writeRecord(root, rec);
    assert.deepEqual(readRecord(root, "c1"), rec);
    assert.deepEqual([...Deno.readDirSync(`${root}/c1`)].map((e) => e.name), ["state.json"]);
    writeRecord(root, { ...rec, pid: 43 });
    assert.equal(readRecord(root, "c1")?.pid, 43);
  });
});

Deno.test("readRecord() gives null for an unknown container and names a broken one", () => {
  withTempDir("trun-state-root-", (root) => {
    assert.equal(readRecord(root, "nope"), null);
    Deno.mkdirSync(`${root}/bad`);
    Deno.writeTextFileSync(`${root}/bad/state.json`, "{not json");
    assert.throws(() => readRecord(root, "bad"), /reading the state of container "bad"/);
    assert.throws(() => readRecord(root, "../x"), /invalid container id/);
  });
});

Deno.test("statusOf() tells creating, created, running and stopped apart", () => {
  withTempDir("trun-state-root-", (root) => {
    Deno.mkdirSync(`${root}/c1`);
    const alive = record("c1", { pid: Deno.pid, startTime: myStartTime() });
    assert.equal(statusOf(root, record("c1")), "creating");
    Deno.writeTextFileSync(execFifoPath(root, "c1"), "");
    assert.equal(statusOf(root, alive), "created");
    Deno.removeSync(execFifoPath(root, "c1"));
    assert.equal(statusOf(root, alive), "running");
    assert.equal(statusOf(root, { ...alive, startTime: "1" }), "stopped");
    assert.equal(statusOf(root, { ...alive, pid: unusedPid() }), "stopped");
  });
});

Deno.test("stateOf() prints the status and hides the pid of a stopped container", () => {
  withTempDir("trun-state-root-", (root) => {
    Deno.mkdirSync(`${root}/c1`);
    const alive = record("c1", { pid: Deno.pid, startTime: myStartTime() });
    const running = stateOf(root, alive);
    assert.equal(running.status, "running");
    assert.equal(running.pid, Deno.pid);
    assert.equal(running.id, "c1");
    assert.equal(running.bundle, "/run/bundles/c1");
    assert.deepEqual(running.annotations, { "org.example/key": "value" });
    const stopped = stateOf(root, { ...alive, startTime: "1" });
    assert.equal(stopped.status, "stopped");
    assert.equal(stopped.pid, 0);
  });
});

Deno.test("listIds() lists the container directories, sorted", () => {
  withTempDir("trun-state-root-", (root) => {
    for (const d of ["b2", "a1", "has space"]) Deno.mkdirSync(`${root}/${d}`);
    Deno.writeTextFileSync(`${root}/c3`, "");
    assert.deepEqual(listIds(root), ["a1", "b2"]);
    assert.deepEqual(listIds(`${root}/missing`), []);
  });
});

// ---------------------------------------------------------------------------
// PID namespaces

Deno.test("processesInPidNamespace() finds this process in its own PID namespace", () => {
  const pids = processesInPidNamespace(Deno.pid);
  assert.ok(pids.includes(Deno.pid));
  assert.deepEqual(pids, [...pids].sort((a, b) => a - b));
  assert.deepEqual(processesInPidNamespace(unusedPid()), []);
});

Deno.test("processesInPidNamespace() counts unreadable links by descent from the init pid", () => {
  // 100 is the container's init; 101 shares its namespace; 102 is in
  // another; 103 and 104 have links that cannot be read (a regular file:
  // EINVAL, as EACCES would be) and descend from 101 and from 1; 105 is
  // gone between the listing and the read; 106 is a child of 102.
  const proc = Deno.makeTempDirSync({ prefix: "trun-state-ns-" });
  try {
    const add = (pid: number, ppid: number, ns: string | null) => {
      Deno.mkdirSync(`${proc}/${pid}/ns`, { recursive: true });
      const rest = Array.from({ length: 50 }, (_, i) => String(i + 3));
      rest[0] = "S";
      rest[1] = String(ppid);
      Deno.writeTextFileSync(`${proc}/${pid}/stat`, `${pid} (a b) ${rest.join(" ")}\n`);
      if (ns === null) Deno.writeTextFileSync(`${proc}/${pid}/ns/pid`, "");
      else Deno.symlinkSync(ns, `${proc}/${pid}/ns/pid`);
    };
    add(1, 0, null);
    add(100, 1, "pid:[4026532182]");
    add(101, 100, "pid:[4026532182]");
    add(102, 1, "pid:[4026531836]");
    add(103, 101, null);
    add(104, 1, null);
    Deno.mkdirSync(`${proc}/105`);
    add(106, 102, null);
    Deno.mkdirSync(`${proc}/self`);
    assert.deepEqual(processesInPidNamespace(100, proc), [100, 101, 103]);
    assert.deepEqual(processesInPidNamespace(102, proc), [102, 106]);
    assert.deepEqual(processesInPidNamespace(105, proc), []);
  } finally {
    Deno.removeSync(proc, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Once bugs

// Once a bug: `trun runtime create` makes the exec fifo with makeFifo(path, 0o622)
// (lib/engine/runtime.ts), but mknodat(2) applies the umask, so under the
// usual 022 it is 0600. The container reopens it for writing through
// /proc/self/fd after switching to process.user: a non-root user without
// CAP_DAC_OVERRIDE (Podman's and Docker's default for --user) gets EACCES
// and the container never starts. runc sets umask(0) around mkfifo.
Deno.test({
  name: "the exec fifo is created writable by the container's user (mode 0622)",
  fn: () => {
    withTempDir("trun-state-root-", (root) => {
      Deno.mkdirSync(`${root}/c1`);
      const old = Deno.umask(0o022);
      try {
        makeFifo(execFifoPath(root, "c1"), 0o622);
      } finally {
        Deno.umask(old);
      }
      assert.equal(Deno.statSync(execFifoPath(root, "c1")).mode! & 0o777, 0o622);
    });
  },
});

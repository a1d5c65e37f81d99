// Reads the child program compiled from plans: order, safety flags, exec.
import assert from "node:assert/strict";
import type { ChildOp } from "../../ffi/child_program.ts";
import { RESOLVE } from "../../ffi/syscalls.ts";
import { compileChildProgram, escapeOverlayPath } from "../../lib/runtime/child_program.ts";
import type { IdMapping } from "../../lib/runtime/idmap.ts";
import { assemblePlan, type ContainerPlan } from "../../lib/runtime/plan.ts";
import { etcFileContents, kernelAtLeast } from "../../lib/runtime/run_request.ts";

const SUBORDINATE: IdMapping = {
  mode: "subordinate",
  uid: [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }],
  gid: [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }],
};
const SINGLE: IdMapping = {
  mode: "single",
  uid: [{ inside: 0, outside: 1000, count: 1 }],
  gid: [{ inside: 0, outside: 1000, count: 1 }],
};

function plan(
  over: {
    idMapping?: IdMapping;
    volumes?: { source: string; target: string; readOnly: boolean }[];
    readOnly?: boolean;
    lowerdirAppend?: boolean;
    keepStdin?: boolean;
  } = {},
): ContainerPlan {
  return assemblePlan({
    id: "c".repeat(64),
    hostname: "box",
    idMapping: over.idMapping ?? SUBORDINATE,
    network: "host",
    rootfs: {
      lowers: ["/layers/top", "/layers/a:b"],
      scratch: "/run/x",
      readOnly: over.readOnly ?? false,
      lowerdirAppend: over.lowerdirAppend ?? true,
    },
    volumes: over.volumes ?? [],
    process: {
      args: ["sh", "-c", "true"],
      executables: ["/usr/bin/sh", "/bin/sh"],
      env: ["PATH=/usr/bin:/bin"],
      cwd: "/work",
      uid: 1000,
      gid: 1000,
      additionalGids: [1000, 10],
      keepStdin: over.keepStdin ?? false,
      tty: false,
    },
    hostHas: (p) => ({
      exists: true,
      dir: !p.includes("kcore") && !p.includes("keys") && !p.includes("sysrq"),
    }),
  });
}

const SYNC = 7;
const indexOf = (ops: ChildOp[], pred: (o: ChildOp) => boolean) => ops.findIndex(pred);
const resolveOf = (op: ChildOp) => {
  const how = op.args[2] as { bytes: Uint8Array };
  return Number(new DataView(how.bytes.buffer).getBigUint64(16, true));
};

Deno.test("compileChildProgram() waits for the id maps before any mount", () => {
  const ops = compileChildProgram(plan(), { syncRead: SYNC });
  const read = indexOf(ops, (o) => o.call === "read");
  const firstMount = indexOf(ops, (o) => o.call === "mount" || o.call === "fsopen");
  assert.ok(read >= 0 && read < firstMount);
  assert.equal(ops[read]!.args[0], SYNC);
});

Deno.test("compileChildProgram() mounts everything before pivot_root and switches user after", () => {
  const ops = compileChildProgram(plan(), { syncRead: SYNC });
  const pivot = indexOf(ops, (o) => o.call === "pivot_root");
  const lastMove = ops.map((o) => o.call).lastIndexOf("move_mount");
  const setuid = indexOf(ops, (o) => o.call === "setresuid");
  assert.ok(lastMove < pivot && pivot < setuid);
  assert.equal(ops[pivot + 1]!.call, "umount2");
  assert.deepEqual(ops[setuid]!.args, [1000, 1000, 1000]);
});

Deno.test("compileChildProgram() ends in execve over each candidate, ENOENT moving on", () => {
  const ops = compileChildProgram(plan(), { syncRead: SYNC });
  const execs = ops.filter((o) => o.call === "execve");
  assert.deepEqual(execs.map((o) => (o.args[0] as { str: string }).str), [
    "/usr/bin/sh",
    "/bin/sh",
  ]);
  assert.equal(execs[0]!.okErrno, 2);
  assert.equal(execs[1]!.okErrno, undefined);
  assert.equal(ops.at(-1), execs[1]);
  assert.equal(ops.at(-3)!.call, "rt_sigprocmask");
});

Deno.test("compileChildProgram() refuses symlinks on standard targets and contains them on volumes", () => {
  const ops = compileChildProgram(
    plan({ volumes: [{ source: "/srv", target: "/data", readOnly: true }] }),
    { syncRead: SYNC },
  );
  const final = (path: string) =>
    ops.find((o) =>
      o.call === "openat2" && (o.args[1] as { str: string }).str === path &&
      o.produces?.startsWith("target")
    );
  const proc = final("proc"), data = final("data");
  assert.ok(proc && data);
  assert.ok(resolveOf(proc) & RESOLVE.NO_SYMLINKS);
  assert.ok(resolveOf(proc) & RESOLVE.IN_ROOT);
  assert.equal(resolveOf(data) & RESOLVE.NO_SYMLINKS, 0);
  assert.ok(resolveOf(data) & RESOLVE.IN_ROOT);
  // Every openat2 stays in the root.
  for (const o of ops.filter((o) => o.call === "openat2")) {
    assert.ok(resolveOf(o) & RESOLVE.IN_ROOT, o.step);
  }
});

Deno.test("compileChildProgram() makes a read-only volume read-only", () => {
  const ops = compileChildProgram(
    plan({ volumes: [{ source: "/srv", target: "/data", readOnly: true }] }),
    { syncRead: SYNC },
  );
  const setattr = ops.find((o) =>
    o.call === "mount_setattr" && o.step.includes(`"/srv" on "/data"`)
  );
  assert.ok(setattr);
});

Deno.test("compileChildProgram() skips setgroups in a single-id mapping", () => {
  const withGroups = compileChildProgram(plan(), { syncRead: SYNC });
  const single = compileChildProgram(plan({ idMapping: SINGLE }), { syncRead: SYNC });
  assert.ok(withGroups.some((o) => o.call === "setgroups"));
  assert.ok(!single.some((o) => o.call === "setgroups"));
});

Deno.test("compileChildProgram() marks the root read-only only with --read-only", () => {
  const has = (p: ContainerPlan) =>
    compileChildProgram(p, { syncRead: SYNC }).some((o) => o.step === "making the root read-only");
  assert.equal(has(plan()), false);
  assert.equal(has(plan({ readOnly: true })), true);
});

Deno.test("compileChildProgram() names every step and produces every fd it uses", () => {
  const ops = compileChildProgram(plan(), { syncRead: SYNC });
  const produced = new Set<string>();
  for (const o of ops) {
    assert.ok(o.step.length > 0);
    for (const a of o.args) {
      if (typeof a === "object" && "ref" in a) {
        assert.ok(produced.has(a.ref), `${o.step}: ${a.ref} used before produced`);
      }
    }
    if (o.produces) produced.add(o.produces);
  }
});

Deno.test("escapeOverlayPath() escapes colons and backslashes", () => {
  assert.equal(escapeOverlayPath("/a:b\\c"), "/a\\:b\\\\c");
});

Deno.test("assemblePlan() masks only paths the host has, as directories or files", () => {
  const p = plan();
  const kcore = p.maskedPaths.find((m) => m.path === "/proc/kcore");
  const acpi = p.maskedPaths.find((m) => m.path === "/proc/acpi");
  assert.equal(kcore?.dir, false);
  assert.equal(acpi?.dir, true);
});

Deno.test("assemblePlan() refuses a volume whose source is missing", () => {
  assert.throws(
    () =>
      assemblePlan({
        ...{ id: "x", hostname: "h", idMapping: SINGLE, network: "host" as const },
        rootfs: { lowers: ["/r"], scratch: "/s", readOnly: false, lowerdirAppend: true },
        volumes: [{ source: "/nope", target: "/x", readOnly: false }],
        process: {
          args: ["a"],
          executables: ["/a"],
          env: [],
          cwd: "/",
          uid: 0,
          gid: 0,
          additionalGids: [],
          keepStdin: false,
          tty: false,
        },
        hostHas: () => ({ exists: false, dir: false }),
      }),
    /bind source path does not exist: "\/nope"/,
  );
});

Deno.test("compileChildProgram() passes each lower layer on its own with lowerdir+", () => {
  const values = (p: ContainerPlan) =>
    compileChildProgram(p, { syncRead: SYNC })
      .filter((o) => o.call === "fsconfig" && o.step.includes("option lowerdir"))
      .map((o) => `${(o.args[2] as { str: string }).str}=${(o.args[3] as { str: string }).str}`);
  assert.deepEqual(values(plan()), ["lowerdir+=/layers/top", "lowerdir+=/layers/a:b"]);
  assert.deepEqual(values(plan({ lowerdirAppend: false })), ["lowerdir=/layers/top:/layers/a\\:b"]);
});

Deno.test("kernelAtLeast() compares major and minor numbers", () => {
  assert.equal(kernelAtLeast(6, 8, "6.18.44-fc"), true);
  assert.equal(kernelAtLeast(6, 8, "6.8.0"), true);
  assert.equal(kernelAtLeast(6, 8, "6.7.12"), false);
  assert.equal(kernelAtLeast(6, 8, "5.19.1"), false);
  assert.equal(kernelAtLeast(6, 8, "garbage"), false);
});

Deno.test("etcFileContents() adds the hostname to the host's hosts file once", () => {
  const host = { hosts: "127.0.0.1 localhost\n10.0.0.5 db\n", resolvConf: "nameserver 10.0.0.1\n" };
  const c = etcFileContents("box", "host", host);
  assert.equal(c.hostname, "box\n");
  assert.equal(c.hosts, "127.0.0.1 localhost\n10.0.0.5 db\n127.0.1.1\tbox\n");
  assert.equal(c["resolv.conf"], "nameserver 10.0.0.1\n");
  const named = etcFileContents("db", "host", host);
  assert.equal(named.hosts, host.hosts);
});

Deno.test("etcFileContents() gives a loopback-only hosts file without the host's network", () => {
  const c = etcFileContents("box", "none", { hosts: "10.0.0.5 db\n", resolvConf: null });
  assert.doesNotMatch(c.hosts!, /db/);
  assert.match(c.hosts!, /^127\.0\.0\.1\tlocalhost\n/);
  assert.match(c.hosts!, /127\.0\.1\.1\tbox\n$/);
  assert.equal(c["resolv.conf"], null);
});

Deno.test("compileChildProgram() gives stdin /dev/null unless -i", () => {
  const dups = (p: ContainerPlan) =>
    compileChildProgram(p, { syncRead: SYNC }).filter((o) => o.call === "dup2").length;
  assert.equal(dups(plan()), 1);
  assert.equal(dups(plan({ keepStdin: true })), 0);
});

Deno.test("compileChildProgram() connects a terminal to fds 0-2 and makes it the controlling one", () => {
  const ops = compileChildProgram(plan(), { syncRead: SYNC, ttySlave: 9 });
  const dups = ops.filter((o) => o.call === "dup2").map((o) => o.args);
  assert.deepEqual(dups, [[9, 0], [9, 1], [9, 2]]);
  const setsid = ops.findIndex((o) => o.call === "setsid");
  const sctty = ops.findIndex((o) => o.call === "ioctl");
  assert.ok(setsid >= 0 && setsid < sctty, "TIOCSCTTY needs a new session without a terminal");
});

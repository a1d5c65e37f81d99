// Reads the child programs compiled from a ContainerConfig (trun's own
// generated spec, validated): the order of the ops, the safety flags on
// every path lookup, the identity switch and the exec tail.
import assert from "node:assert/strict";
import { type ChildOp, execTail, type OpArg } from "../../ffi/child_program.ts";
import { Errno } from "../../ffi/errno.ts";
import {
  AT,
  CAPABILITIES,
  CLONE,
  KEY_PERM,
  KEY_SPEC,
  KEYCTL,
  MOUNT_ATTR,
  MS,
  O,
  PR,
  RESOLVE,
  RLIMITS,
  S,
  SECCOMP,
  SIGNALS,
  TTY,
} from "../../ffi/syscalls.ts";
import { kernelAtLeast } from "../../lib/container/facts.ts";
import {
  type ContainerConfig,
  containerConfig,
  DEFAULT_DEVICES,
  type MountPlan,
} from "../../lib/engine/config.ts";
import {
  createProgram,
  type CreateProgramInput,
  DEV_SYMLINKS,
  escapeOverlayPath,
  joinProgram,
  type PathKind,
  READY_RECORD,
  type RootfsSource,
  sessionKeyringName,
} from "../../lib/engine/program.ts";
import { explainFailure } from "../../lib/engine/executor.ts";
import { generateSpec, type RunOptions } from "../../lib/spec/generate.ts";
import type { Spec } from "../../lib/spec/types.ts";
import { subordinate } from "./_mappings.ts";

// ---------------------------------------------------------------------------
// Input builders

const ID = "c".repeat(64);
const SCRATCH = "/run/x";
const ROOT = `${SCRATCH}/root`;
const FILES = "/run/trun/c1/files";
const SYNC = 7;
const ERR = 8;
const FIFO = 30;
const CONSOLE = { socket: 20, slot: 21 };

const OVERLAY: RootfsSource = {
  kind: "layered",
  lowers: ["/layers/top", "/layers/a:b"],
  upper: `${SCRATCH}/upper`,
  work: `${SCRATCH}/work`,
  lowerdirAppend: true,
};

/** trun's own spec for a rootless `run`, optionally edited, validated. */
function config(o: Partial<RunOptions> = {}, edit?: (s: Spec) => void): ContainerConfig {
  const spec = generateSpec({
    id: ID,
    rootPath: ROOT,
    filesDir: FILES,
    image: { cmd: ["sh", "-c", "true"], env: ["PATH=/usr/bin:/bin"], workingDir: "/work" },
    rootfs: {
      passwd: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
      group: "root:x:0:\nwheel:x:10:app\napp:x:1000:\n",
      etcBindable: { hostname: true, hosts: true, "resolv.conf": true },
    },
    options: {
      args: [],
      env: [],
      envFiles: [],
      groupAdd: [],
      volumes: [],
      readOnly: false,
      network: { kind: "host" },
      tty: false,
      ...o,
    },
    host: { idMapping: subordinate(), env: {}, hosts: null, resolvConf: "nameserver 10.0.0.1\n" },
  }).spec;
  edit?.(spec);
  return containerConfig(spec, "/bundle");
}

/** Everything the generated spec leaves out: sysctl, propagation, rlimits, ambient caps… */
function extras(s: Spec): void {
  s.domainname = "example.org";
  s.linux!.sysctl = { "net.ipv4.ip_forward": "1", "kernel.msgmax": "65536" };
  s.mounts!.push(
    { destination: "/shared", type: "bind", source: "/srv/shared", options: ["rbind", "rshared"] },
    { destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["private", "size=1m"] },
  );
  s.process!.rlimits = [{ type: "RLIMIT_NOFILE", soft: 1024, hard: 4096 }];
  s.process!.capabilities!.inheritable = ["CAP_NET_BIND_SERVICE"];
  s.process!.capabilities!.permitted = ["CAP_NET_BIND_SERVICE"];
  s.process!.capabilities!.ambient = ["CAP_NET_BIND_SERVICE"];
  s.process!.noNewPrivileges = true;
  s.process!.consoleSize = { height: 24, width: 80 };
}

/** What the container's root holds: the masked and read-only paths the test treats as absent. */
const ABSENT = new Set(["/proc/asound", "/proc/fs", "/sys/devices/virtual/powercap"]);
const FILE_PATHS = /kcore|keys|interrupts|timer_|latency_stats|sched_debug|sysrq/;

function containerPathKind(path: string): PathKind {
  if (ABSENT.has(path)) return null;
  return FILE_PATHS.test(path) ? "file" : "dir";
}

function input(c: ContainerConfig, over: Partial<CreateProgramInput> = {}): CreateProgramInput {
  return {
    config: c,
    executables: ["/usr/bin/sh", "/bin/sh"],
    rootfs: OVERLAY,
    syncRead: SYNC,
    errFd: ERR,
    joinFds: [],
    stdinNull: true,
    dieWithParent: true,
    setgroups: true,
    kindOf: (p) => p.startsWith(`${FILES}/`) ? "file" : "dir",
    containerPathKind,
    ...over,
  };
}

function program(c: ContainerConfig = config(), over: Partial<CreateProgramInput> = {}) {
  return createProgram(input(c, over));
}

// ---------------------------------------------------------------------------
// Readers

const str = (a: OpArg | undefined) => (a as { str: string }).str;
const bytes = (a: OpArg | undefined) => (a as { bytes: Uint8Array }).bytes;
const at = (ops: ChildOp[], pred: (o: ChildOp) => boolean) => ops.findIndex(pred);
const lastAt = (ops: ChildOp[], pred: (o: ChildOp) => boolean) => ops.findLastIndex(pred);
const callAt = (ops: ChildOp[], call: string) => at(ops, (o) => o.call === call);

/**
 * The identity switch's setresuid/setresgid: the last one (a new user
 * namespace first makes the process root in it with an earlier pair).
 */
const switchAt = (ops: ChildOp[], call: "setresuid" | "setresgid") =>
  ops.findLastIndex((o) => o.call === call);

Deno.test("createProgram() becomes root of a new user namespace right after the id maps", () => {
  const ops = program(config());
  const sync = at(ops, (o) => o.call === "read" && o.step === "waiting for the id maps");
  assert.deepEqual(ops.slice(sync + 2, sync + 4).map((o) => [o.call, o.args]), [
    ["setresgid", [0, 0, 0]],
    ["setresuid", [0, 0, 0]],
  ]);
});

/** openat2's `resolve` field (struct open_how, third u64). */
function resolveOf(op: ChildOp): number {
  const how = bytes(op.args[2]);
  return Number(new DataView(how.buffer, how.byteOffset).getBigUint64(16, true));
}

/** mount_setattr's struct mount_attr as its four u64 fields. */
function mountAttrOf(op: ChildOp): { set: number; clear: number; propagation: number } {
  const b = bytes(op.args[3]);
  const v = new DataView(b.buffer, b.byteOffset);
  return {
    set: Number(v.getBigUint64(0, true)),
    clear: Number(v.getBigUint64(8, true)),
    propagation: Number(v.getBigUint64(16, true)),
  };
}

const isPrctl = (option: number, arg?: number) => (o: ChildOp) =>
  o.call === "prctl" && o.args[0] === option && (arg === undefined || o.args[1] === arg);

/** The step text of a planned mount, as the builder names it. */
/**
 * Asserts the working directory is entered as `path` inside the root fd
 * `root`: openat2 with RESOLVE_IN_ROOT and RESOLVE_NO_MAGICLINKS, then
 * fchdir to what it opened, and no chdir(2) by path to it.
 */
function assertEntersWorkingDirectory(ops: ChildOp[], root: string, path: string): number {
  const open = at(ops, (o) => o.call === "openat2" && o.step.startsWith("changing to the working"));
  assert.ok(open >= 0, "an openat2 of the working directory");
  const o = ops[open]!;
  assert.deepEqual(o.args[0], { ref: root });
  assert.equal(str(o.args[1]), path);
  assert.equal(resolveOf(o), RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS);
  assert.equal(ops[open + 1]!.call, "fchdir");
  assert.deepEqual(ops[open + 1]!.args, [{ ref: o.produces! }]);
  assert.ok(!ops.some((x) => x.call === "chdir" && str(x.args[0]) !== "/"), "no chdir by path");
  return open;
}

/** Whether an op resolves a path (the kernel walks a string argument). */
const resolvesPath = (o: ChildOp) =>
  o.args.some((a) => typeof a === "object" && ("str" in a || "strs" in a)) &&
  o.call !== "sethostname" && o.call !== "setdomainname";

function mountStep(m: MountPlan): string {
  return m.kind === "fs"
    ? `mounting ${m.fstype} on "${m.target}"`
    : `bind-mounting "${m.source}" on "${m.target}"`;
}

const MOUNT_CALLS = new Set(["mount", "fsopen", "open_tree", "move_mount", "mount_setattr"]);

// ---------------------------------------------------------------------------
// createProgram(): before the mounts

Deno.test("createProgram() waits for the id maps before any mount", () => {
  const ops = program();
  const read = callAt(ops, "read");
  const firstMount = at(ops, (o) => MOUNT_CALLS.has(o.call));
  assert.ok(read >= 0 && read < firstMount);
  assert.equal(ops[read]!.args[0], SYNC);
  assert.deepEqual(ops[read + 1], {
    call: "close",
    args: [SYNC],
    step: "closing the sync pipe",
  });
});

Deno.test("createProgram() sets the parent-death signal first, only with dieWithParent", () => {
  const pdeath = isPrctl(PR.SET_PDEATHSIG);
  const ops = program(config(), { dieWithParent: true });
  assert.equal(at(ops, pdeath), 0);
  assert.deepEqual(ops[0]!.args, [PR.SET_PDEATHSIG, SIGNALS.SIGKILL, 0, 0, 0]);
  assert.equal(program(config(), { dieWithParent: false }).some(pdeath), false);
});

Deno.test("createProgram() joins the given namespaces in order after the sync read, before any mount", () => {
  const ops = program(config(), {
    joinFds: [{ type: "network", fd: 40 }, { type: "ipc", fd: 41 }],
  });
  const setns = ops.flatMap((o, i) => o.call === "setns" ? [i] : []);
  assert.deepEqual(setns.map((i) => ops[i]!.args), [[40, CLONE.NEWNET], [41, CLONE.NEWIPC]]);
  assert.ok(callAt(ops, "read") < setns[0]!);
  assert.ok(setns[1]! < at(ops, (o) => MOUNT_CALLS.has(o.call)));
});

Deno.test("createProgram() joining another container's PID namespace is non-dumpable but while its maps are written", () => {
  const base = config();
  const c: ContainerConfig = {
    ...base,
    newNamespaces: base.newNamespaces.filter((t) => t !== "pid"),
    joinNamespaces: [{ type: "pid", path: "/proc/42/ns/pid" }],
  };
  const ops = program(c, { joinFds: [{ type: "pid", fd: 40 }], mapsSync: 9 });
  const off = ops.flatMap((o, i) => isPrctl(PR.SET_DUMPABLE, 0)(o) ? [i] : []);
  const on = ops.flatMap((o, i) => isPrctl(PR.SET_DUMPABLE, 1)(o) ? [i] : []);
  const setns = callAt(ops, "setns");
  const ask = at(ops, (o) => o.step === "asking for the id maps");
  const mapsRead = at(ops, (o) => o.call === "read" && o.args[0] === 9);
  const fork = callAt(ops, "clone");
  assert.equal(off.length, 2);
  assert.equal(on.length, 1);
  assert.ok(off[0]! < setns, "non-dumpable before the first setns");
  assert.ok(setns < on[0]! && on[0]! < ask, "dumpable for the parent's map write");
  assert.ok(
    mapsRead < off[1]! && off[1]! < fork,
    "non-dumpable again before entering the PID namespace",
  );
  // A container of its own (no joins) stays as it was.
  assert.ok(!program().some(isPrctl(PR.SET_DUMPABLE)));
});

Deno.test("createProgram() makes / rslave by default before mounting the root", () => {
  const ops = program();
  const first = at(ops, (o) => MOUNT_CALLS.has(o.call));
  assert.deepEqual(ops[first]!.call, "mount");
  assert.deepEqual(ops[first]!.args, [0, { str: "/" }, 0, MS.REC | MS.SLAVE, 0]);
});

// ---------------------------------------------------------------------------
// The root

Deno.test("createProgram() mounts an overlay root of the layers and the writable layer, on root.path", () => {
  const ops = program(config(), { rootfs: OVERLAY });
  // The writable layer is on disk: nothing is mounted under it first.
  assert.ok(!ops.some((o) => o.call === "mount" && str(o.args[1]) === SCRATCH));
  const fsopen = callAt(ops, "fsopen");
  assert.equal(str(ops[fsopen]!.args[0]), "overlay");
  // nodev: device nodes an image carries are never opened through the root.
  const fsmount = ops.findIndex((o, i) => i > fsopen && o.call === "fsmount");
  assert.equal(ops[fsmount]!.args[2], MOUNT_ATTR.NODEV);
  const options = ops.slice(fsopen).filter((o) =>
    o.call === "fsconfig" && o.args[1] !== AT.FSCONFIG_CMD_CREATE
  ).slice(0, 5).map((o) =>
    o.args[1] === AT.FSCONFIG_SET_FLAG ? str(o.args[2]) : `${str(o.args[2])}=${str(o.args[3])}`
  );
  assert.deepEqual(options, [
    "lowerdir+=/layers/top",
    "lowerdir+=/layers/a:b",
    `upperdir=${SCRATCH}/upper`,
    `workdir=${SCRATCH}/work`,
    "userxattr",
  ]);
  const move = callAt(ops, "move_mount");
  assert.ok(move > fsopen);
  assert.deepEqual(ops[move]!.args.slice(1), [
    { str: "" },
    AT.FDCWD,
    { str: ROOT },
    AT.MOVE_MOUNT_F_EMPTY_PATH,
  ]);
  assert.ok(at(ops, (o) => o.call === "open_tree") > move, "no bind before the root");
  const root = at(ops, (o) => o.produces === "root");
  assert.ok(root > move);
  assert.deepEqual(ops[root]!.args, [AT.FDCWD, { str: ROOT }, O.PATH | O.DIRECTORY | O.CLOEXEC]);
});

Deno.test('createProgram() binds a "path" root onto itself (open_tree, move_mount)', () => {
  const ops = program(config(), { rootfs: { kind: "path" } });
  const tree = callAt(ops, "open_tree");
  assert.deepEqual(ops[tree]!.args, [
    AT.FDCWD,
    { str: ROOT },
    AT.OPEN_TREE_CLONE | AT.OPEN_TREE_CLOEXEC | AT.RECURSIVE,
  ]);
  const move = ops[tree + 1]!;
  assert.equal(move.call, "move_mount");
  assert.deepEqual(move.args, [
    { ref: ops[tree]!.produces! },
    { str: "" },
    AT.FDCWD,
    { str: ROOT },
    AT.MOVE_MOUNT_F_EMPTY_PATH,
  ]);
  assert.ok(!ops.some((o) => o.call === "fsopen" && str(o.args[0]) === "overlay"));
  assert.ok(!ops.some((o) => o.call === "mount" && str(o.args[1]) === SCRATCH));
  assert.ok(at(ops, (o) => o.produces === "root") > tree + 1);
});

Deno.test("createProgram() passes each lower layer on its own with lowerdir+, else one escaped list", () => {
  const values = (lowerdirAppend: boolean) =>
    program(config(), { rootfs: { ...OVERLAY, lowerdirAppend } as RootfsSource })
      .filter((o) => o.call === "fsconfig" && o.step.includes("option lowerdir"))
      .map((o) => `${str(o.args[2])}=${str(o.args[3])}`);
  assert.deepEqual(values(true), ["lowerdir+=/layers/top", "lowerdir+=/layers/a:b"]);
  assert.deepEqual(values(false), ["lowerdir=/layers/top:/layers/a\\:b"]);
});

Deno.test("escapeOverlayPath() escapes colons and backslashes", () => {
  assert.equal(escapeOverlayPath("/a:b\\c"), "/a\\:b\\\\c");
});

Deno.test("kernelAtLeast() compares major and minor numbers", () => {
  assert.equal(kernelAtLeast(6, 8, "6.18.44-fc"), true);
  assert.equal(kernelAtLeast(6, 8, "6.8.0"), true);
  assert.equal(kernelAtLeast(6, 8, "6.7.12"), false);
  assert.equal(kernelAtLeast(6, 8, "5.19.1"), false);
  assert.equal(kernelAtLeast(6, 8, "7.0.0"), true);
  assert.equal(kernelAtLeast(6, 8, "garbage"), false);
});

Deno.test("createProgram() marks the root read-only only with root.readonly", () => {
  const has = (readOnly: boolean) =>
    program(config({ readOnly })).some((o) =>
      o.call === "mount_setattr" && o.step === "making the root read-only"
    );
  assert.equal(has(false), false);
  assert.equal(has(true), true);
  const ops = program(config({ readOnly: true }));
  const ro = at(ops, (o) => o.step === "making the root read-only");
  assert.deepEqual(ops[ro]!.args[0], { ref: "root" });
  assert.equal(mountAttrOf(ops[ro]!).set, MOUNT_ATTR.RDONLY);
  assert.ok(ro < callAt(ops, "pivot_root"));
});

// ---------------------------------------------------------------------------
// Mounts

const VOLUMES = ["/srv:/data:ro", "/opt/tools:/sysroot", "/srv/dev:/devices"];

Deno.test("createProgram() performs the mounts in spec order", () => {
  const c = config({ volumes: VOLUMES }, extras);
  const ops = program(c);
  let previous = -1;
  for (const m of c.mounts) {
    const what = mountStep(m);
    const first = at(ops, (o) => o.step.startsWith(what));
    const last = lastAt(ops, (o) => o.step.startsWith(what));
    assert.ok(first > previous, `${what} comes after the mount before it`);
    assert.ok(ops.slice(first, last + 1).some((o) => o.call === "move_mount"), what);
    previous = last;
  }
  assert.ok(previous < callAt(ops, "pivot_root"));
});

Deno.test("createProgram() refuses symlinks only on /proc, /sys and /dev targets, and stays in the root", () => {
  const c = config({ volumes: VOLUMES }, extras);
  const ops = program(c);
  const strict = /^\/(proc|sys|dev)(\/|$)/;
  const seen: string[] = [];
  for (const m of c.mounts) {
    const opens = ops.filter((o) => o.call === "openat2" && o.step.startsWith(mountStep(m)));
    assert.ok(opens.length > 0, m.target);
    for (const o of opens) {
      assert.ok(resolveOf(o) & RESOLVE.IN_ROOT, o.step);
      assert.equal((resolveOf(o) & RESOLVE.NO_SYMLINKS) !== 0, strict.test(m.target), o.step);
    }
    seen.push(m.target);
  }
  for (const t of ["/proc", "/sys", "/dev/pts", "/data", "/sysroot", "/devices", "/etc/hosts"]) {
    assert.ok(seen.includes(t), t);
  }
  // Every openat2 of the program, mounts or not, resolves in the root.
  for (const o of ops.filter((o) => o.call === "openat2")) {
    assert.ok(resolveOf(o) & RESOLVE.IN_ROOT, o.step);
  }
});

Deno.test("createProgram() makes a read-only volume read-only, and leaves a rw one alone", () => {
  const ops = program(config({ volumes: ["/srv:/data:ro", "/opt/tools:/sysroot"] }));
  const setattr = (what: string) =>
    ops.filter((o) => o.call === "mount_setattr" && o.step.startsWith(what));
  const ro = setattr(`bind-mounting "/srv" on "/data"`);
  assert.equal(ro.length, 1);
  assert.ok(mountAttrOf(ro[0]!).set & MOUNT_ATTR.RDONLY);
  assert.ok(((ro[0]!.args[2] as number) & AT.RECURSIVE) !== 0, "rbind: the whole tree");
  assert.equal(setattr(`bind-mounting "/opt/tools" on "/sysroot"`).length, 0);
});

Deno.test("createProgram() creates a file target for a file bind source", () => {
  const ops = program();
  const what = `bind-mounting "${FILES}/hosts" on "/etc/hosts"`;
  const create = ops.find((o) =>
    o.call === "openat2" && o.step === `${what}: creating "/etc/hosts"`
  );
  assert.ok(create);
  assert.equal(str(create.args[1]), "hosts");
  assert.ok(Number(new DataView(bytes(create.args[2]).buffer).getBigUint64(0, true)) & O.CREAT);
});

Deno.test("createProgram() binds the devices right after the /dev tmpfs, then the /dev symlinks", () => {
  const c = config();
  assert.ok(c.setupDev);
  const ops = program(c);
  const devMove = lastAt(ops, (o) => o.step.startsWith(`mounting tmpfs on "/dev"`));
  assert.equal(ops[devMove]!.call, "move_mount");
  assert.deepEqual(ops.slice(devMove + 1, devMove + 3).map((o) => o.call), ["close", "close"]);
  const devices = DEFAULT_DEVICES.map((d) =>
    at(ops, (o) => o.step.startsWith(`providing the device "${d.path}"`))
  );
  assert.equal(devices[0], devMove + 3, "the first device follows the /dev mount");
  assert.deepEqual([...devices].sort((a, b) => a - b), devices, "devices in order");
  for (const d of DEFAULT_DEVICES) {
    const tree = ops.find((o) =>
      o.call === "open_tree" && o.step === `providing the device "${d.path}"`
    );
    assert.deepEqual(tree?.args.slice(0, 2), [AT.FDCWD, { str: d.path }]);
  }
  const lastDevice = lastAt(ops, (o) => o.step.startsWith("providing the device"));
  const links = ops.flatMap((o, i) => o.call === "symlinkat" ? [i] : []);
  assert.deepEqual(
    links.map((i) => [str(ops[i]!.args[2]), str(ops[i]!.args[0])]),
    Object.entries(DEV_SYMLINKS),
  );
  assert.ok(lastDevice < links[0]!);
  assert.ok(links.every((i) => ops[i]!.okErrno === Errno.EEXIST));
  const pts = at(ops, (o) => o.step.startsWith(`mounting devpts on "/dev/pts"`));
  assert.ok(links.at(-1)! < pts, "the links before the next mount");
});

Deno.test("createProgram() binds the spec's devices after the mounts when /dev is not a tmpfs of its own", () => {
  const c = config({}, (s) => {
    s.mounts = s.mounts!.filter((m) => m.destination !== "/dev");
    s.linux!.devices = [{ type: "c", path: "/dev/fuse", major: 10, minor: 229 }];
  });
  assert.equal(c.setupDev, false);
  const ops = program(c);
  const lastMount = Math.max(
    ...c.mounts.map((m) => lastAt(ops, (o) => o.step.startsWith(mountStep(m)))),
  );
  const fuse = at(ops, (o) => o.step.startsWith(`providing the device "/dev/fuse"`));
  assert.ok(fuse > lastMount);
  assert.ok(!ops.some((o) => o.step.startsWith(`providing the device "/dev/null"`)));
  assert.ok(!ops.some((o) => o.call === "symlinkat"));
});

Deno.test("createProgram() sets a propagation after a mount with a propagation option", () => {
  const c = config({}, extras);
  const ops = program(c);
  const cases: [string, string, number, boolean][] = [
    [`bind-mounting "/srv/shared" on "/shared"`, "shared", MS.SHARED, true],
    [`mounting tmpfs on "/scratch"`, "private", MS.PRIVATE, false],
  ];
  for (const [what, type, flag, recursive] of cases) {
    const move = lastAt(ops, (o) => o.call === "move_mount" && o.step === what);
    const reopen = at(ops, (o) => o.step === `${what}: setting ${type} propagation`);
    assert.ok(move >= 0 && reopen > move, what);
    assert.equal(ops[reopen]!.call, "openat2");
    assert.equal(str(ops[reopen]!.args[1]), what.includes("shared") ? "shared" : "scratch");
    const set = ops[reopen + 1]!;
    assert.equal(set.call, "mount_setattr");
    assert.deepEqual(set.args[0], { ref: ops[reopen]!.produces! });
    assert.equal(mountAttrOf(set).propagation, flag);
    assert.equal(((set.args[2] as number) & AT.RECURSIVE) !== 0, recursive, what);
  }
  // Mounts without such an option get no propagation op.
  assert.equal(ops.filter((o) => o.step.includes("propagation")).length, 4);
});

Deno.test("createProgram() writes the sysctls after /proc is mounted, before the read-only paths", () => {
  const ops = program(config({}, extras));
  const writes = ops.flatMap((o, i) =>
    o.call === "write" && o.step.startsWith("setting sysctl") ? [i] : []
  );
  assert.equal(writes.length, 2);
  const text = (i: number) => new TextDecoder().decode(bytes(ops[i]!.args[1]));
  assert.deepEqual(writes.map(text), ["1", "65536"]);
  const open = ops[writes[0]! - 1]!;
  assert.equal(open.call, "openat2");
  assert.deepEqual(open.args[0], { ref: "root" });
  assert.equal(str(open.args[1]), "proc/sys/net/ipv4/ip_forward");
  assert.equal(resolveOf(open), RESOLVE.IN_ROOT | RESOLVE.NO_SYMLINKS);
  const proc = lastAt(ops, (o) => o.step.startsWith(`mounting proc on "/proc"`));
  const readonly = at(ops, (o) => o.step.startsWith('making "/proc/'));
  assert.ok(proc < writes[0]! && writes[1]! < readonly);
});

Deno.test("createProgram() masks paths with a tmpfs (dirs) or /dev/null (files), skipping absent ones", () => {
  const c = config();
  const ops = program(c);
  assert.ok(c.maskedPaths.includes("/proc/asound"));
  assert.ok(!ops.some((o) => o.step.startsWith(`masking "/proc/asound"`)));
  const acpi = ops.filter((o) => o.step.startsWith(`masking "/proc/acpi"`));
  assert.ok(acpi.some((o) => o.call === "fsopen" && str(o.args[0]) === "tmpfs"));
  assert.ok(!acpi.some((o) => o.call === "open_tree"));
  const kcore = ops.filter((o) => o.step.startsWith(`masking "/proc/kcore"`));
  assert.ok(kcore.some((o) => o.call === "open_tree" && str(o.args[1]) === "/dev/null"));
  assert.ok(!kcore.some((o) => o.call === "fsopen"));
  for (const o of [...acpi, ...kcore].filter((o) => o.call === "openat2")) {
    assert.ok(resolveOf(o) & RESOLVE.NO_SYMLINKS, o.step);
  }
  const masked = c.maskedPaths.filter((p) => containerPathKind(p) !== null);
  const moved = ops.filter((o) => o.call === "move_mount" && o.step.startsWith("masking"));
  assert.deepEqual(moved.map((o) => o.step), masked.map((p) => `masking "${p}"`));
});

Deno.test("createProgram() makes the read-only paths read-only, skipping absent ones", () => {
  const c = config();
  const ops = program(c);
  assert.ok(!ops.some((o) => o.step.startsWith(`making "/proc/fs" read-only`)));
  const sys = ops.filter((o) => o.step === `making "/proc/sys" read-only`);
  assert.deepEqual(sys.map((o) => o.call), [
    "openat2",
    "open_tree",
    "mount_setattr",
    "move_mount",
  ]);
  assert.ok(mountAttrOf(sys[2]!).set & MOUNT_ATTR.RDONLY);
  const masks = lastAt(ops, (o) => o.step.startsWith("masking"));
  assert.ok(masks < at(ops, (o) => o.step.startsWith('making "/proc/')));
});

// ---------------------------------------------------------------------------
// After the mounts

Deno.test("createProgram() mounts everything before pivot_root and switches user after", () => {
  const ops = program(config({ user: "app", volumes: VOLUMES }, extras), { console: CONSOLE });
  const pivot = callAt(ops, "pivot_root");
  const lastMove = lastAt(ops, (o) => o.call === "move_mount");
  const lastSetattr = lastAt(ops, (o) => o.call === "mount_setattr");
  const setuid = switchAt(ops, "setresuid");
  assert.ok(lastMove < pivot && lastSetattr < pivot && pivot < setuid);
  assert.equal(ops[pivot - 1]!.call, "fchdir");
  assert.deepEqual(ops[pivot - 1]!.args, [{ ref: "root" }]);
  assert.equal(ops[pivot + 1]!.call, "umount2");
  assert.deepEqual(ops[pivot + 1]!.args, [{ str: "." }, AT.MNT_DETACH]);
  assert.deepEqual(ops[setuid]!.args, [1000, 1000, 1000]);
});

Deno.test("createProgram() creates the working directory in the root, before pivot_root", () => {
  const ops = program();
  const what = `creating the working directory "/work"`;
  const mk = at(ops, (o) => o.call === "mkdirat" && o.step.startsWith(what));
  assert.ok(mk >= 0 && mk < callAt(ops, "pivot_root"));
  const chdir = ops.filter((o) => o.call === "chdir").map((o) => str(o.args[0]));
  assert.deepEqual(chdir, ["/"]);
});

Deno.test("createProgram() enters the working directory inside the new root, never through a magic link", () => {
  const ops = program(config({ user: "app" }));
  const root = at(ops, (o) => o.produces === "newRoot");
  assert.ok(root > callAt(ops, "pivot_root"));
  assert.deepEqual(ops[root]!.args, [AT.FDCWD, { str: "/" }, O.PATH | O.DIRECTORY | O.CLOEXEC]);
  assertEntersWorkingDirectory(ops, "newRoot", "work");
  assert.ok(
    switchAt(ops, "setresuid") < at(ops, (o) => o.call === "fchdir" && o.step.includes("working")),
  );
});

Deno.test("createProgram() sets the hostname and domain name after pivot_root", () => {
  const ops = program(config({ hostname: "box" }, extras));
  const host = callAt(ops, "sethostname");
  const domain = callAt(ops, "setdomainname");
  assert.deepEqual(ops[host]!.args, [{ str: "box" }, 3]);
  assert.deepEqual(ops[domain]!.args, [{ str: "example.org" }, 11]);
  assert.ok(callAt(ops, "pivot_root") < host && host < domain);
  const none = program(config({ hostname: "box" }, (s) => delete s.hostname));
  assert.ok(!none.some((o) => o.call === "sethostname" || o.call === "setdomainname"));
});

Deno.test("createProgram() gives stdin /dev/null only when asked and without a terminal", () => {
  const dups = (over: Partial<CreateProgramInput>) =>
    program(config(), over).filter((o) => o.call === "dup2").map((o) => o.args);
  assert.deepEqual(dups({ stdinNull: true }), [[{ ref: "devnull" }, 0]]);
  assert.deepEqual(dups({ stdinNull: false }), []);
  const ops = program(config(), { stdinNull: true });
  const open = at(ops, (o) => o.produces === "devnull");
  assert.deepEqual(ops[open]!.args, [AT.FDCWD, { str: "/dev/null" }, O.RDONLY | O.CLOEXEC]);
  assert.ok(open > callAt(ops, "pivot_root"), "the container's /dev/null");
  const withTty = dups({ stdinNull: true, console: CONSOLE });
  assert.ok(!withTty.some((a) => JSON.stringify(a[0]) === JSON.stringify({ ref: "devnull" })));
});

Deno.test("createProgram() opens a terminal on the container's devpts and sends its master", () => {
  const ops = program(config({ tty: true }, extras), { console: CONSOLE, stdinNull: true });
  const pivot = callAt(ops, "pivot_root");
  const ptmx = at(ops, (o) => o.produces === "ptmx");
  assert.ok(ptmx > pivot);
  assert.deepEqual(ops[ptmx]!.args, [
    AT.FDCWD,
    { str: "/dev/pts/ptmx" },
    O.RDWR | O.NOCTTY | O.CLOEXEC,
  ]);
  const ioctl = (req: number) => at(ops, (o) => o.call === "ioctl" && o.args[1] === req);
  const unlock = ioctl(TTY.SPTLCK), peer = ioctl(TTY.GPTPEER), size = ioctl(TTY.SWINSZ);
  assert.equal(ops[peer]!.produces, "pts");
  assert.deepEqual(ops[peer]!.args[0], { ref: "ptmx" });
  const winsize = new DataView(bytes(ops[size]!.args[2]).buffer);
  assert.deepEqual([winsize.getUint16(0, true), winsize.getUint16(2, true)], [24, 80]);
  const dup3 = callAt(ops, "dup3");
  assert.deepEqual(ops[dup3]!.args, [{ ref: "ptmx" }, CONSOLE.slot, O.CLOEXEC]);
  const send = callAt(ops, "sendmsg");
  assert.equal(ops[send]!.args[0], CONSOLE.socket);
  const sendFd = ops[send]!.args[1] as { sendFd: { fd: number; name: string } };
  assert.equal(sendFd.sendFd.fd, CONSOLE.slot);
  const dups = ops.flatMap((o, i) => o.call === "dup2" ? [i] : []);
  assert.deepEqual(dups.map((i) => ops[i]!.args), [[{ ref: "pts" }, 0], [{ ref: "pts" }, 1], [
    { ref: "pts" },
    2,
  ]]);
  const sctty = ioctl(TTY.SCTTY);
  assert.deepEqual(ops[sctty]!.args, [0, TTY.SCTTY, 0]);
  assert.ok(
    ptmx < unlock && unlock < peer && peer < dup3 && dup3 < send && send < dups[0]! &&
      dups[2]! < sctty,
  );
  const setsid = callAt(ops, "setsid");
  assert.ok(setsid >= 0 && setsid < sctty, "TIOCSCTTY needs a new session without a terminal");
  assert.ok(sctty < switchAt(ops, "setresuid"), "the terminal before the user switch");
  assert.ok(!ops.some((o) => o.produces === "devnull"));
});

Deno.test("createProgram() leaves the terminal size alone without consoleSize", () => {
  const ops = program(config({ tty: true }), { console: CONSOLE });
  assert.ok(!ops.some((o) => o.call === "ioctl" && o.args[1] === TTY.SWINSZ));
});

// ---------------------------------------------------------------------------
// Identity

Deno.test("createProgram() switches identity in runc's order", () => {
  const c = config({ user: "app" }, extras);
  const ops = program(c);
  const order: [string, number][] = [
    ["prlimit64", callAt(ops, "prlimit64")],
    ["first bounding drop", at(ops, isPrctl(PR.CAPBSET_DROP))],
    ["last bounding drop", lastAt(ops, isPrctl(PR.CAPBSET_DROP))],
    ["SET_KEEPCAPS 1", at(ops, isPrctl(PR.SET_KEEPCAPS, 1))],
    ["setgroups", callAt(ops, "setgroups")],
    ["setresgid", switchAt(ops, "setresgid")],
    ["setresuid", switchAt(ops, "setresuid")],
    ["SET_KEEPCAPS 0", at(ops, isPrctl(PR.SET_KEEPCAPS, 0))],
    ["capset", callAt(ops, "capset")],
    ["ambient clear", at(ops, isPrctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_CLEAR_ALL))],
    ["ambient raise", at(ops, isPrctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_RAISE))],
    ["no_new_privs", at(ops, isPrctl(PR.SET_NO_NEW_PRIVS, 1))],
  ];
  for (const [name, i] of order) assert.ok(i >= 0, `${name} is there`);
  for (let k = 1; k < order.length; k++) {
    assert.ok(order[k - 1]![1] < order[k]![1], `${order[k - 1]![0]} before ${order[k]![0]}`);
  }
  const limit = ops[callAt(ops, "prlimit64")]!;
  assert.equal(limit.args[1], RLIMITS.RLIMIT_NOFILE);
  const rl = new DataView(bytes(limit.args[2]).buffer);
  assert.deepEqual([rl.getBigUint64(0, true), rl.getBigUint64(8, true)], [1024n, 4096n]);
  assert.deepEqual(ops[switchAt(ops, "setresgid")]!.args, [1000, 1000, 1000]);
  const groups = new Uint32Array(bytes(ops[callAt(ops, "setgroups")]!.args[1]).slice().buffer);
  assert.deepEqual([...groups], c.process.additionalGids);
  assert.deepEqual(c.process.additionalGids, [1000, 10]);
  const raise = ops[at(ops, isPrctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_RAISE))]!;
  assert.equal(raise.args[2], CAPABILITIES.CAP_NET_BIND_SERVICE);
});

Deno.test("createProgram() drops from the bounding set only what the spec leaves out", () => {
  const ops = program();
  const dropped = new Set(ops.filter(isPrctl(PR.CAPBSET_DROP)).map((o) => o.args[1]));
  assert.ok(dropped.has(CAPABILITIES.CAP_SYS_ADMIN));
  assert.ok(!dropped.has(CAPABILITIES.CAP_CHOWN));
  assert.ok(!dropped.has(CAPABILITIES.CAP_NET_BIND_SERVICE));
  assert.ok(ops.filter(isPrctl(PR.CAPBSET_DROP)).every((o) => o.okErrno === Errno.EINVAL));
});

Deno.test("createProgram() leaves setgroups out when it is denied", () => {
  assert.ok(program(config(), { setgroups: true }).some((o) => o.call === "setgroups"));
  assert.ok(!program(config(), { setgroups: false }).some((o) => o.call === "setgroups"));
});

Deno.test("createProgram() sets no_new_privs and ambient capabilities only when asked", () => {
  const ops = program();
  assert.ok(!ops.some(isPrctl(PR.SET_NO_NEW_PRIVS)));
  assert.ok(!ops.some(isPrctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_RAISE)));
  assert.ok(ops.some(isPrctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_CLEAR_ALL)));
});

// ---------------------------------------------------------------------------
// Exec fifo and exec

Deno.test("createProgram() reports created, then blocks on the exec fifo, then execs", () => {
  const ops = program(config(), { execFifo: FIFO });
  const ready = at(ops, (o) => o.call === "write" && o.args[0] === ERR);
  assert.deepEqual(ops[ready]!.args, [ERR, { bytes: READY_RECORD }, 16]);
  const open = ops[ready + 1]!;
  assert.equal(open.call, "openat");
  assert.deepEqual(open.args, [AT.FDCWD, { str: `/proc/self/fd/${FIFO}` }, O.WRONLY | O.CLOEXEC]);
  const write = ops[ready + 2]!;
  assert.equal(write.call, "write");
  assert.deepEqual(write.args[0], { ref: open.produces! });
  assert.ok(switchAt(ops, "setresuid") < ready && callAt(ops, "capset") < ready);
  assert.ok(ready + 2 < callAt(ops, "execve"));
  const without = program(config());
  assert.ok(!without.some((o) => o.call === "write" && o.args[0] === ERR));
  assert.ok(
    !without.some((o) => o.call === "openat" && str(o.args[1]).startsWith("/proc/self/fd")),
  );
});

Deno.test("createProgram() ends in the exec tail, execve over each candidate with ENOENT moving on", () => {
  const c = config();
  const variants: Partial<CreateProgramInput>[] = [{}, { execFifo: FIFO }, { console: CONSOLE }];
  for (const over of variants) {
    const ops = program(c, over);
    const tail = execTail({
      paths: ["/usr/bin/sh", "/bin/sh"],
      argv: c.process.args,
      env: c.process.env,
      closeFds: true,
    });
    assert.deepEqual(ops.slice(-tail.length), tail);
    const before = over.execFifo ? "close" : "fchdir";
    assert.equal(ops[ops.length - tail.length - (over.execFifo ? 1 : 3)]!.call, before);
  }
  const ops = program(c);
  const execs = ops.filter((o) => o.call === "execve");
  assert.deepEqual(execs.map((o) => str(o.args[0])), ["/usr/bin/sh", "/bin/sh"]);
  assert.equal(execs[0]!.okErrno, Errno.ENOENT);
  assert.equal(execs[1]!.okErrno, undefined);
  assert.equal(ops.at(-1), execs[1]);
  assert.equal(ops.at(-3)!.call, "rt_sigprocmask");
  assert.deepEqual(execs[0]!.args.slice(1), [{ strs: ["sh", "-c", "true"] }, {
    strs: c.process.env,
  }]);
});

Deno.test("createProgram() runs the createContainer hooks between the mounts and pivot_root", () => {
  const ops = program(config({}, extras), { hookSync: { ready: 50, go: 51 } });
  const ready = at(ops, (o) => o.call === "write" && o.args[0] === 50);
  const go = at(ops, (o) => o.call === "read" && o.args[0] === 51);
  assert.ok(lastAt(ops, (o) => o.call === "move_mount") < ready);
  assert.ok(ready < go && go < callAt(ops, "pivot_root"));
});

Deno.test("createProgram() names every step and produces every fd it uses", () => {
  const variants: Partial<CreateProgramInput>[] = [
    {},
    { console: CONSOLE, execFifo: FIFO, hookSync: { ready: 50, go: 51 } },
    { rootfs: { kind: "path" }, stdinNull: false },
  ];
  for (const over of variants) {
    const ops = program(config({ volumes: VOLUMES, readOnly: true }, extras), over);
    const produced = new Set<string>();
    for (const o of ops) {
      assert.ok(o.step.length > 0);
      for (const a of o.args) {
        if (typeof a === "object" && "ref" in a) {
          assert.ok(produced.has(a.ref), `${o.step}: ${a.ref} used before produced`);
        }
      }
      if (o.produces) {
        assert.ok(!produced.has(o.produces), `${o.produces} produced twice`);
        produced.add(o.produces);
      }
    }
  }
});

// ---------------------------------------------------------------------------
// createProgram(): the session keyring

Deno.test("createProgram() joins a new session keyring as root of the user namespace, searchable", () => {
  assert.ok(!program().some((o) => o.call === "keyctl"), "none unless asked");
  const ops = program(config(), { sessionKeyring: sessionKeyringName(ID) });
  const keyctls = ops.flatMap((o, i) => o.call === "keyctl" ? [i] : []);
  assert.equal(keyctls.length, 2);
  const [join, perm] = keyctls.map((i) => ops[i]!);
  assert.deepEqual(join!.args, [KEYCTL.JOIN_SESSION_KEYRING, { str: `_ses.${ID}` }]);
  // As runc: a kernel without keys is no failure.
  assert.equal(join!.okErrno, Errno.ENOSYS);
  assert.deepEqual(perm!.args, [
    KEYCTL.SETPERM,
    KEY_SPEC.SESSION_KEYRING,
    KEY_PERM.POS_ALL | KEY_PERM.USR_VIEW | KEY_PERM.USR_READ | KEY_PERM.USR_LINK |
    KEY_PERM.USR_SEARCH | KEY_PERM.OTH_SEARCH,
  ]);
  // After becoming root in the user namespace, before anything is mounted or the user switch.
  assert.ok(callAt(ops, "setresuid") < keyctls[0]!);
  assert.ok(keyctls[1]! < at(ops, (o) => MOUNT_CALLS.has(o.call)));
  assert.ok(keyctls[1]! < lastAt(ops, (o) => o.call === "setresuid"));
});

Deno.test("createProgram() without a user namespace makes the keyring searchable by its owner only", () => {
  const c = config();
  c.newNamespaces = c.newNamespaces.filter((t) => t !== "user");
  const ops = program(c, { sessionKeyring: "_ses.x" });
  const perm = ops.find((o) => o.call === "keyctl" && o.args[0] === KEYCTL.SETPERM)!;
  assert.equal((perm.args[2] as number) & KEY_PERM.OTH_SEARCH, 0);
  assert.equal((perm.args[2] as number) & KEY_PERM.USR_SEARCH, KEY_PERM.USR_SEARCH);
});

// joinProgram()

Deno.test("joinProgram() joins the namespaces in order, forks into the PID namespace, then execs", () => {
  const c = config({ user: "app" }, extras);
  const namespaces = [
    { type: "user" as const, fd: 10 },
    { type: "mount" as const, fd: 11 },
    { type: "pid" as const, fd: 12 },
    { type: "uts" as const, fd: 13 },
  ];
  const ops = joinProgram({
    process: c.process,
    executables: ["/bin/sh"],
    namespaces,
    errFd: ERR,
    setgroups: true,
  });
  const setns = ops.flatMap((o, i) => o.call === "setns" ? [i] : []);
  const first = setns[0]!;
  assert.deepEqual(setns, [first, first + 1, first + 2, first + 3]);
  assert.deepEqual(setns.map((i) => ops[i]!.args), [
    [10, CLONE.NEWUSER],
    [11, CLONE.NEWNS],
    [12, CLONE.NEWPID],
    [13, CLONE.NEWUTS],
  ]);
  const clones = ops.flatMap((o, i) => o.call === "clone" ? [i] : []);
  assert.equal(clones.length, 1);
  const clone = clones[0]!;
  assert.ok(clone > first + 3);
  assert.equal(ops[clone]!.parentReportsAndExits, true);
  assert.equal(ops[clone]!.args[0], CLONE.PARENT | SIGNALS.SIGCHLD);
  const setuid = switchAt(ops, "setresuid");
  assert.ok(setuid > clone);
  assert.deepEqual(ops[setuid]!.args, [1000, 1000, 1000]);
  assert.ok(callAt(ops, "setgroups") > clone);
  assert.ok(at(ops, isPrctl(PR.SET_NO_NEW_PRIVS, 1)) > setuid);
  assert.ok(assertEntersWorkingDirectory(ops, "containerRoot", "work") > setuid);
  assert.equal(ops.at(-1)!.call, "execve");
  assert.equal(str(ops.at(-1)!.args[0]), "/bin/sh");
  assert.ok(!ops.some((o) => MOUNT_CALLS.has(o.call) || o.call === "pivot_root"));
});

Deno.test("joinProgram() joins the container's session keyring after the fork, before the user switch", () => {
  const c = config({ user: "app" });
  const base = {
    process: c.process,
    executables: ["/bin/sh"],
    namespaces: [{ type: "user" as const, fd: 10 }],
    errFd: ERR,
    setgroups: true,
  };
  assert.ok(!joinProgram(base).some((o) => o.call === "keyctl"));
  const ops = joinProgram({ ...base, sessionKeyring: sessionKeyringName(ID) });
  const keyctls = ops.flatMap((o, i) => o.call === "keyctl" ? [i] : []);
  assert.equal(keyctls.length, 1, "joins by name, changes no permissions");
  const k = keyctls[0]!;
  assert.deepEqual(ops[k]!.args, [KEYCTL.JOIN_SESSION_KEYRING, { str: `_ses.${ID}` }]);
  assert.equal(ops[k]!.okErrno, Errno.ENOSYS);
  assert.ok(callAt(ops, "clone") < k && k < switchAt(ops, "setresuid"));
});

/** The join program of a `-t` exec into user and mount namespaces (fds 10, 11), with every descriptor it takes. */
function ttyJoin(): ChildOp[] {
  return joinProgram({
    process: config({ tty: true }).process,
    executables: ["/bin/sh"],
    namespaces: [{ type: "user", fd: 10 }, { type: "mount", fd: 11 }],
    errFd: ERR,
    console: CONSOLE,
    setgroups: true,
    cgroupProcs: 14,
    stdinFd: 15,
  });
}

Deno.test("joinProgram() is non-dumpable before the first setns and until execve", () => {
  const ops = ttyJoin();
  assert.equal(at(ops, isPrctl(PR.SET_DUMPABLE, 0)), 0);
  assert.ok(!ops.some(isPrctl(PR.SET_DUMPABLE, 1)), "never dumpable again before execve");
});

Deno.test("joinProgram() closes trun's descriptors but its own before any path is resolved", () => {
  const ops = ttyJoin();
  const closes = ops.flatMap((o, i) => o.call === "close_range" && o.args[2] === 0 ? [i] : []);
  assert.ok(closes.length > 0);
  assert.ok(closes.at(-1)! < callAt(ops, "setns"), "closed before the first setns");
  assert.ok(closes.at(-1)! < at(ops, resolvesPath), "closed before the first path lookup");
  // Exactly the descriptors the program uses stay open: 3..∞ minus them.
  const kept = [ERR, 10, 11, 14, 15, CONSOLE.socket, CONSOLE.slot].sort((x, y) => x - y);
  const open = (fd: number) =>
    !closes.some((i) => {
      const [from, to] = ops[i]!.args as number[];
      return fd >= from! && fd <= to!;
    });
  for (let fd = 3; fd < 64; fd++) assert.equal(open(fd), kept.includes(fd), `fd ${fd}`);
  // The namespace descriptors are closed once joined; the root is opened after the mount join.
  const lastSetns = lastAt(ops, (o) => o.call === "setns");
  for (const fd of [10, 11]) {
    const closed = at(ops, (o) => o.call === "close" && o.args[0] === fd);
    assert.ok(closed > lastSetns && closed < callAt(ops, "clone"), `fd ${fd} closed after setns`);
  }
  assert.ok(at(ops, (o) => o.produces === "containerRoot") > lastSetns);
});

Deno.test("joinProgram() opens the terminal after the fork and before the user switch", () => {
  const c = config({ tty: true });
  const ops = joinProgram({
    process: c.process,
    executables: ["/bin/sh"],
    namespaces: [{ type: "mount", fd: 11 }],
    errFd: ERR,
    console: CONSOLE,
    setgroups: false,
  });
  const clone = callAt(ops, "clone");
  const setsid = callAt(ops, "setsid");
  const ptmx = at(ops, (o) => o.produces === "ptmx");
  const sctty = at(ops, (o) => o.call === "ioctl" && o.args[1] === TTY.SCTTY);
  assert.ok(clone < setsid && setsid < ptmx && ptmx < sctty && sctty < switchAt(ops, "setresuid"));
  assert.ok(!ops.some((o) => o.call === "setgroups"));
});

Deno.test("joinProgram() joins the container's cgroup right after the fork, hooks keep privileges", () => {
  const c = config({ user: "app" });
  const ops = joinProgram({
    process: c.process,
    executables: ["/hook"],
    namespaces: [{ type: "mount", fd: 11 }],
    errFd: ERR,
    setgroups: true,
    cgroupProcs: 14,
    stdinFd: 15,
    keepPrivileges: true,
  });
  const clone = callAt(ops, "clone");
  const join = at(ops, (o) => o.call === "write" && o.args[0] === 14);
  assert.ok(clone < join);
  assert.equal(new TextDecoder().decode((ops[join]!.args[1] as { bytes: Uint8Array }).bytes), "0");
  const stdin = at(ops, (o) => o.call === "dup2" && o.args[0] === 15 && o.args[1] === 0);
  assert.ok(join < stdin);
  for (const call of ["setresuid", "setresgid", "capset", "setgroups"] as const) {
    assert.ok(!ops.some((o) => o.call === call), `${call} with keepPrivileges`);
  }
});

// ---------------------------------------------------------------------------
// Once bugs

// Once a bug: the kernel clears the parent-death signal when the effective uid or
// gid changes (prctl(2), PR_SET_PDEATHSIG; commit_creds in kernel/cred.c), so
// with a non-root process.user (`trun run -u app`) the setresgid/setresuid of
// the identity switch drop it and the container outlives a killed trun. runc
// restores it after the switch ("finalizeNamespace can change user/group which
// clears the parent death signal, so we restore it here").
Deno.test({
  name: "createProgram() sets the parent-death signal again after a user switch",
  fn: () => {
    const ops = program(config({ user: "app" }), { dieWithParent: true });
    const setuid = switchAt(ops, "setresuid");
    const again = lastAt(ops, isPrctl(PR.SET_PDEATHSIG, SIGNALS.SIGKILL));
    assert.ok(again > setuid, "PR_SET_PDEATHSIG after setresuid");
  },
});

// Once a bug: a bind mount whose host source does not exist (kindOf returns null) is
// compiled as a file bind: the child first creates an empty file at the
// target inside the root (left behind in a `trun runtime` bundle's rootfs),
// then fails in open_tree with ENOENT. The old plan refused it up front
// ('bind source path does not exist: "/nope"', as Docker and runc do).
Deno.test({
  name: "createProgram() refuses a bind mount whose source is missing, naming it",
  fn: () => {
    const c = config({ volumes: ["/nope:/x"] });
    assert.throws(
      () => program(c, { kindOf: (p) => p === "/nope" ? null : "dir" }),
      /"\/nope"/,
    );
  },
});

Deno.test("createProgram() makes device nodes as real root, with their mode and owner, instead of binds", () => {
  const c = config({}, (s) => {
    s.linux!.devices = [
      { type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o600, uid: 1, gid: 2 },
    ];
  });
  const ops = program(c, { createDevices: true });
  const nodes = ops.filter((o) => o.call === "mknodat");
  assert.equal(nodes.length, 7); // the six defaults and /dev/fuse
  const fuse = ops.findIndex((o) => o.call === "mknodat" && str(o.args[1]) === "fuse");
  assert.deepEqual(ops[fuse]!.args.slice(2), [S.IFCHR | 0o600, (10 << 8) | 229]);
  assert.deepEqual(ops[fuse + 1]!.args.slice(1, 3), [{ str: "fuse" }, 0o600]);
  assert.deepEqual(ops[fuse + 2]!.args.slice(1, 4), [{ str: "fuse" }, 1, 2]);
  const nul = ops.find((o) => o.call === "mknodat" && str(o.args[1]) === "null")!;
  assert.deepEqual(nul.args.slice(2), [S.IFCHR | 0o666, (1 << 8) | 3]);
  assert.ok(
    !ops.some((o) =>
      o.call === "open_tree" && str(o.args[1]) === "/dev/null" && o.step.includes("device")
    ),
    "no device is bound when it is created",
  );
  assert.ok(program(c).some((o) => o.call === "open_tree" && str(o.args[1]) === "/dev/fuse"));
});

Deno.test("explainFailure() says why a limit or the session keyring failed", () => {
  const fail = (op: ChildOp, errno: number) =>
    explainFailure({ index: 0, errno, op }, ["/bin/sh"], undefined);
  const limit = fail(
    { call: "prlimit64", args: [], step: "setting RLIMIT_NOFILE to 1/2" },
    Errno.EPERM,
  );
  assert.match(limit.message, /^setting RLIMIT_NOFILE to 1\/2: .*: a hard limit above trun's own/);
  assert.equal(limit.exitCode, 125);
  const keys = fail(
    { call: "keyctl", args: [], step: `joining the session keyring "_ses.x"` },
    Errno.EDQUOT,
  );
  assert.match(keys.message, /_ses\.x".*: the user's key quota is full/);
});

// ---------------------------------------------------------------------------
// Seccomp

const seccompAt = (ops: ChildOp[]) => callAt(ops, "seccomp");

Deno.test("createProgram() installs the filter before dropping capabilities without no_new_privs", () => {
  const ops = program(config({ user: "app" }));
  const i = seccompAt(ops);
  assert.ok(i >= 0, "a seccomp op");
  assert.equal(ops.filter((o) => o.call === "seccomp").length, 1);
  // It needs CAP_SYS_ADMIN in the user namespace: before the bounding drops, user switch and capset.
  assert.ok(i < at(ops, isPrctl(PR.CAPBSET_DROP)));
  assert.ok(i < switchAt(ops, "setresuid") && i < callAt(ops, "capset"));
  assert.equal(ops[i]!.args[0], SECCOMP.SET_MODE_FILTER);
  const filter = (ops[i]!.args[2] as { seccompFilter: Uint8Array }).seccompFilter;
  assert.ok(filter.length > 0 && filter.length % 8 === 0);
});

Deno.test("createProgram() installs the filter last, after no_new_privs, when the spec asks for it", () => {
  const ops = program(config({ user: "app" }, extras), { execFifo: FIFO });
  const i = seccompAt(ops);
  assert.ok(i > at(ops, isPrctl(PR.SET_NO_NEW_PRIVS, 1)));
  assert.ok(i > at(ops, (o) => o.produces === "fifo"), "after the wait for start");
  assert.ok(
    ops.slice(i + 1).every((o) =>
      ["rt_sigaction", "close_range", "rt_sigprocmask", "execve"].includes(o.call)
    ),
  );
});

Deno.test("createProgram() installs no filter with seccomp=unconfined or --privileged", () => {
  assert.equal(seccompAt(program(config({ seccomp: { kind: "unconfined" } }))), -1);
  assert.equal(seccompAt(program(config({ privileged: true }))), -1);
});

Deno.test("joinProgram() gives an exec'd process the container's filter, hooks none", () => {
  const c = config({ user: "app" });
  const base = {
    process: c.process,
    executables: ["/bin/sh"],
    namespaces: [{ type: "mount" as const, fd: 11 }],
    setgroups: true,
    errFd: ERR,
  };
  const ops = joinProgram({ ...base, seccomp: c.seccomp! });
  const i = seccompAt(ops);
  assert.ok(
    i > callAt(ops, "clone") && i < switchAt(ops, "setresuid") && i < callAt(ops, "capset"),
  );
  const nnp = config({ user: "app" }, extras);
  const late = joinProgram({ ...base, process: nnp.process, seccomp: nnp.seccomp! });
  assert.ok(seccompAt(late) > at(late, isPrctl(PR.SET_NO_NEW_PRIVS, 1)));
  assert.equal(seccompAt(joinProgram({ ...base, seccomp: c.seccomp!, keepPrivileges: true })), -1);
});

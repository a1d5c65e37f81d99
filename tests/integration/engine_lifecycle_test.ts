// The engine's lifecycle edges with real processes: a SIGKILLed `trun run`
// leaves its container running beside its monitor, as Docker's and
// Podman's do (also after a user switch), and `rm -f` then leaves nothing;
// a killed `trun pull`
// takes its user-namespace storage helper with it; the six OCI hook kinds
// through `trun runtime` (order, statuses, namespaces, failure, timeout);
// and a container in a cgroup of its own with a cgroup namespace (root).
// Each test names the user it needs and skips otherwise, with the reason.
import assert from "node:assert/strict";
import {
  findTool,
  hostCapabilities,
  MAIN_TS,
  requires,
  type TrunSandbox,
  trunSandbox,
} from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";
import {
  type CliResult,
  cmdlineOf,
  eventually,
  type RuntimeCli,
  runtimeCli,
  type Spec,
} from "../_harness/bundle.ts";
import { startFaultRegistry } from "./_fault_registry.ts";
import { loadIdMapping, mapToHost } from "../../lib/runtime/idmap.ts";

const caps = await hostCapabilities();
const mapping = loadIdMapping();
const SLEEP_BIN = await findTool("sleep");

type Gate = { ignore: boolean; suffix: string };

/** A test behind `gate`; `bug` marks it ignored for a known trun bug, named in the test's name. */
function test(name: string, gate: Gate, fn: () => Promise<void>, bug?: string) {
  const suffix = gate.suffix + (bug ? ` (ignored, BUG: ${bug})` : "");
  Deno.test({ name: name + suffix, ignore: gate.ignore || bug !== undefined, fn });
}

/** `gate`, or a skip with `reason` when `ok` is false. */
function also(gate: Gate, ok: boolean, reason: string): Gate {
  if (ok) return gate;
  return gate.ignore
    ? { ignore: true, suffix: gate.suffix.replace(/\)$/, `; ${reason})`) }
    : { ignore: true, suffix: ` (skipped: ${reason})` };
}

// ---------------------------------------------------------------------------
// Processes

/** State, parent and start time of a process (proc(5), /proc/PID/stat), or null when gone. */
async function procStat(
  pid: number,
): Promise<{ state: string; ppid: number; start: string } | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // Fields after the command name, which may hold spaces and parentheses.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: rest[0]!, ppid: Number(rest[1]), start: rest[19]! };
}

async function allPids(): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) if (/^\d+$/.test(e.name)) pids.push(Number(e.name));
  return pids;
}

/** Whether the process that had `start` as its start time is gone (or a zombie: dead, not yet reaped). */
async function dead(pid: number, start: string): Promise<boolean> {
  const st = await procStat(pid);
  return st === null || st.start !== start || st.state === "Z";
}

async function describe(pid: number): Promise<string> {
  const st = await procStat(pid);
  if (st === null) return `pid ${pid} is gone`;
  return `pid ${pid} (${
    (await cmdlineOf(pid))?.join(" ")
  }) is in state ${st.state}, parent ${st.ppid}`;
}

function killQuietly(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** trun started in the background, its output going to a file (a container may hold it open). */
interface Background {
  pid: number;
  status: Promise<Deno.CommandStatus>;
  output(): Promise<string>;
}

let spawned = 0;

/** Starts `deno run main.ts ...args` with the sandbox's environment; `sh` execs it, so the pid is trun's. */
function spawnTrun(sb: TrunSandbox, args: string[]): Background {
  const log = `${sb.dir}/trun-${++spawned}.log`;
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'l=$1; shift; exec "$@" >"$l" 2>&1 </dev/null',
      "sh",
      log,
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      MAIN_TS,
      ...args,
    ],
    env: { NO_COLOR: "1", ...sb.env },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    pid: child.pid,
    status: child.status,
    output: () => Deno.readTextFile(log).catch(() => ""),
  };
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort();
}

// ---------------------------------------------------------------------------
// 1. A SIGKILLed `trun run` leaves its container beside its monitor; rm -f leaves nothing

const asRoot = requires(caps, "root", "userns", "busybox");
const asUser = requires(caps, "rootless", "userns", "busybox");
const asUserMapped = requires(caps, "rootless", "userns", "busybox", "idmap");

/** The host uid of container uid `uid` under trun's default mapping. */
function hostUid(uid: number): number {
  return mapping.mode === "host" ? uid : mapToHost(uid, mapping.uid) ?? -1;
}

/** Waits (up to 15 s) for `inspect` to give container `name`'s host pid. */
async function containerPid(sb: TrunSandbox, name: string): Promise<number | null> {
  let pid: number | null = null;
  await eventually(async () => {
    const r = await sb.run(["inspect", "--format", "{{.State.Pid}}", name]);
    const n = Number(r.stdout.trim());
    if (r.code === 0 && n > 0) pid = n;
    return pid !== null;
  }, 15_000);
  return pid;
}

async function killedRunKeepsContainer(user: string[], containerUid: number): Promise<void> {
  await using sb = await trunSandbox();
  const rootfs = await busyboxRootfs();
  const trun = spawnTrun(sb, [
    "run",
    "--name",
    "kept",
    ...user,
    "--rootfs",
    rootfs,
    "sleep",
    "1000",
  ]);
  let ctr: number | null = null;
  let ctrStart = "";
  try {
    ctr = await containerPid(sb, "kept");
    assert.ok(ctr !== null, `no running container "kept": ${await trun.output()}`);
    ctrStart = (await procStat(ctr))!.start;
    const status = await Deno.readTextFile(`/proc/${ctr}/status`);
    const uids = status.match(/^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m);
    assert.deepEqual(
      uids?.slice(1).map(Number),
      [containerUid, containerUid, containerUid],
      `host uids of the container's process: ${uids?.[0]}`,
    );
    // The container is its monitor's, not trun's: its parent is conmon
    // (detached from trun) or trun's own monitor (trun's child until trun
    // is gone, in a session of its own).
    const parent = (await procStat(ctr))!.ppid;
    assert.notEqual(parent, trun.pid, "the container is its monitor's, not trun's");
    const monitorCmd = ((await cmdlineOf(parent)) ?? []).join(" ");
    assert.match(monitorCmd, /conmon|container-monitor/, `the container's parent: ${monitorCmd}`);

    Deno.kill(trun.pid, "SIGKILL");
    const st = await trun.status;
    assert.equal(st.signal, "SIGKILL", `trun ended on its own: ${await trun.output()}`);

    // As with Docker and Podman, the container outlives the client.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!(await dead(ctr, ctrStart)), `the container died with trun: ${await describe(ctr)}`);
    const ps = await sb.run(["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert.match(ps.stdout, /^kept Up/m, ps.stdout);

    // rm -f leaves no process, directory or record behind.
    const rm = await sb.run(["rm", "-f", "kept"]);
    assert.equal(rm.code, 0, rm.stderr);
    const pid = ctr;
    assert.ok(await eventually(() => dead(pid, ctrStart), 5000), await describe(pid));
    const all = await sb.run(["ps", "-a", "-q"]);
    assert.equal(all.stdout, "");
    assert.deepEqual(await entries(`${sb.env.TRUN_ROOT}/containers`), []);
  } finally {
    killQuietly(trun.pid);
    await trun.status;
    if (ctr !== null && !(await dead(ctr, ctrStart))) killQuietly(ctr);
  }
}

test(
  "run (as root): a SIGKILLed trun leaves its container running beside its monitor; rm -f leaves nothing",
  asRoot,
  () => killedRunKeepsContainer([], 0),
);

test(
  "run -u 1000 (as root): the container runs as the mapped uid and outlives a killed trun",
  asRoot,
  () => killedRunKeepsContainer(["-u", "1000"], hostUid(1000)),
);

test(
  "run (as a plain user): a SIGKILLed trun leaves its container running beside its monitor; rm -f leaves nothing",
  asUser,
  () => killedRunKeepsContainer([], Deno.uid() ?? 0),
);

test(
  "run -u 1000 (as a plain user, subordinate ids): the container runs as the mapped uid and outlives a killed trun",
  asUserMapped,
  () => killedRunKeepsContainer(["-u", "1000"], hostUid(1000)),
);

const CONMON = await findTool("conmon") ??
  ["/usr/libexec/podman/conmon", "/usr/lib/podman/conmon"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  }) ?? null;

test(
  "the monitor a run gets: trun's own for the foreground without -i/-t, conmon for -d and -i; TRUN_MONITOR=conmon for every run",
  also(asUser, CONMON !== null, "conmon is not installed: every run gets trun's own monitor"),
  async () => {
    await using sb = await trunSandbox();
    const rootfs = await busyboxRootfs();
    /** Which monitor is a running container's parent: "trun", or the parent's command line. */
    const monitorOf = async (name: string) => {
      const pid = await containerPid(sb, name);
      assert.ok(pid !== null, `no running container "${name}"`);
      const cmd = (await cmdlineOf((await procStat(pid))!.ppid)) ?? [];
      return cmd.includes("container-monitor") ? "trun" : cmd.join(" ");
    };
    const fg = spawnTrun(sb, ["run", "--name", "fg", "--rootfs", rootfs, "sleep", "1000"]);
    const asked = spawnTrun(
      { ...sb, env: { ...sb.env, TRUN_MONITOR: "conmon" } },
      ["run", "--name", "asked", "--rootfs", rootfs, "sleep", "1000"],
    );
    try {
      assert.equal(await monitorOf("fg"), "trun");
      assert.match(await monitorOf("asked"), /conmon/);
      for (const [name, flags] of [["bg", ["-d"]], ["interactive", ["-d", "-i"]]] as const) {
        const r = await sb.run([
          "run",
          ...flags,
          "--name",
          name,
          "--rootfs",
          rootfs,
          "sleep",
          "1000",
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(await monitorOf(name), /conmon/, flags.join(" "));
      }
    } finally {
      for (const c of [fg, asked]) {
        Deno.kill(c.pid, "SIGKILL");
        await c.status;
      }
      await sb.run(["rm", "-f", "fg", "bg", "interactive", "asked"]);
    }
  },
);

// ---------------------------------------------------------------------------
// 2. A killed `trun pull` takes its storage helper along (rootless only)

const pullGate = also(
  requires(caps, "rootless", "idmap"),
  caps.isRoot || mapping.mode === "subordinate",
  "no subordinate ids: pull runs without a user-namespace helper",
);

test(
  "pull (as a plain user, subordinate ids): a SIGKILLed trun pull takes its user-namespace helper along",
  pullGate,
  async () => {
    await using sb = await trunSandbox();
    await using reg = startFaultRegistry();
    // Every blob download sends a little and then stalls: the pull hangs.
    reg.faults.push({ on: "blob", times: 100, action: { stallAfter: 1024 } });
    const trun = spawnTrun(sb, ["pull", `${reg.host}/test/app:latest`]);
    let helper: number | null = null;
    let helperStart = "";
    try {
      const stalled = await eventually(() => reg.requests.some((r) => r.kind === "blob"), 15_000);
      assert.ok(stalled, `the pull never asked for a blob: ${await trun.output()}`);
      for (const pid of await allPids()) {
        const st = await procStat(pid);
        if (st?.ppid !== trun.pid) continue;
        const env = await Deno.readTextFile(`/proc/${pid}/environ`).catch(() => "");
        if (env.split("\0").includes("TRUN_IN_USERNS=1")) {
          helper = pid;
          helperStart = st.start;
        }
      }
      assert.ok(helper !== null, `no child of trun ${trun.pid} with TRUN_IN_USERNS=1`);
      assert.notEqual(
        await Deno.readLink(`/proc/${helper}/ns/user`),
        await Deno.readLink("/proc/self/ns/user"),
        "the helper runs in a user namespace of its own",
      );

      Deno.kill(trun.pid, "SIGKILL");
      const st = await trun.status;
      assert.equal(st.signal, "SIGKILL", `trun ended on its own: ${await trun.output()}`);
      const pid = helper;
      assert.ok(
        await eventually(() => dead(pid, helperStart), 3000),
        `the helper outlived trun by 3 s: ${await describe(pid)}`,
      );
    } finally {
      killQuietly(trun.pid);
      await trun.status;
      if (helper !== null && !(await dead(helper, helperStart))) killQuietly(helper);
    }
  },
);

// ---------------------------------------------------------------------------
// 3. Hooks through `trun runtime`

const hooksRoot = requires(caps, "root", "busybox");
const hooksUser = requires(caps, "rootless", "userns", "busybox");

/** A hook: appends "KIND STATUS MNTNS" to LOG, the status read from the state JSON on stdin. */
const HOOK_SCRIPT = `#!/bin/sh
state=$(cat)
status=$(printf '%s\\n' "$state" | sed -n 's/.*"status" *: *"\\([a-z]*\\)".*/\\1/p')
echo "$1 $status $(readlink /proc/self/ns/mnt)" >> "$2"
`;

/** A private `trun runtime` (its own --root) and a bundle made by `trun runtime spec`. */
interface RuntimeBundle {
  dir: string;
  bundle: string;
  rootfs: string;
  rt: RuntimeCli;
  spec: Spec;
}

/**
 * Writes `dir/bundle` with a busybox rootfs and `trun runtime spec
 * [--rootless]`'s config, running `sleep 1000` without a terminal on a
 * writable root, changed by `edit` (which sees the bundle paths).
 */
async function withBundle(
  rootless: boolean,
  edit: (spec: Spec, b: Omit<RuntimeBundle, "spec">) => Promise<void> | void,
  fn: (b: RuntimeBundle) => Promise<void>,
): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "trun-lifecycle-" }));
  const bundle = `${dir}/bundle`;
  const rootfs = `${bundle}/rootfs`;
  await Deno.mkdir(`${dir}/scratch`);
  const rt = runtimeCli("trun", { runc: "", root: `${dir}/state`, scratch: `${dir}/scratch` });
  const ids = new Set<string>();
  const tracked: RuntimeCli = {
    ...rt,
    run: (args) => {
      const verb = args.findIndex((a) => a === "create" || a === "run");
      if (verb >= 0) ids.add(args[args.length - 1]!);
      return rt.run(args);
    },
  };
  try {
    await busyboxRootfs(rootfs);
    ok("spec", await rt.run(["spec", "--bundle", bundle, ...(rootless ? ["--rootless"] : [])]));
    const spec: Spec = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
    spec.process.terminal = false;
    spec.process.args = ["sleep", "1000"];
    spec.root.readonly = false;
    await edit(spec, { dir, bundle, rootfs, rt: tracked });
    await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(spec, null, "\t"));
    await fn({ dir, bundle, rootfs, rt: tracked, spec });
  } finally {
    for (const id of ids) await rt.run(["delete", "--force", id]);
    await Deno.remove(dir, { recursive: true });
  }
}

function ok(what: string, r: CliResult): void {
  assert.equal(r.code, 0, `trun runtime ${what}: exit ${r.code}: ${r.stderr.trim()}`);
}

// deno-lint-ignore no-explicit-any
async function state(rt: RuntimeCli, id: string): Promise<Record<string, any>> {
  const r = await rt.run(["state", id]);
  ok(`state ${id}`, r);
  return JSON.parse(r.stdout);
}

async function waitStopped(rt: RuntimeCli, id: string): Promise<void> {
  const stopped = await eventually(async () => (await state(rt, id)).status === "stopped");
  assert.ok(stopped, `container ${id} did not stop`);
}

async function listIds(rt: RuntimeCli): Promise<string[]> {
  const r = await rt.run(["list", "--quiet"]);
  ok("list", r);
  return r.stdout.split("\n").filter((l) => l !== "");
}

function hook(path: string, args: string[], timeout?: number) {
  return {
    path,
    args: [path, ...args],
    env: ["PATH=/usr/bin:/bin"],
    ...(timeout ? { timeout } : {}),
  };
}

async function allSixHooks(rootless: boolean): Promise<void> {
  const id = `hooks-${crypto.randomUUID().slice(0, 8)}`;
  await withBundle(rootless, async (spec, { dir, rootfs }) => {
    const script = `${dir}/hook.sh`;
    await Deno.writeTextFile(script, HOOK_SCRIPT, { mode: 0o755 });
    // startContainer runs after pivot_root: its path and log are the container's.
    await Deno.writeTextFile(`${rootfs}/hook.sh`, HOOK_SCRIPT, { mode: 0o755 });
    await Deno.chmod(`${rootfs}/hook.sh`, 0o755);
    const log = `${rootfs}/hooks.log`;
    spec.hooks = {
      prestart: [hook(script, ["prestart", log], 10)],
      createRuntime: [hook(script, ["createRuntime", log], 10)],
      // Before pivot_root the container's mount namespace still shows host paths.
      createContainer: [hook(script, ["createContainer", log], 10)],
      startContainer: [hook("/hook.sh", ["startContainer", "/hooks.log"], 10)],
      poststart: [hook(script, ["poststart", log], 10)],
      poststop: [hook(script, ["poststop", log], 10)],
    };
  }, async ({ bundle, rootfs, rt }) => {
    ok("create", await rt.run(["create", "--bundle", bundle, id]));
    const { pid } = await state(rt, id);
    const containerMnt = await Deno.readLink(`/proc/${pid}/ns/mnt`);
    const hostMnt = await Deno.readLink("/proc/self/ns/mnt");
    assert.notEqual(containerMnt, hostMnt);
    ok("start", await rt.run(["start", id]));
    assert.ok(
      await eventually(async () =>
        JSON.stringify(await cmdlineOf(pid)) === JSON.stringify(["sleep", "1000"])
      ),
      `pid ${pid} runs sleep 1000 after start`,
    );
    ok("kill", await rt.run(["kill", id, "KILL"]));
    await waitStopped(rt, id);
    ok("delete", await rt.run(["delete", id]));

    const lines = (await Deno.readTextFile(`${rootfs}/hooks.log`)).trim().split("\n")
      .map((l) => l.split(" "));
    const where = (mnt: string | undefined) =>
      mnt === containerMnt ? "container" : mnt === hostMnt ? "host" : `other ${mnt}`;
    assert.deepEqual(lines.map(([kind, status, mnt]) => `${kind} ${status} ${where(mnt)}`), [
      "prestart creating host",
      "createRuntime creating host",
      "createContainer creating container",
      "startContainer created container",
      "poststart running host",
      "poststop stopped host",
    ]);
  });
}

test(
  "runtime hooks (as root): all six kinds run in order, with their statuses and namespaces",
  hooksRoot,
  () => allSixHooks(false),
);

test(
  "runtime hooks (as a plain user, spec --rootless): all six kinds run in order, with their statuses and namespaces",
  hooksUser,
  () => allSixHooks(true),
);

async function failingCreateRuntime(rootless: boolean): Promise<void> {
  const id = `fail-${crypto.randomUUID().slice(0, 8)}`;
  let script = "";
  await withBundle(rootless, async (spec, { dir }) => {
    script = `${dir}/fail-hook.sh`;
    await Deno.writeTextFile(script, "#!/bin/sh\necho refusing >&2\nexit 1\n", { mode: 0o755 });
    spec.hooks = { createRuntime: [hook(script, [])] };
  }, async ({ bundle, rt }) => {
    const r = await rt.run(["create", "--bundle", bundle, id]);
    assert.notEqual(r.code, 0, `create succeeded: ${r.stdout}`);
    assert.ok(r.stderr.includes(script), `stderr does not name "${script}": ${r.stderr}`);
    assert.deepEqual(await listIds(rt), [], "a container is left after the failed create");
  });
}

test(
  "runtime hooks (as root): a failing createRuntime hook fails create, named, and leaves no state",
  hooksRoot,
  () => failingCreateRuntime(false),
);

test(
  "runtime hooks (as a plain user, spec --rootless): a failing createRuntime hook fails create, named, and leaves no state",
  hooksUser,
  () => failingCreateRuntime(true),
);

async function hookTimeout(rootless: boolean, kind: "createRuntime" | "createContainer") {
  const id = `timeout-${crypto.randomUUID().slice(0, 8)}`;
  await withBundle(rootless, (spec) => {
    // createContainer runs in the container's mount namespace before
    // pivot_root, where the host's sleep is still visible.
    spec.hooks = { [kind]: [hook(SLEEP_BIN!, ["10"], 1)] };
  }, async ({ bundle, rt }) => {
    const t0 = performance.now();
    const r = await rt.run(["create", "--bundle", bundle, id]);
    const ms = performance.now() - t0;
    assert.notEqual(r.code, 0, `create succeeded: ${r.stdout}`);
    assert.ok(r.stderr.includes(SLEEP_BIN!), `stderr does not name the hook: ${r.stderr}`);
    assert.ok(ms < 2500, `create took ${Math.round(ms)} ms with a 1 s hook timeout`);
    assert.deepEqual(await listIds(rt), [], "a container is left after the failed create");
  });
}

const withSleep = (g: Gate) => also(g, SLEEP_BIN !== null, "no sleep binary on the host");

for (const kind of ["createRuntime", "createContainer"] as const) {
  test(
    `runtime hooks (as root): a ${kind} hook past its 1 s timeout fails create within 2.5 s`,
    withSleep(hooksRoot),
    () => hookTimeout(false, kind),
  );
  test(
    `runtime hooks (as a plain user, spec --rootless): a ${kind} hook past its 1 s timeout fails create within 2.5 s`,
    withSleep(hooksUser),
    () => hookTimeout(true, kind),
  );
}

// A hook that is a script with a child of its own (the usual form) must
// not outlive its timeout: the hook runs in a session of its own, killed
// whole when the timeout passes (its orphaned child would otherwise hold
// its stderr pipe open).
async function scriptHookTimeout(rootless: boolean): Promise<void> {
  const id = `timeout-sh-${crypto.randomUUID().slice(0, 8)}`;
  let script = "";
  await withBundle(rootless, async (spec, { dir }) => {
    script = `${dir}/slow-hook.sh`;
    await Deno.writeTextFile(script, "#!/bin/sh\nsleep 10\necho done\n", { mode: 0o755 });
    spec.hooks = { createRuntime: [hook(script, [], 1)] };
  }, async ({ bundle, rt }) => {
    const t0 = performance.now();
    const r = await rt.run(["create", "--bundle", bundle, id]);
    const ms = performance.now() - t0;
    assert.notEqual(r.code, 0, `create succeeded: ${r.stdout}`);
    assert.ok(r.stderr.includes(script), `stderr does not name the hook: ${r.stderr}`);
    assert.ok(ms < 2500, `create took ${Math.round(ms)} ms with a 1 s hook timeout`);
    assert.deepEqual(await listIds(rt), [], "a container is left after the failed create");
  });
}

test(
  "runtime hooks (as root): a createRuntime hook script whose child sleeps past the 1 s timeout fails create within 2.5 s",
  hooksRoot,
  () => scriptHookTimeout(false),
);

test(
  "runtime hooks (as a plain user, spec --rootless): a createRuntime hook script whose child sleeps past the 1 s timeout fails create within 2.5 s",
  hooksUser,
  () => scriptHookTimeout(true),
);

// ---------------------------------------------------------------------------
// 4. cgroups (root only). On a hybrid host the cgroup2 hierarchy may offer
// no controllers: the container still gets a cgroup of its own, and the
// limits are reported as not applied. Only a child directory is created
// and removed; the host's hierarchies are never remounted or moved.

const cgroupGate = requires(caps, "root", "busybox", "cgroup2");

test(
  "runtime cgroups (as root): cgroupsPath, a cgroup namespace, kill --all, and delete removes the cgroup",
  cgroupGate,
  async () => {
    const name = `trun-itest-${crypto.randomUUID().slice(0, 8)}`;
    const parent = `${caps.cgroup2}/${name}`;
    const c1 = `${parent}/c1`;
    const id = `cg-${name.slice(-8)}`;
    try {
      await withBundle(false, (spec) => {
        spec.linux.cgroupsPath = `/${name}/c1`;
        spec.linux.resources = { pids: { limit: 100 } };
        spec.linux.namespaces.push({ type: "cgroup" });
        spec.mounts.push({
          destination: "/sys/fs/cgroup",
          type: "cgroup",
          source: "cgroup",
          options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
        });
      }, async ({ bundle, rt }) => {
        const created = await rt.run(["create", "--bundle", bundle, id]);
        ok("create", created);
        const warnings = created.stderr.split("\n").filter((l) => /warning/i.test(l));
        assert.equal(warnings.length, 1, `one warning expected: ${created.stderr}`);
        assert.match(warnings[0]!, /pids\.max/);
        assert.match(warnings[0]!, /not applied/);

        const { pid } = await state(rt, id);
        const hostView = (await Deno.readTextFile(`/proc/${pid}/cgroup`)).split("\n");
        assert.ok(hostView.includes(`0::/${name}/c1`), hostView.join("\n"));
        assert.ok((await Deno.stat(c1)).isDirectory);

        ok("start", await rt.run(["start", id]));
        const inside = await rt.run([
          "exec",
          id,
          "sh",
          "-c",
          "cat /proc/self/cgroup; echo ---; grep ' /sys/fs/cgroup ' /proc/self/mounts",
        ]);
        ok("exec", inside);
        const [cgroups, mounts] = inside.stdout.split("---\n") as [string, string];
        assert.ok(cgroups.split("\n").includes("0::/"), `inside: ${cgroups}`);
        assert.match(mounts ?? "", /^\S+ \/sys\/fs\/cgroup cgroup2 /m, `mounts: ${mounts}`);

        ok("kill --all", await rt.run(["kill", "--all", id, "KILL"]));
        await waitStopped(rt, id);
        ok("delete", await rt.run(["delete", id]));
        await assert.rejects(Deno.stat(c1), Deno.errors.NotFound, `${c1} left after delete`);
      });
    } finally {
      for (const dir of [c1, parent]) {
        const procs = await Deno.readTextFile(`${dir}/cgroup.procs`).catch(() => "");
        for (const p of procs.split("\n").filter((l) => l !== "")) killQuietly(Number(p));
        await eventually(async () => {
          try {
            await Deno.remove(dir);
            return true;
          } catch (e) {
            return e instanceof Deno.errors.NotFound;
          }
        }, 2000);
      }
    }
  },
);

// ---------------------------------------------------------------------------
// 5. Joining existing namespaces by path (runc's nsexec order: setns, then
// unshare, then a fork into the PID namespace).

/**
 * Starts the bundle's container A (`sleep 1000`), then runs B, a copy of
 * the spec changed by `edit` (which gets A's pid), from a second bundle on
 * the same root; returns B's result and A's pid.
 */
async function joinA(
  rootless: boolean,
  edit: (spec: Spec, aPid: number) => void,
): Promise<{ r: CliResult; aPid: number; aNet: string; aUidMap: string }> {
  let out: { r: CliResult; aPid: number; aNet: string; aUidMap: string } | undefined;
  const tag = crypto.randomUUID().slice(0, 8);
  await withBundle(rootless, () => {}, async ({ dir, bundle, rootfs, rt, spec }) => {
    ok("create A", await rt.run(["create", "--bundle", bundle, `a-${tag}`]));
    ok("start A", await rt.run(["start", `a-${tag}`]));
    const aPid = (await state(rt, `a-${tag}`)).pid as number;
    const aNet = await Deno.readLink(`/proc/${aPid}/ns/net`);
    const aUidMap = await Deno.readTextFile(`/proc/${aPid}/uid_map`);
    // B may run as another host uid (a new user namespace): let it reach the root.
    await Deno.chmod(dir, 0o755);
    const b: Spec = JSON.parse(JSON.stringify(spec));
    b.root.path = rootfs;
    edit(b, aPid);
    await Deno.mkdir(`${dir}/bundle-b`);
    await Deno.writeTextFile(`${dir}/bundle-b/config.json`, JSON.stringify(b));
    const r = await rt.run(["run", "--bundle", `${dir}/bundle-b`, `b-${tag}`]);
    out = { r, aPid, aNet, aUidMap };
  });
  return out!;
}

const PROBE = "echo pid=$$; hostname; readlink /proc/self/ns/net; cat /proc/self/uid_map; " +
  "ps -o args | grep -c '^sleep 1000' || true";

test(
  "join (as root): a container joins another's PID, network and UTS namespaces by path",
  hooksRoot,
  async () => {
    const { r, aNet } = await joinA(false, (b, a) => {
      b.process.args = ["sh", "-c", PROBE];
      b.linux.namespaces = [
        { type: "pid", path: `/proc/${a}/ns/pid` },
        { type: "network", path: `/proc/${a}/ns/net` },
        { type: "uts", path: `/proc/${a}/ns/uts` },
        { type: "ipc" },
        { type: "mount" },
      ];
      delete (b as { hostname?: string }).hostname;
    });
    ok("run B", r);
    const lines = r.stdout.trim().split("\n");
    assert.notEqual(lines[0], "pid=1", "B is not PID 1: it joined A's PID namespace");
    assert.equal(lines[1], "trun", "B has A's hostname");
    assert.equal(lines[2], aNet, "B is in A's netns");
    assert.equal(lines.at(-1), "1", "B sees A's sleep");
  },
);

test(
  "join (as a plain user, spec --rootless): a container joins another's user and PID namespaces",
  hooksUser,
  async () => {
    const { r, aUidMap } = await joinA(true, (b, a) => {
      b.process.args = ["sh", "-c", PROBE];
      b.linux.namespaces = [
        { type: "pid", path: `/proc/${a}/ns/pid` },
        { type: "user", path: `/proc/${a}/ns/user` },
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
      ];
      delete (b.linux as { uidMappings?: unknown }).uidMappings;
      delete (b.linux as { gidMappings?: unknown }).gidMappings;
    });
    ok("run B", r);
    const lines = r.stdout.trim().split("\n");
    assert.notEqual(lines[0], "pid=1");
    assert.deepEqual(
      lines[3]!.trim().split(/\s+/),
      aUidMap.trim().split(/\s+/),
      "B has A's uid_map",
    );
    assert.equal(lines.at(-1), "1", "B sees A's sleep");
  },
);

test(
  "join (as root): a new user namespace (0 → 300000) that joins another's network namespace",
  hooksRoot,
  async () => {
    const { r, aNet } = await joinA(false, (b, a) => {
      b.process.args = ["sh", "-c", PROBE];
      b.linux.namespaces = [
        { type: "pid" },
        { type: "network", path: `/proc/${a}/ns/net` },
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
        { type: "user" },
      ];
      b.linux.uidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
      b.linux.gidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
      // sysfs needs a network namespace of the new user namespace's own.
      b.mounts = b.mounts.map((m: { destination: string }) =>
        m.destination === "/sys"
          ? { destination: "/sys", type: "bind", source: "/sys", options: ["rbind", "ro"] }
          : m
      );
    });
    ok("run B", r);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines[0], "pid=1", "B has a PID namespace of its own");
    assert.equal(lines[2], aNet, "B is in A's netns");
    assert.deepEqual(lines[3]!.trim().split(/\s+/), ["0", "300000", "65536"]);
  },
);

// ---------------------------------------------------------------------------
// 6. Devices: real root makes the nodes (with the spec's mode and owner);
// a plain user gets the host's nodes bound, and a device the host lacks is
// refused naming linux.devices.

const DEVICE = {
  type: "c",
  path: "/dev/trun-null",
  major: 1,
  minor: 3,
  fileMode: 0o600,
  uid: 1,
  gid: 2,
};

test(
  "devices (as root): a node the host lacks is made with its mode and owner",
  hooksRoot,
  async () => {
    await withBundle(false, (spec) => {
      spec.linux.devices = [DEVICE];
      spec.process.args = [
        "sh",
        "-c",
        "ls -ln /dev/trun-null; echo x > /dev/trun-null && echo written",
      ];
    }, async ({ bundle, rt }) => {
      const r = await rt.run(["run", "--bundle", bundle, `dev-${crypto.randomUUID().slice(0, 8)}`]);
      ok("run", r);
      assert.match(r.stdout, /^crw------- +1 1 +2 +1, +3 .*\/dev\/trun-null\nwritten\n$/);
    });
  },
);

test(
  "devices (as a plain user, spec --rootless): a device the host lacks is refused, naming linux.devices",
  hooksUser,
  async () => {
    await withBundle(true, (spec) => {
      spec.linux.devices = [DEVICE];
    }, async ({ bundle, rt }) => {
      const r = await rt.run([
        "create",
        "--bundle",
        bundle,
        `dev-${crypto.randomUUID().slice(0, 8)}`,
      ]);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /linux\.devices: "\/dev\/trun-null" \(c 1:3\) is not that device on the host/,
      );
      assert.deepEqual(await listIds(rt), []);
    });
  },
);

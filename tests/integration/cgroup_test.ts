// Containers in cgroups of their own, on this host's cgroup v2 hierarchy
// (pure, or a hybrid's /sys/fs/cgroup/unified): as root at the
// hierarchy's root, rootless in the subtree delegated to the test user
// (CI delegates one with scripts/cgroup_delegate.sh, as systemd's
// Delegate= does). Placement before the first instruction, the cgroup
// namespace's view, cgroup.kill on stop and rm -f, removal afterwards
// (also after the monitor was killed), the warning for limits the host
// cannot enforce and --cgroups=required. Every scenario runs with trun's
// own monitor and with Podman's conmon (when installed).
import assert from "node:assert/strict";
import { hostCapabilities, requires, trunSandbox } from "../_harness/host.ts";
import { MONITORS, type MonitorSandbox, monitorTest } from "../_harness/monitors.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox", "cgroupDelegated");
const parent = caps.cgroupDelegated ?? "";
/** The parent as a hierarchy path (as /proc/PID/cgroup shows it). */
const HIERARCHY_PARENT = parent.replace(/^\/sys\/fs\/cgroup(\/unified)?/, "");

/** Controllers the delegated root offers (the parent's parent's cgroup.controllers). */
function offered(): string[] {
  try {
    const up = parent.slice(0, parent.lastIndexOf("/"));
    return Deno.readTextFileSync(`${up}/cgroup.controllers`).trim().split(/\s+/).filter((c) => c);
  } catch {
    return [];
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Waits up to `ms` for `cond`. */
async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(20);
  }
  return true;
}

type Sandbox = MonitorSandbox;

/** `run -d … sleep 1000`; returns its id and host pid. */
async function sleeper(sb: Sandbox, flags: string[] = []): Promise<{ id: string; pid: number }> {
  const r = await sb.run(["run", "-d", ...flags, "--rootfs", sb.rootfs, "sleep", "1000"]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  const i = await sb.run(["inspect", "-f", "{{.State.Pid}}", id]);
  assert.equal(i.code, 0, i.stderr);
  return { id, pid: Number(i.stdout.trim()) };
}

/**
 * A host process (not in the container's PID namespace) moved into the
 * container's cgroup: only a kill of the whole cgroup reaches it.
 */
function strayInto(dir: string): Deno.ChildProcess {
  const stray = new Deno.Command("sleep", { args: ["1000"], stdin: "null" }).spawn();
  Deno.writeTextFileSync(`${dir}/cgroup.procs`, String(stray.pid));
  return stray;
}

/** The signal that ended `stray` within 5 s, or "alive" (then it is killed here). */
async function strayEnd(stray: Deno.ChildProcess): Promise<string> {
  const end = await Promise.race([stray.status, sleep(5000).then(() => null)]);
  if (end === null) {
    stray.kill("SIGKILL");
    await stray.status;
    return "alive";
  }
  return end.signal ?? `exit ${end.code}`;
}

for (const monitor of MONITORS) {
  const test = (name: string, fn: (sb: Sandbox) => Promise<void>) =>
    monitorTest(monitor, base, name, fn);

  test("the first instruction already runs in the container's own cgroup, seen as / from inside", async (sb) => {
    // cat is the container's first program: what it reads is where it was exec'd.
    const r = await sb.run([
      "run",
      "--rm",
      "--rootfs",
      sb.rootfs,
      "cat",
      "/proc/self/cgroup",
      "/sys/fs/cgroup/cgroup.procs",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    // The cgroup namespace was made after the move: its root is the container's cgroup.
    assert.ok(lines.includes("0::/"), r.stdout);
    // cgroup2 at /sys/fs/cgroup is the container's own cgroup: its only process is cat, pid 1.
    assert.equal(lines.at(-1), "1", r.stdout);
    assert.equal(r.stderr, "");
  });

  test("a running container's cgroup is <delegated>/trun/<id>, in its record; it goes with rm", async (sb) => {
    const { id, pid } = await sleeper(sb);
    const dir = `${parent}/${id}`;
    const own = Deno.readTextFileSync(`/proc/${pid}/cgroup`).split("\n").find((l) =>
      l.startsWith("0::")
    );
    assert.equal(own?.slice(3), `${HIERARCHY_PARENT}/${id}`);
    assert.equal(Deno.readTextFileSync(`${dir}/cgroup.procs`).trim(), String(pid));
    const rm = await sb.run(["rm", "-f", id]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.ok(await until(() => !exists(dir)), `${dir} is still there after rm -f`);
  });

  test("stop kills the whole cgroup (cgroup.kill), a process outside its PID namespace too", async (sb) => {
    const { id } = await sleeper(sb, ["--stop-timeout", "1"]);
    const dir = `${parent}/${id}`;
    const stray = strayInto(dir);
    const stop = await sb.run(["stop", id]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await strayEnd(stray), "SIGKILL");
    assert.ok(await until(() => !exists(dir)), `${dir} is still there after stop`);
    assert.equal((await sb.run(["rm", id])).code, 0);
  });

  test("exec runs in the container's cgroup", async (sb) => {
    const { id } = await sleeper(sb);
    const r = await sb.run(["exec", id, "cat", "/proc/self/cgroup"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.split("\n").includes("0::/"), r.stdout);
    assert.equal((await sb.run(["rm", "-f", id])).code, 0);
  });

  test("rm -f kills the whole cgroup (cgroup.kill) and removes it", async (sb) => {
    const { id } = await sleeper(sb);
    const dir = `${parent}/${id}`;
    const stray = strayInto(dir);
    const rm = await sb.run(["rm", "-f", id]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(await strayEnd(stray), "SIGKILL");
    assert.ok(await until(() => !exists(dir)), `${dir} is still there after rm -f`);
  });

  test("the next command removes the cgroup a killed monitor left", async (sb) => {
    const { id } = await sleeper(sb);
    const dir = `${parent}/${id}`;
    // The monitor dies with SIGKILL, then its container: nobody tidies the cgroup.
    const monitorPid = monitor === "conmon"
      ? Number(Deno.readTextFileSync(`${sb.env.TRUN_ROOT}/containers/${id}/userdata/conmon.pid`))
      : monitorPidOf(id);
    Deno.kill(monitorPid, "SIGKILL");
    Deno.writeTextFileSync(`${dir}/cgroup.kill`, "1");
    assert.ok(await until(() => Deno.readTextFileSync(`${dir}/cgroup.procs`).trim() === ""));
    await sleep(200);
    assert.ok(exists(dir), "the cgroup should outlive its killed monitor");
    const next = await sb.run(["run", "--rm", "--rootfs", sb.rootfs, "true"]);
    assert.equal(next.code, 0, next.stderr);
    assert.ok(!exists(dir), `${dir} was not tidied by the next run`);
  });

  const lacking = ["memory", "cpu"].filter((c) => !offered().includes(c));
  test(
    lacking.length > 0
      ? `limits this host cannot enforce (${
        lacking.join(", ")
      }): one warning, and the container runs`
      : "limits are written to the container's cgroup",
    async (sb) => {
      const r = await sb.run([
        "run",
        "--rm",
        "--memory",
        "64m",
        "--cpus",
        "1",
        "--rootfs",
        sb.rootfs,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max 2>/dev/null; echo ran",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /ran\n$/, `stdout: ${r.stdout}; stderr: ${r.stderr}`);
      const warnings = r.stderr.split("\n").filter((l) => l.startsWith("trun: warning:"));
      if (lacking.length === 0) {
        assert.deepEqual(warnings, []);
        assert.match(r.stdout, /^67108864\n100000 100000\nran\n$/);
      } else {
        assert.equal(warnings.length, 1, `stderr: ${r.stderr}`);
        assert.match(
          warnings[0]!,
          new RegExp(
            `^trun: warning: --memory, --cpus cannot be enforced: the cgroup \\S+ offers no ` +
              `${lacking.join(", ")} controllers? .*; the container runs without them$`,
          ),
        );
      }
    },
  );

  test(
    lacking.length > 0
      ? "--cgroups=required refuses limits this host cannot enforce (exit 125)"
      : "--cgroups=required runs with enforced limits",
    async (sb) => {
      const containerDirs = () =>
        [...Deno.readDirSync(parent)].filter((e) => e.isDirectory && /^[0-9a-f]{64}$/.test(e.name))
          .map((e) => e.name);
      const before = new Set(containerDirs());
      const r = await sb.run([
        "run",
        "--rm",
        "--cgroups=required",
        "--memory",
        "64m",
        "--rootfs",
        sb.rootfs,
        "true",
      ]);
      if (lacking.includes("memory")) {
        assert.equal(r.code, 125, r.stderr);
        assert.match(r.stderr, /^trun: --cgroups=required: --memory cannot be enforced: /);
      } else assert.equal(r.code, 0, r.stderr);
      // Nothing was left behind for the refused container. Other files'
      // containers share the parent: theirs come and go within moments,
      // while a leak would stay.
      const leftover = () =>
        containerDirs().filter((n) => !before.has(n)).filter((n) => {
          try {
            return Deno.readTextFileSync(`${parent}/${n}/cgroup.procs`).trim() === "";
          } catch {
            return false;
          }
        });
      for (let i = 0; i < 60 && leftover().length > 0; i++) {
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.deepEqual(leftover(), []);
    },
  );

  test("--cgroups=disabled keeps the container in its monitor's cgroup", async (sb) => {
    const r = await sb.run([
      "run",
      "--rm",
      "--cgroups=disabled",
      "--rootfs",
      sb.rootfs,
      "cat",
      "/proc/self/cgroup",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const line = r.stdout.split("\n").find((l) => l.startsWith("0::"))!;
    assert.ok(!line.includes("/trun/"), line);
  });
}

/** trun's own monitor of container `id`: the process running `container-monitor ID`. */
function monitorPidOf(id: string): number {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (argv.includes("container-monitor") && argv.includes(id)) return Number(e.name);
    } catch {
      // Gone.
    }
  }
  throw new Error(`no monitor process for ${id}`);
}

Deno.test({
  name: `trun info says where containers go${base.suffix}`,
  ignore: base.ignore,
  fn: async () => {
    await using sb = await trunSandbox();
    const r = await sb.run(["info"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Containers go to: +${HIERARCHY_PARENT}\\n`));
  },
});

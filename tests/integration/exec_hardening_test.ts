// The process `exec` puts into a running container is a copy of trun until
// its execve: these tests attack it from inside the container, as runc's
// CVE-2019-5736 (the runtime binary and memory through /proc/PID/exe and
// /proc/PID/mem) and CVE-2024-21626 (a host directory descriptor trun holds,
// used as the working directory) did. Every scenario runs with trun's own
// monitor and with conmon (when installed), as the test user and as root.
import assert from "node:assert/strict";
import { signalProcess, waitChild } from "../../ffi/child_program.ts";
import { SIGNALS } from "../../ffi/syscalls.ts";
import { containerPaths } from "../../lib/container/detached.ts";
import { type HeldJoin, holdJoin } from "../_harness/held_join.ts";
import { hostCapabilities, MAIN_TS, requires } from "../_harness/host.ts";
import { type Monitor, MONITORS, type MonitorSandbox, monitorTest } from "../_harness/monitors.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");
const dec = new TextDecoder();

type Sandbox = MonitorSandbox;

/** A scenario for one monitor (tests/_harness/monitors.ts). */
function test(monitor: Monitor, name: string, fn: (sb: Sandbox) => Promise<void>) {
  monitorTest(monitor, base, name, fn);
}

/** `run -d --rootfs ROOTFS sleep 1000`; returns the id. */
async function sleeper(sb: Sandbox): Promise<string> {
  const r = await sb.run(["run", "-d", "--rootfs", sb.rootfs, "sleep", "1000"]);
  assert.equal(r.code, 0, `run -d: ${r.stderr}`);
  return r.stdout.trim();
}

/** A host directory holding a file the container must never read. */
async function hostSecret(sb: Sandbox): Promise<string> {
  const dir = `${sb.dir}/host-secret`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/secret`, "host-secret-text\n");
  return dir;
}

/**
 * Runs trun with descriptor 7 open on the host directory `dir` and not
 * close-on-exec, as a careless caller (or a runtime bug) would leave it:
 * the descriptor runc leaked in CVE-2024-21626.
 */
async function trunWithLeakedDir(
  sb: Sandbox,
  dir: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      'exec 7<"$1"; shift; exec "$@"',
      "bash",
      dir,
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      MAIN_TS,
      ...args,
    ],
    env: { NO_COLOR: "1", ...sb.env, TRUN_MONITOR: sb.monitor },
    stdin: "null",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Prints one line per way in to process $1 that works from where it runs. */
const PROBE = `
P=$1
test -r /proc/$P/status && echo visible
for f in exe cwd root; do readlink /proc/$P/$f >/dev/null 2>&1 && echo "readlink $f"; done
for f in /proc/$P/fd/*; do readlink $f >/dev/null 2>&1 && { echo "readlink fd"; break; }; done
for f in /proc/$P/fd/*; do (exec 3<$f) 2>/dev/null && { echo "open fd"; break; }; done
head -c 1 /proc/$P/exe >/dev/null 2>&1 && echo "read exe"
(: >>/proc/$P/exe) 2>/dev/null && echo "write exe"
head -c 1 /proc/$P/environ >/dev/null 2>&1 && echo "read environ"
(exec 3</proc/$P/mem) 2>/dev/null && echo "open mem"
(cd /proc/$P/cwd) 2>/dev/null && echo "enter cwd"
exit 0
`;

/** The pid of host process `pid` in its innermost PID namespace (NSpid of /proc/PID/status). */
function innerPid(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const ns = status.match(/^NSpid:\s*(.*)$/m)?.[1]?.trim().split(/\s+/);
  assert.ok(ns && ns.length > 1, `process ${pid} is in a PID namespace of its own: ${ns}`);
  return Number(ns.at(-1));
}

/** `holdJoin` for container `id` of the sandbox. */
async function joinPaused(sb: Sandbox, id: string): Promise<HeldJoin> {
  const pid = Number(
    (await sb.run(["inspect", "--format", "{{.State.Pid}}", id])).stdout.trim(),
  );
  assert.ok(pid > 0, `container pid ${pid}`);
  return await holdJoin(pid, containerPaths(`${sb.env.TRUN_ROOT}/containers/${id}`).spec);
}

for (const monitor of MONITORS) {
  test(
    monitor,
    "a process exec is joining cannot be reached through /proc from inside",
    async (sb) => {
      const id = await sleeper(sb);
      const joining = await joinPaused(sb, id);
      let released = false;
      try {
        const inside = innerPid(joining.pid);
        const r = await sb.run(["exec", id, "sh", "-c", PROBE, "sh", String(inside)]);
        assert.equal(r.code, 0, r.stderr);
        // Visible (so the probe looked at the right process), and nothing more.
        assert.deepEqual(r.stdout.trim().split("\n"), ["visible"]);
        await joining.release();
        released = true;
        // execve made it dumpable again: the exec'd program is as visible as any other.
        const after = await sb.run(["exec", id, "sh", "-c", PROBE, "sh", String(inside)]);
        assert.equal(after.code, 0, after.stderr);
        const lines = after.stdout.trim().split("\n");
        for (const way of ["visible", "readlink exe", "read exe", "readlink fd", "enter cwd"]) {
          assert.ok(lines.includes(way), `after execve: ${way} (got ${lines.join(", ")})`);
        }
      } finally {
        if (!released) await joining.release().catch(() => {});
        signalProcess(joining.pid, SIGNALS.SIGKILL);
        await waitChild(joining.pid).catch(() => {});
      }
    },
  );

  test(
    monitor,
    "exec -w through a host descriptor trun inherited fails and reads nothing",
    async (sb) => {
      const id = await sleeper(sb);
      const dir = await hostSecret(sb);
      const direct = await trunWithLeakedDir(sb, dir, [
        "exec",
        "-w",
        "/proc/self/fd/7",
        id,
        "sh",
        "-c",
        "cat secret; pwd",
      ]);
      assert.equal(direct.code, 125, direct.stdout + direct.stderr);
      assert.doesNotMatch(direct.stdout, /host-secret-text/);
      assert.match(direct.stderr, /changing to the working directory "\/proc\/self\/fd\/7"/);
      // The same through a symlink the container made.
      const ln = await sb.run(["exec", id, "ln", "-s", "/proc/self/fd/7", "/escape"]);
      assert.equal(ln.code, 0, ln.stderr);
      const linked = await trunWithLeakedDir(sb, dir, [
        "exec",
        "-w",
        "/escape",
        id,
        "sh",
        "-c",
        "cat secret; pwd",
      ]);
      assert.equal(linked.code, 125, linked.stdout + linked.stderr);
      assert.doesNotMatch(linked.stdout, /host-secret-text/);
      assert.match(linked.stderr, /changing to the working directory "\/escape"/);
    },
  );

  test(
    monitor,
    "exec -w through /proc magic links is refused, a real directory works",
    async (sb) => {
      const id = await sleeper(sb);
      for (const path of ["/proc/self/cwd", "/proc/1/root/etc", "/proc/self/fd/3"]) {
        const r = await sb.run(["exec", "-w", path, id, "pwd"]);
        assert.equal(r.code, 125, `${path}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /changing to the working directory/);
      }
      const mk = await sb.run([
        "exec",
        id,
        "sh",
        "-c",
        "mkdir -p /data/sub && ln -s /data/sub /link",
      ]);
      assert.equal(mk.code, 0, mk.stderr);
      for (
        const [path, want] of [["/data/sub", "/data/sub"], ["/link", "/data/sub"], [
          "/data/sub/../..",
          "/",
        ]]
      ) {
        const r = await sb.run(["exec", "-w", path!, id, "pwd"]);
        assert.equal(r.code, 0, `${path}: ${r.stderr}`);
        assert.equal(r.stdout.trim(), want);
      }
    },
  );

  test(
    monitor,
    "an exec'd process holds no descriptor of trun's, even one trun inherited",
    async (sb) => {
      const id = await sleeper(sb);
      const dir = await hostSecret(sb);
      const r = await trunWithLeakedDir(sb, dir, [
        "exec",
        id,
        "sh",
        "-c",
        "ls /proc/self/fd; cat /proc/self/fd/7/secret",
      ]);
      assert.doesNotMatch(r.stdout, /host-secret-text/);
      // ls's own directory descriptor is the only one above stdio.
      const fds = r.stdout.trim().split(/\s+/).map(Number);
      assert.deepEqual(fds.filter((fd) => fd > 2).length, 1, r.stdout);
    },
  );
}

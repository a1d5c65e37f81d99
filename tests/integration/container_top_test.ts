// `trun top`: the host's ps cut to a container's processes, with host pids
// (checked against /proc), ps options passed through, an exec'd process
// (reparented outside the container, found by its PID namespace) and one
// running under another uid (a subordinate id rootless), and Docker's
// errors. Runs with trun's own monitor and with conmon, as the test user
// and as root.
import assert from "node:assert/strict";
import { hostCapabilities, requires, sandboxProcessesGone, trunSandbox } from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");
const conmon = await new Deno.Command("sh", { args: ["-c", "command -v conmon"], stdout: "null" })
  .output().then((o) => o.success, () => false);

/** A sandbox with `run` under monitor `monitor`, whose containers are force-removed at the end. */
async function topSandbox(monitor: string) {
  const inner = await trunSandbox();
  const run = (args: readonly string[]) => inner.run(args, { env: { TRUN_MONITOR: monitor } });
  const cleanup = async () => {
    const ls = await run(["ps", "-a", "-q", "--no-trunc"]);
    const ids = ls.code === 0 ? ls.stdout.split("\n").filter((l) => l !== "") : [];
    if (ids.length > 0) await run(["rm", "-f", ...ids]);
    await sandboxProcessesGone(inner);
    await inner.cleanup();
  };
  return { run, rootfs: await busyboxRootfs(), [Symbol.asyncDispose]: cleanup };
}

/** The rows of `top`'s table: cells are at least 3 spaces apart (tabwriter padding). */
function rows(stdout: string): string[][] {
  return stdout.trimEnd().split("\n").map((l) => l.split(/ {3,}/));
}

/** Field `name` of /proc/PID/status. */
async function procStatus(pid: string, name: string): Promise<string> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  return new RegExp(`^${name}:\\s*(.*)$`, "m").exec(text)?.[1]?.trim() ?? "";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `top` until it shows `count` processes (a start or an exec takes a moment). */
async function topRows(
  run: (args: readonly string[]) => Promise<{ code: number; stdout: string; stderr: string }>,
  args: string[],
  count: number,
): Promise<string[][]> {
  let last = "";
  for (let i = 0; i < 50; i++) {
    const r = await run(["top", ...args]);
    assert.equal(r.code, 0, r.stderr);
    const table = rows(r.stdout);
    if (table.length - 1 === count) return table;
    last = r.stdout;
    await sleep(100);
  }
  throw new Error(`top ${args.join(" ")} never showed ${count} processes:\n${last}`);
}

for (const monitor of ["trun", "conmon"]) {
  const skip = monitor === "conmon" && !conmon;
  Deno.test({
    name:
      `${monitor}: top lists the shell and both sleeps with host pids; ps options; exec'd and other-uid processes${base.suffix}${
        skip && !base.ignore ? " (skipped: conmon not installed)" : ""
      }`,
    ignore: base.ignore || skip,
    fn: async () => {
      await using sb = await topSandbox(monitor);
      // `& wait` keeps the shell: busybox sh execs a last plain command.
      const r = await sb.run([
        "run",
        "-d",
        "--rootfs",
        sb.rootfs,
        "sh",
        "-c",
        "sleep 1000 & sleep 1000 & wait",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const id = r.stdout.trim();
      const pid = (await sb.run(["inspect", "--format", "{{.State.Pid}}", id])).stdout.trim();
      assert.match(pid, /^[1-9]\d*$/);

      const table = await topRows(sb.run, [id], 3);
      assert.deepEqual(table[0], ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
      const procs = table.slice(1);
      const shell = procs.find((p) => p[1] === pid);
      assert.ok(shell, `the init pid ${pid} is listed:\n${table.join("\n")}`);
      assert.equal(shell[7], "sh -c sleep 1000 & sleep 1000 & wait");
      const sleeps = procs.filter((p) => p !== shell);
      assert.equal(sleeps.length, 2);
      for (const p of sleeps) {
        assert.equal(p[2], pid, "a sleep's parent is the shell");
        assert.equal(p[7], "sleep 1000");
      }
      // The pids are the host's: /proc agrees on parents and commands.
      for (const p of procs) {
        assert.equal(await procStatus(p[1]!, "PPid"), p[2]);
        const cmdline = (await Deno.readTextFile(`/proc/${p[1]}/cmdline`)).split("\0")
          .filter((w) => w !== "").join(" ");
        assert.equal(cmdline, p[7]);
      }

      // ps options pass through; `container top` is the same command.
      const short = await topRows(sb.run, [id, "-o", "pid,comm"], 3);
      assert.deepEqual(short[0], ["PID", "COMMAND"]);
      assert.deepEqual(
        short.slice(1).map((row) => row.join(" ")).sort(),
        procs.map((p) => `${p[1]} ${p[1] === pid ? "sh" : "sleep"}`).sort(),
      );
      const family = await sb.run(["container", "top", id, "-o", "pid"]);
      assert.equal(family.code, 0, family.stderr);
      assert.deepEqual(
        family.stdout.trim().split(/\s+/).slice(1).sort(),
        procs.map((p) => p[1]).sort(),
      );

      // An exec'd process as uid 1000: its parent is outside the container
      // (reparented), its host uid a subordinate one rootless; still listed.
      const ex = await sb.run(["exec", "-d", "-u", "1000", id, "sleep", "999"]);
      assert.equal(ex.code, 0, ex.stderr);
      const withExec = await topRows(sb.run, [id, "-o", "pid,uid,args"], 4);
      const exec = withExec.find((row) => row[2] === "sleep 999");
      assert.ok(exec, withExec.join("\n"));
      assert.equal(await procStatus(exec[0]!, "NSpid").then((s) => s.split(/\s+/)[0]), exec[0]);
      const hostUid = (await procStatus(exec[0]!, "Uid")).split(/\s+/)[0];
      assert.equal(exec[1], hostUid);
      if (!caps.isRoot) assert.notEqual(hostUid, String(Deno.uid()));
    },
  });
}

Deno.test({
  name: `top: Docker's errors: no PID column, a stopped container, no such container${base.suffix}`,
  ignore: base.ignore,
  fn: async () => {
    await using sb = await topSandbox(conmon ? "conmon" : "trun");
    const r = await sb.run(["run", "-d", "--rootfs", sb.rootfs, "sleep", "1000"]);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const noPid = await sb.run(["top", id, "-o", "comm"]);
    assert.equal(noPid.code, 1);
    assert.equal(noPid.stderr, "trun: Couldn't find PID field in ps output\n");
    const renamed = await sb.run(["top", id, "-o", "user=PID"]);
    assert.equal(renamed.code, 1);
    assert.match(renamed.stderr, /specifying "user=PID" is not allowed/);
    const stop = await sb.run(["stop", "-t", "0", id]);
    assert.equal(stop.code, 0, stop.stderr);
    const stopped = await sb.run(["top", id]);
    assert.equal(stopped.code, 1);
    assert.equal(stopped.stdout, "");
    assert.equal(stopped.stderr, `trun: container ${id} is not running\n`);
    const missing = await sb.run(["top", "no-such-container"]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "trun: No such container: no-such-container\n");
  },
});

// Containers that outlive the command: `run -d` beside a monitor, then
// logs, exec, stop, kill, wait, rm; the writable layer on disk; `ps` when
// the monitor was killed. Every scenario runs with trun's own monitor and
// with Podman's conmon (when installed), as the test user and as root.
import assert from "node:assert/strict";
import { hostCapabilities, requires, type TrunSandbox, trunSandbox } from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");
const conmon = await new Deno.Command("sh", { args: ["-c", "command -v conmon"], stdout: "null" })
  .output().then((o) => o.success, () => false);
const MONITORS = ["trun", "conmon"] as const;

/** The monitor the scenarios being registered use (TRUN_MONITOR). */
let monitor: (typeof MONITORS)[number] = "trun";

function test(name: string, fn: () => Promise<void>) {
  const m = monitor;
  const skip = m === "conmon" && !conmon;
  Deno.test({
    name: `${m}: ${name}${base.suffix}${
      skip && !base.ignore ? " (skipped: conmon not installed)" : ""
    }`,
    ignore: base.ignore || skip,
    fn: async () => {
      current = m;
      await fn();
    },
  });
}

/** The monitor of the test running now. */
let current: (typeof MONITORS)[number] = "trun";

/** A sandbox whose commands use the monitor of the test running (its cleanup removes containers left). */
async function lifecycleSandbox(): Promise<TrunSandbox & { rootfs: string }> {
  const inner = await trunSandbox();
  const env = { TRUN_MONITOR: current };
  const sb: TrunSandbox = {
    ...inner,
    run: (args, opts = {}) => inner.run(args, { ...opts, env: { ...env, ...opts.env } }),
  };
  // trunSandbox's cleanup removes the containers a test left.
  return { ...sb, rootfs: await busyboxRootfs() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `run -d [flags] --rootfs ROOTFS sh -c SCRIPT`; returns the id it prints. */
async function detached(
  sb: TrunSandbox & { rootfs: string },
  flags: string[],
  script: string,
): Promise<string> {
  const r = await sb.run(["run", "-d", ...flags, "--rootfs", sb.rootfs, "sh", "-c", script]);
  assert.equal(r.code, 0, `run -d: ${r.stderr}`);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  return id;
}

for (const m of MONITORS) {
  monitor = m;
  scenarios();
}

function scenarios(): void {
  test("run -d: prints the id; logs, exec, stop (SIGKILL after -t), wait and rm", async () => {
    await using sb = await lifecycleSandbox();
    const id = await detached(
      sb,
      ["--name", "web"],
      "echo hello; echo oops >&2; while true; do sleep 0.1; done",
    );
    await sleep(300);
    const logs = await sb.run(["logs", "web"]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout, "hello\n");
    assert.equal(logs.stderr, "oops\n");
    // exec sees the container: its hostname (the short id) and PID namespace.
    const ex = await sb.run([
      "exec",
      "web",
      "sh",
      "-c",
      "hostname; echo $$; touch /made-by-exec; exit 4",
    ]);
    assert.equal(ex.code, 4, ex.stderr);
    const [hostname, pid] = ex.stdout.trim().split("\n");
    assert.equal(hostname, id.slice(0, 12));
    assert.notEqual(pid, "1");
    // The writable layer is on disk, under the store.
    const upper = `${sb.env.TRUN_ROOT}/containers/${id}/upper`;
    assert.ok((await Deno.lstat(`${upper}/made-by-exec`)).isFile);
    // sh as PID 1 ignores SIGTERM: stop sends SIGKILL after 1 s.
    const t0 = performance.now();
    const stop = await sb.run(["stop", "-t", "1", "web"]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout, "web\n");
    assert.ok(performance.now() - t0 >= 900, "stop waited for the timeout");
    const wait = await sb.run(["wait", id.slice(0, 12)]);
    assert.equal(wait.stdout, "137\n");
    const rm = await sb.run(["rm", "web"]);
    assert.equal(rm.code, 0, rm.stderr);
    await assert.rejects(Deno.lstat(`${sb.env.TRUN_ROOT}/containers/${id}`), Deno.errors.NotFound);
    const gone = await sb.run(["logs", "web"]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /No such container: web/);
  });

  test("a run refused after its monitor started (name in use, missing rootfs, busy port) leaves no process and no directory", async () => {
    await using sb = await lifecycleSandbox();
    const id = await detached(sb, ["--name", "taken"], "sleep 30");
    const dirs = () => [...Deno.readDirSync(`${sb.env.TRUN_ROOT}/containers`)].map((e) => e.name);
    const port = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      for (
        const [flags, why] of [
          [["--name", "taken"], /already in use/],
          [["--network", "none", "-p", `127.0.0.1:${(port.addr as Deno.NetAddr).port}:80`], /./],
        ] as const
      ) {
        const r = await sb.run(["run", "--rm", ...flags, "--rootfs", sb.rootfs, "true"]);
        assert.equal(r.code, 125, `${flags.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, why);
      }
      const r = await sb.run(["run", "--rm", "--rootfs", `${sb.dir}/nowhere`, "true"]);
      assert.equal(r.code, 125, r.stderr);
    } finally {
      port.close();
    }
    assert.deepEqual(dirs(), [id], "only the running container's directory");
    // No monitor or runtime of the refused runs is left (conmon reports
    // the given-up create, then takes a moment to exit).
    const others = async () => {
      const out = await new Deno.Command("pgrep", {
        args: ["-af", `${sb.env.TRUN_ROOT}/containers/`],
        stdout: "piped",
      }).output();
      return new TextDecoder().decode(out.stdout).split("\n")
        .filter((l) => l !== "" && !l.includes(id));
    };
    for (let i = 0; i < 50 && (await others()).length > 0; i++) await sleep(100);
    assert.deepEqual(await others(), [], "no process of a refused run");
    assert.equal((await sb.run(["rm", "-f", "taken"])).code, 0);
  });

  test("stop honours --stop-signal: a container that exits on it stops at once with its status", async () => {
    await using sb = await lifecycleSandbox();
    await detached(
      sb,
      ["--name", "polite", "--stop-signal", "USR1"],
      "trap 'exit 7' USR1; while true; do sleep 0.1; done",
    );
    await sleep(300);
    const t0 = performance.now();
    const stop = await sb.run(["stop", "-t", "10", "polite"]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.ok(performance.now() - t0 < 5000, "stop did not wait for the 10 s timeout");
    assert.equal((await sb.run(["wait", "polite"])).stdout, "7\n");
  });

  test("--init: PID 1 is the host's init, which passes stop's SIGTERM on to sleep", async () => {
    await using sb = await lifecycleSandbox();
    const r = await sb.run([
      "run",
      "-d",
      "--init",
      "--name",
      "inited",
      "--rootfs",
      sb.rootfs,
      "sleep",
      "1000",
    ]);
    assert.equal(r.code, 0, r.stderr);
    await sleep(300);
    const ps = await sb.run(["exec", "inited", "cat", "/proc/1/cmdline"]);
    assert.equal(ps.stdout, ["/run/trun-init", "--", "sleep", "1000", ""].join("\0"));
    const t0 = performance.now();
    assert.equal((await sb.run(["stop", "-t", "10", "inited"])).code, 0);
    assert.ok(
      performance.now() - t0 < 5000,
      "sleep got the SIGTERM (without an init it ignores it)",
    );
    assert.equal((await sb.run(["wait", "inited"])).stdout, "143\n");
  });

  test("--restart on-failure:2 restarts a failing container twice; stop ends always", async () => {
    await using sb = await lifecycleSandbox();
    await detached(sb, ["--name", "flaky", "--restart", "on-failure:2"], "echo try; exit 1");
    let logs = "";
    for (let i = 0; i < 100; i++) {
      await sleep(100);
      logs = (await sb.run(["logs", "flaky"])).stdout;
      const st = JSON.parse((await sb.run(["inspect", "flaky"])).stdout)[0];
      if (logs === "try\ntry\ntry\n" && st.State.Status === "exited") break;
    }
    assert.equal(logs, "try\ntry\ntry\n", "ran three times: the first and two restarts");
    await sleep(500); // and no fourth time
    assert.equal((await sb.run(["logs", "flaky"])).stdout, "try\ntry\ntry\n");
    const st = JSON.parse((await sb.run(["inspect", "flaky"])).stdout)[0];
    assert.equal(st.RestartCount, 2);
    assert.equal(st.State.ExitCode, 1);
    // always: restarted after its own exit, but not after `stop`.
    await detached(sb, ["--name", "keen", "--restart", "always"], "echo up; sleep 0.3");
    let ups = 0;
    for (let i = 0; i < 100 && ups < 2; i++) {
      await sleep(100);
      ups = (await sb.run(["logs", "keen"])).stdout.split("\n").filter((l) => l === "up").length;
    }
    assert.ok(ups >= 2, "restarted after it exited");
    assert.equal((await sb.run(["stop", "-t", "1", "keen"])).code, 0);
    await sleep(1500);
    assert.equal((await sb.run(["ps", "-q", "--filter", "name=keen"])).stdout, "", "stays stopped");
  });

  test("rename, restart (the same writable layer, a new process) and container prune", async () => {
    await using sb = await lifecycleSandbox();
    await detached(sb, ["--name", "first"], "echo start; while true; do sleep 0.1; done");
    await detached(sb, ["--name", "done"], "dd if=/dev/zero of=/blob bs=1k count=64 2>/dev/null");
    await sleep(300);
    assert.equal((await sb.run(["rename", "first", "renamed"])).code, 0);
    assert.equal((await sb.run(["logs", "first"])).code, 1);
    const before = (await sb.run(["inspect", "--format", "{{.State.Pid}}", "renamed"])).stdout;
    assert.equal((await sb.run(["restart", "-t", "1", "renamed"])).code, 0);
    await sleep(300);
    const after = (await sb.run(["inspect", "--format", "{{.State.Pid}}", "renamed"])).stdout;
    assert.notEqual(after, before, "a new process");
    assert.equal((await sb.run(["logs", "renamed"])).stdout, "start\nstart\n");
    const prune = await sb.run(["container", "prune", "-f"]);
    assert.equal(prune.code, 0, prune.stderr);
    assert.match(prune.stdout, /^Deleted Containers:\n[0-9a-f]{64}\n\nTotal reclaimed space: \d/);
    assert.equal((await sb.run(["ps", "-a", "--format", "{{.Names}}"])).stdout, "renamed\n");
  });

  test("rm refuses a running container without -f; rm -f kills it; a name is unique", async () => {
    await using sb = await lifecycleSandbox();
    await detached(sb, ["--name", "busy"], "while true; do sleep 0.1; done");
    const dup = await sb.run(["run", "-d", "--name", "busy", "--rootfs", sb.rootfs, "true"]);
    assert.equal(dup.code, 125);
    assert.match(dup.stderr, /"busy" is already in use/);
    const rm = await sb.run(["rm", "busy"]);
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /it is running/);
    const rmf = await sb.run(["rm", "-f", "busy"]);
    assert.equal(rmf.code, 0, rmf.stderr);
    assert.equal((await sb.run(["exec", "busy", "true"])).code, 1);
  });

  test("run -d --rm: the container and its directory go when it exits", async () => {
    await using sb = await lifecycleSandbox();
    const id = await detached(sb, ["--rm"], "sleep 0.3; exit 3");
    const dir = `${sb.env.TRUN_ROOT}/containers/${id}`;
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      await sleep(100);
      gone = await Deno.lstat(dir).then(() => false, () => true);
    }
    assert.ok(gone, "the container directory is gone");
    assert.equal((await sb.run(["logs", id])).code, 1);
  });

  test("run -d: a missing command is 127, a file without execute permission 126", async () => {
    await using sb = await lifecycleSandbox();
    const missing = await sb.run(["run", "-d", "--rootfs", sb.rootfs, "/no/such"]);
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stderr, /no such file or directory/);
    const denied = await sb.run(["run", "-d", "--rootfs", sb.rootfs, "/etc/passwd"]);
    assert.equal(denied.code, 126, denied.stderr);
  });

  test("logs -f follows live output until the container exits", async () => {
    await using sb = await lifecycleSandbox();
    await detached(
      sb,
      ["--name", "ticker"],
      "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done",
    );
    const r = await sb.run(["logs", "-f", "ticker"], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n");
  });

  test("a killed monitor: the container runs on, and when it dies wait reports an unknown status", async () => {
    await using sb = await lifecycleSandbox();
    const id = await detached(sb, ["--name", "orphan"], "while true; do sleep 0.1; done");
    await sleep(300);
    // The monitor is the process whose argv names this container.
    const monitors: number[] = [];
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "");
      const mine = current === "trun"
        ? cmd.includes("container-monitor\0" + id)
        : cmd.startsWith("conmon\0") && cmd.includes(`-c\0${id}\0`);
      if (mine) monitors.push(Number(e.name));
    }
    assert.equal(monitors.length, 1, "one monitor");
    Deno.kill(monitors[0]!, "SIGKILL");
    await sleep(200);
    // The container lives on: exec still works.
    assert.equal((await sb.run(["exec", "orphan", "true"])).code, 0);
    assert.equal((await sb.run(["kill", "orphan"])).code, 0);
    const wait = await sb.run(["wait", "orphan"], { timeoutMs: 10_000 });
    assert.equal(wait.stdout, "-1\n", "nobody recorded the exit status");
  });

  test("ps and inspect: the host pid of a detached sleep, Up then Exited (137)", async () => {
    await using sb = await lifecycleSandbox();
    const id = await detached(sb, ["--name", "sleeper", "-l", "team=db"], "exec sleep 1000");
    const pidText = await sb.run(["inspect", "--format", "{{.State.Pid}}", "sleeper"]);
    assert.equal(pidText.code, 0, pidText.stderr);
    const pid = Number(pidText.stdout.trim());
    assert.ok(pid > 1);
    assert.equal(await Deno.readTextFile(`/proc/${pid}/cmdline`), "sleep\u00001000\u0000");
    const ps = await sb.run(["ps"]);
    assert.match(ps.stdout, /^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES\n/);
    assert.match(ps.stdout, new RegExp(`\\n${id.slice(0, 12)} .*Up .* sleeper\\n`));
    assert.equal(
      (await sb.run(["ps", "-q", "--filter", "label=team=db"])).stdout,
      `${id.slice(0, 12)}\n`,
    );
    assert.equal((await sb.run(["kill", "sleeper"])).code, 0);
    await sb.run(["wait", "sleeper"]);
    assert.equal((await sb.run(["ps", "-q"])).stdout, "", "not running");
    assert.match((await sb.run(["ps", "-a"])).stdout, /Exited \(137\) .* sleeper\n/);
    const state = JSON.parse((await sb.run(["inspect", "sleeper"])).stdout)[0].State;
    assert.equal(state.Status, "exited");
    assert.equal(state.ExitCode, 137);
    assert.equal(state.Pid, 0);
  });

  test("create then start, twice: the same writable layer, a fresh exit status each time", async () => {
    await using sb = await lifecycleSandbox();
    const created = await sb.run([
      "create",
      "--name",
      "again",
      "--rootfs",
      sb.rootfs,
      "sh",
      "-c",
      "echo run >> /runs; wc -l < /runs; exit 5",
    ]);
    assert.equal(created.code, 0, created.stderr);
    assert.match((await sb.run(["ps", "-a"])).stdout, /Created +again\n/);
    for (const n of [1, 2]) {
      assert.equal((await sb.run(["start", "again"])).code, 0);
      assert.equal((await sb.run(["wait", "again"])).stdout, "5\n");
      assert.equal((await sb.run(["logs", "--tail", "1", "again"])).stdout.trim(), String(n));
    }
  });
}

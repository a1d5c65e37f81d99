// Attaching to containers beside their monitor: `run -it` with Ctrl-P
// Ctrl-Q and `attach` again, `--detach-keys`, stdin of `run -d -i` through
// `attach`, `-a` choosing streams (stdout and stderr stay two streams),
// `exec -it` on a terminal,
// `create` + `start -a`, a foreground run kept as a record, and the
// terminal resized through the monitor's `ctl` fifo. Every scenario runs
// with trun's own monitor and with Podman's conmon (when installed), as the
// test user and as root. Terminals come from script(1), as a user's would.
import assert from "node:assert/strict";
import {
  hostCapabilities,
  MAIN_TS,
  requires,
  type TrunSandbox,
  trunSandbox,
} from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");
const have = (tool: string) =>
  new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" }).output()
    .then((o) => o.success, () => false);
const conmon = await have("conmon");
const script = await have("script");
const MONITORS = ["trun", "conmon"] as const;
type Monitor = (typeof MONITORS)[number];

function test(m: Monitor, name: string, fn: (sb: Sandbox) => Promise<void>, needsPty = false) {
  const why = m === "conmon" && !conmon
    ? "conmon not installed"
    : needsPty && !script
    ? "script(1) not installed"
    : "";
  Deno.test({
    name: `${m}: ${name}${base.suffix}${why && !base.ignore ? ` (skipped: ${why})` : ""}`,
    ignore: base.ignore || why !== "",
    fn: async () => {
      await using sb = await sandbox(m);
      await fn(sb);
    },
  });
}

type Sandbox = TrunSandbox & { rootfs: string; monitor: Monitor };

/** A sandbox whose commands use monitor `m`. */
async function sandbox(m: Monitor): Promise<Sandbox> {
  const inner = await trunSandbox();
  const env = { TRUN_MONITOR: m };
  return {
    ...inner,
    env: { ...inner.env, ...env },
    run: (args, opts = {}) => inner.run(args, { ...opts, env: { ...env, ...opts.env } }),
    rootfs: await busyboxRootfs(),
    monitor: m,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** trun under script(1): a terminal of its own; what it prints, and keys to type. */
interface PtySession {
  /** Types `text` (control characters included). */
  type(text: string): Promise<void>;
  /** Waits (up to 20 s) until the output matches `re`. */
  waitFor(re: RegExp): Promise<void>;
  /** Waits for trun to end: its exit status and all output. */
  end(): Promise<{ code: number; output: string }>;
}

function ptySession(sb: Sandbox, args: string[]): PtySession {
  const cmd = [Deno.execPath(), "run", "-A", "--quiet", MAIN_TS, ...args];
  const child = new Deno.Command("script", {
    args: ["-qfec", cmd.map((a) => `'${a}'`).join(" "), "/dev/null"],
    env: sb.env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  let output = "";
  const reading = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) output += dec.decode(chunk, { stream: true });
  })();
  return {
    type: (text) => w.write(new TextEncoder().encode(text)),
    async waitFor(re) {
      const end = Date.now() + 20_000;
      while (!re.test(output)) {
        if (Date.now() > end) {
          throw new Error(`no ${re} in the terminal: ${JSON.stringify(output)}`);
        }
        await sleep(50);
      }
    },
    async end() {
      await w.close().catch(() => {});
      const status = await child.status;
      await reading;
      await child.stderr.cancel();
      return { code: status.code, output };
    },
  };
}

/** `ps -a` as "NAME STATUS" lines. */
async function statuses(sb: Sandbox): Promise<string> {
  const r = await sb.run(["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

for (const m of MONITORS) {
  test(m, "run -it: Ctrl-P Ctrl-Q detaches, attach comes back, exit ends attach", async (sb) => {
    const run = ptySession(sb, ["run", "-it", "--name", "box", "--rootfs", sb.rootfs, "sh"]);
    await sleep(1500);
    await run.type("echo one-$((1+1))\n");
    await run.waitFor(/one-2/);
    await run.type("\x10\x11");
    const detached = await run.end();
    assert.equal(detached.code, 0, detached.output);
    assert.match(await statuses(sb), /^box Up/m);

    const again = ptySession(sb, ["attach", "box"]);
    await sleep(1500);
    await again.type("echo two-$((2+2))\n");
    await again.waitFor(/two-4/);
    await again.type("exit 5\n");
    const ended = await again.end();
    assert.equal(ended.code, 5, ended.output);
    assert.match(await statuses(sb), /^box Exited \(5\)/m);
  }, true);

  test(
    m,
    "run -it --detach-keys ctrl-x: Ctrl-P Ctrl-Q reach the shell, Ctrl-X detaches",
    async (sb) => {
      const run = ptySession(sb, [
        "run",
        "-it",
        "--detach-keys",
        "ctrl-x",
        "--name",
        "keys",
        "--rootfs",
        sb.rootfs,
        "sh",
      ]);
      await sleep(1500);
      await run.type("\x10\x11echo still-$((3+3))\n");
      await run.waitFor(/still-6/);
      await run.type("\x18");
      const r = await run.end();
      assert.equal(r.code, 0, r.output);
      assert.match(await statuses(sb), /^keys Up/m);
    },
    true,
  );

  test(
    m,
    "run -d -i keeps stdin open: attach sends it, and ends with the exit status",
    async (sb) => {
      const d = await sb.run([
        "run",
        "-d",
        "-i",
        "--name",
        "reader",
        "--rootfs",
        sb.rootfs,
        "sh",
        "-c",
        "read x; echo got $x; exit 7",
      ]);
      assert.equal(d.code, 0, d.stderr);
      const r = await sb.run(["attach", "reader"], { stdin: "hello\n" });
      assert.equal(r.code, 7, r.stderr);
      assert.equal(r.stdout, "got hello\n");
    },
  );

  test(m, "run: stdout and stderr stay two streams; -a stdout attaches only stdout", async (sb) => {
    const both = await sb.run([
      "run",
      "--rm",
      "--rootfs",
      sb.rootfs,
      "sh",
      "-c",
      "echo out; echo err >&2; exit 3",
    ]);
    assert.equal(both.code, 3);
    assert.equal(both.stdout, "out\n");
    assert.match(both.stderr, /^err\n$/);
    const one = await sb.run([
      "run",
      "--rm",
      "-a",
      "stdout",
      "--rootfs",
      sb.rootfs,
      "sh",
      "-c",
      "echo out; echo err >&2",
    ]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, "out\n");
    assert.doesNotMatch(one.stderr, /err/);
    const bad = await sb.run(["run", "-d", "-a", "stdout", "--rootfs", sb.rootfs, "true"]);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /conflicting options: -a and -d/);
  });

  test(m, "run in the foreground keeps the container (logs, ps) unless --rm", async (sb) => {
    const r = await sb.run(["run", "--name", "kept", "--rootfs", sb.rootfs, "echo", "hi"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hi\n");
    assert.match(await statuses(sb), /^kept Exited \(0\)/m);
    const logs = await sb.run(["logs", "kept"]);
    assert.equal(logs.stdout, "hi\n");
    const gone = await sb.run(["run", "--rm", "--name", "gone", "--rootfs", sb.rootfs, "true"]);
    assert.equal(gone.code, 0, gone.stderr);
    assert.doesNotMatch(await statuses(sb), /gone/);
  });

  test(m, "create, then start -a: the output and the exit status", async (sb) => {
    const c = await sb.run([
      "create",
      "--name",
      "later",
      "--rootfs",
      sb.rootfs,
      "sh",
      "-c",
      "echo started; exit 4",
    ]);
    assert.equal(c.code, 0, c.stderr);
    const s = await sb.run(["start", "-a", "later"]);
    assert.equal(s.code, 4, s.stderr);
    assert.equal(s.stdout, "started\n");
    const stopped = await sb.run(["attach", "later"]);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /cannot attach to a stopped container/);
  });

  test(m, "exec -it: a shell on a terminal of its own in a running container", async (sb) => {
    const d = await sb.run(["run", "-d", "--name", "host", "--rootfs", sb.rootfs, "sleep", "1000"]);
    assert.equal(d.code, 0, d.stderr);
    const ex = ptySession(sb, ["exec", "-it", "host", "sh"]);
    await sleep(1500);
    await ex.type("tty; echo sum-$((2+3)); exit 3\n");
    const r = await ex.end();
    assert.equal(r.code, 3, r.output);
    assert.match(r.output, /\/dev\/pts\/\d+/);
    assert.match(r.output, /sum-5/);
  }, true);

  test(m, "the terminal is resized through the monitor's ctl fifo", async (sb) => {
    const d = await sb.run([
      "run",
      "-d",
      "-t",
      "--name",
      "sized",
      "--rootfs",
      sb.rootfs,
      "sh",
      "-c",
      "while :; do stty size; sleep 0.2; done",
    ]);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    await Deno.writeTextFile(`${sb.env.TRUN_ROOT}/containers/${id}/userdata/ctl`, "1 50 100\n");
    const end = Date.now() + 10_000;
    let logs = "";
    while (!/50 100/.test(logs) && Date.now() < end) {
      await sleep(200);
      logs = (await sb.run(["logs", "sized"])).stdout;
    }
    assert.match(logs, /24 80/);
    assert.match(logs, /50 100/);
  });
}

// Podman acceptance: rootless Podman (4.3, with conmon) runs containers
// with trun as its OCI runtime, through the `trun-runc` wrapper that
// scripts/install_runc_wrapper.sh writes, as `podman --runtime` users do.
// The cases walk what a user sees: output and exit status of `run`, a
// detached container's life (ps, exec, exec -it, stop, start, kill, rm),
// terminals, and the codes Podman derives from runtime errors.
//
// Everything Podman keeps lives in one temporary directory for this file
// (tests/_harness/podman.ts): its own store, containers.conf and pause
// process, never the user's own containers. The busybox rootfs is imported
// once; the last test removes it all and checks nothing is left running.
// Rootless only: as root Podman would use root's runtime setup, which is
// not what this accepts.
import assert from "node:assert/strict";
import { type CapName, hostCapabilities } from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";
import {
  type PodmanResult,
  type PodmanSandbox,
  podmanSandbox,
  podmanTools,
} from "../_harness/podman.ts";

const caps = await hostCapabilities();
const tools = await podmanTools();
const IMAGE = "localhost/trun-acceptance/busybox:latest";

type Gate = { ignore: boolean; suffix: string };

/** Skips as root, or when the host or a tool is missing, with every reason in the name. */
function gate(...extra: ("script")[]): Gate {
  if (caps.isRoot) {
    return {
      ignore: true,
      suffix: " (skipped: Podman acceptance is rootless: run as the test user)",
    };
  }
  const missing: string[] = [];
  const host: CapName[] = ["userns", "newuidmap", "idmap", "busybox"];
  for (const name of host) {
    if (!caps[name as keyof typeof caps]) missing.push(caps.reasons[name] ?? name);
  }
  for (const tool of ["podman", "conmon", "tar", ...extra] as const) {
    if (tools[tool] === null) missing.push(tools.reasons[tool] ?? tool);
  }
  return missing.length === 0
    ? { ignore: false, suffix: "" }
    : { ignore: true, suffix: ` (skipped: ${[...new Set(missing)].join("; ")})` };
}

function test(name: string, g: Gate, fn: () => Promise<void>) {
  Deno.test({ name: `podman --runtime trun-runc: ${name}${g.suffix}`, ignore: g.ignore, fn });
}

let sandbox: Promise<PodmanSandbox> | null = null;

/** The file's Podman sandbox with the busybox image, made by the first test that needs it. */
function podman(): Promise<PodmanSandbox> {
  sandbox ??= (async () => {
    // Without slirp4netns, Podman 4.3 cannot give a rootless container a
    // network; none is needed here.
    const sb = await podmanSandbox(tools, {
      network: caps.slirp4netns === null ? "none" : "slirp4netns",
    });
    // If the file stops before its last test (a --filter, a crash), the
    // containers and the store still go.
    globalThis.addEventListener("unload", () => sb.cleanupSync());
    await sb.importRootfs(await busyboxRootfs(), IMAGE);
    return sb;
  })();
  return sandbox;
}

function show(r: PodmanResult): string {
  return `exit ${r.code}${r.timedOut ? " (timed out)" : ""} in ${Math.round(r.durationMs)} ms\n` +
    `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

function ok(r: PodmanResult, what: string): void {
  assert.equal(r.code, 0, `${what}: ${show(r)}`);
}

/** `podman ps -a`'s STATUS column for container `name`, or null when it is not listed. */
async function status(pm: PodmanSandbox, name: string): Promise<string | null> {
  const r = await pm.podman(["ps", "-a", "--format", "{{.Names}}\t{{.Status}}"]);
  ok(r, "ps -a");
  const line = r.stdout.split("\n").find((l) => l.startsWith(`${name}\t`));
  return line === undefined ? null : line.slice(name.length + 1);
}

/** The container's process and its conmon, as host pid → command line. */
async function processesOf(pm: PodmanSandbox, name: string): Promise<Map<number, string>> {
  const r = await pm.podman(["inspect", "--format", "{{.State.Pid}} {{.State.ConmonPid}}", name]);
  ok(r, "inspect");
  const found = new Map<number, string>();
  for (const pid of r.stdout.trim().split(" ").map(Number)) {
    const cmdline = await cmdlineOf(pid);
    assert.ok(cmdline !== null, `pid ${pid} of ${name} is not running: ${r.stdout}`);
    found.set(pid, cmdline);
  }
  return found;
}

async function cmdlineOf(pid: number): Promise<string | null> {
  if (!(pid > 0)) return null;
  try {
    return (await Deno.readTextFile(`/proc/${pid}/cmdline`)).replaceAll("\0", " ").trim();
  } catch {
    return null;
  }
}

test("run --rm prints the command's output and exits 0", gate(), async () => {
  const pm = await podman();
  const r = await pm.podman(["run", "--rm", IMAGE, "echo", "hello"]);
  ok(r, "run --rm echo hello");
  assert.equal(r.stdout, "hello\n");
  const left = await pm.podman(["ps", "-a", "-q"]);
  assert.equal(left.stdout, "", "--rm removed the container");
});

test(
  "a detached container: ps, exec, exec -it, stop, start, kill, rm -f",
  gate("script"),
  async () => {
    const pm = await podman();
    const name = "trun-life";
    const seen = new Map<number, string>();
    try {
      const run = await pm.podman(["run", "-d", "--name", name, IMAGE, "sleep", "1000"]);
      ok(run, "run -d");
      assert.match(run.stdout, /^[0-9a-f]{64}\n$/);
      assert.match((await status(pm, name)) ?? "", /^Up /);
      for (const [pid, cmd] of await processesOf(pm, name)) seen.set(pid, cmd);
      assert.ok([...seen.values()].includes("sleep 1000"), [...seen.values()].join("\n"));

      const exec = await pm.podman(["exec", name, "sh", "-c", "echo $((1+2))"]);
      ok(exec, "exec");
      assert.equal(exec.stdout, "3\n");

      // script(1) gives podman a terminal, so -t allocates the container a pty.
      const tty = await pm.podmanTty(["exec", "-it", name, "tty"]);
      ok(tty, "exec -it tty");
      assert.match(tty.stdout, /\/dev\/pts\/\d+\r?\n/);

      // sleep as PID 1 has no SIGTERM handler, so the kernel ignores the
      // signal; after the 1 s grace Podman sends SIGKILL: 128 + 9.
      const stop = await pm.podman(["stop", "-t", "1", name]);
      ok(stop, "stop -t 1");
      assert.ok(stop.durationMs >= 900, `stop waited the grace period: ${show(stop)}`);
      assert.match((await status(pm, name)) ?? "", /^Exited \(137\) /);

      ok(await pm.podman(["start", name]), "start");
      assert.match((await status(pm, name)) ?? "", /^Up /);
      for (const [pid, cmd] of await processesOf(pm, name)) seen.set(pid, cmd);

      ok(await pm.podman(["kill", name]), "kill");
      const wait = await pm.podman(["wait", name]);
      ok(wait, "wait");
      assert.equal(wait.stdout.trim(), "137");
      assert.match((await status(pm, name)) ?? "", /^Exited \(137\) /);

      ok(await pm.podman(["rm", "-f", name]), "rm -f");
      assert.equal(await status(pm, name), null, "rm -f removed the container");
    } finally {
      await pm.podman(["rm", "-f", "-t", "0", "--ignore", name]);
    }
    // Both runs' sleep and conmon are gone (a reused pid runs something else).
    for (const [pid, cmd] of seen) {
      assert.notEqual(await cmdlineOf(pid), cmd, `pid ${pid} (${cmd}) is still running`);
    }
  },
);

test("run --rm -it gives the command a terminal", gate("script"), async () => {
  const pm = await podman();
  const r = await pm.podmanTty(["run", "--rm", "-it", IMAGE, "sh", "-c", "tty; echo ok"]);
  ok(r, "run --rm -it");
  // Under heavy load a NUL byte once came through the terminal chain
  // (script, podman, conmon) between the two lines; what the command
  // printed is what this checks.
  assert.match(r.stdout.replaceAll("\0", ""), /\/dev\/pts\/\d+\r?\nok\r?\n/);
});

test("run passes the command's exit status through; a missing command is 127", gate(), async () => {
  const pm = await podman();
  const three = await pm.podman(["run", "--rm", IMAGE, "sh", "-c", "exit 3"]);
  assert.equal(three.code, 3, show(three));
  // trun's create fails as runc's does, and Podman maps the message to 127.
  const missing = await pm.podman(["run", "--rm", IMAGE, "no-such-command"]);
  assert.equal(missing.code, 127, show(missing));
  assert.match(missing.stderr, /"no-such-command": executable file not found in \$PATH/);
});

test("run of a file without execute permission is 126, as with runc", gate(), async () => {
  const pm = await podman();
  // runc's create refuses it ("exec: \"/etc/passwd\": permission denied"),
  // which Podman reports as 126 with that message.
  const r = await pm.podman(["run", "--rm", IMAGE, "/etc/passwd"]);
  assert.equal(r.code, 126, show(r));
  assert.match(r.stderr, /"\/etc\/passwd": permission denied/);
});

test("cleanup leaves no container, store or process behind", gate(), async () => {
  if (sandbox === null) return;
  const pm = await sandbox;
  await pm.cleanup();
  // conmon and trun name the sandbox in their arguments; the containers'
  // own processes were checked by pid above. The pause process Podman
  // started for this sandbox's user namespace was ended by cleanup().
  assert.deepEqual(await pm.leftoverProcesses(), []);
  await assert.rejects(Deno.stat(pm.dir), Deno.errors.NotFound);
});

// As root, a container whose root has CAP_SYS_PTRACE (--cap-add SYS_PTRACE,
// --privileged) can open /proc/PID/exe of a non-dumpable process: the one
// `exec` is joining, a copy of trun until its execve. These tests check
// that trun's binary seen so is on a read-only mount (lib/runtime/
// exe_seal.ts), also through a descriptor kept after the joining process
// exec'd, and that trun seals itself only for such containers. Writability
// is asked with faccessat2(2) (the static syscall probe inside, `test`
// outside): it reports the read-only mount (EROFS) without opening, so a
// failing test can never damage the binary.
import assert from "node:assert/strict";
import { signalProcess, waitChild } from "../../ffi/child_program.ts";
import { SIGNALS } from "../../ffi/syscalls.ts";
import { containerPaths } from "../../lib/container/detached.ts";
import { hostCapabilities, requires, type TrunSandbox, trunSandbox } from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";
import { syscallProbe } from "../_harness/syscall_probe.ts";

const caps = await hostCapabilities();
const base = requires(caps, "root", "busybox");
const probe = base.ignore ? { missing: "" } : await syscallProbe();
const noProbe = "missing" in probe ? ` (skipped: ${probe.missing})` : "";
const conmon = await new Deno.Command("sh", { args: ["-c", "command -v conmon"], stdout: "null" })
  .output().then((o) => o.success, () => false);
const MONITORS = ["trun", "conmon"] as const;
const HELPER = new URL("./_sealed_join.ts", import.meta.url).pathname;
const dec = new TextDecoder();

type Sandbox = TrunSandbox & { rootfs: string };

function test(
  monitor: (typeof MONITORS)[number],
  name: string,
  fn: (sb: Sandbox) => Promise<void>,
) {
  const skip = monitor === "conmon" && !conmon;
  Deno.test({
    name: `${monitor}: ${name}${
      base.ignore
        ? `${base.suffix} (rootless containers have a user namespace: their CAP_SYS_PTRACE cannot reach trun)`
        : ""
    }${skip && !base.ignore ? " (skipped: conmon not installed)" : ""}${
      base.ignore ? "" : noProbe
    }`,
    ignore: base.ignore || skip || noProbe !== "",
    fn: async () => {
      const inner = await trunSandbox();
      const sb: Sandbox = {
        ...inner,
        rootfs: await busyboxRootfs(),
        run: (args, opts = {}) =>
          inner.run(args, { ...opts, env: { TRUN_MONITOR: monitor, ...opts.env } }),
      };
      try {
        await fn(sb);
      } finally {
        await inner.cleanup();
      }
    },
  });
}

/** `run -d` of a sleeper with `flags`; returns its id and first process's host pid. */
async function sleeper(sb: Sandbox, flags: string[]): Promise<{ id: string; pid: number }> {
  const mount = "dir" in probe ? ["-v", `${probe.dir}:/probe:ro`] : [];
  const r = await sb.run([
    "run",
    "-d",
    ...mount,
    ...flags,
    "--rootfs",
    sb.rootfs,
    "sleep",
    "1000",
  ]);
  assert.equal(r.code, 0, `run -d: ${r.stderr}`);
  const id = r.stdout.trim();
  const pid = Number((await sb.run(["inspect", "--format", "{{.State.Pid}}", id])).stdout.trim());
  assert.ok(pid > 0, `container pid ${pid}`);
  return { id, pid };
}

/** The pid of host process `pid` in its innermost PID namespace. */
function innerPid(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/^NSpid:\s*(.*)$/m)![1]!.trim().split(/\s+/).at(-1));
}

/** Waits until `check` holds (every 50 ms, up to 20 s). */
async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * From inside a container: opens the joining process's exe ($1) on
 * descriptor 3 and asks whether it is writable (faccessat2 W_OK: "ok", or
 * errno=30, EROFS); once /go exists (the join has exec'd and its maker is
 * gone), whether the kept descriptor is, through /proc/self/fd/3.
 */
const PROBE = `
access() { /probe/syscall_probe 439 -100 "s:$1" 2 0; }
exec 3</proc/$1/exe && echo opened
echo "exe $(access /proc/$1/exe)"
: >/ready
while [ ! -e /go ]; do sleep 0.05; done
echo "kept $(access /proc/self/fd/3)"
exit 0
`;

/**
 * Holds a join into container `c` made by `_sealed_join.ts` (sealing as
 * `exec` does, or not when `unsealed`), probes it from inside, lets it
 * exec, and returns the probe's lines.
 */
async function attack(
  sb: Sandbox,
  c: { id: string; pid: number },
  unsealed: boolean,
): Promise<string[]> {
  const spec = containerPaths(`${sb.env.TRUN_ROOT}/containers/${c.id}`).spec;
  const helper = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", HELPER, String(c.pid), spec],
    env: unsealed ? { TRUN_EXE_SEALED: "1" } : {},
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = helper.stdin.getWriter();
  const reader = helper.stdout.getReader();
  let joining = 0;
  try {
    const first = await reader.read();
    joining = Number(dec.decode(first.value ?? new Uint8Array()).trim());
    assert.ok(joining > 0, "the helper reported the joining process");
    const root = `/proc/${c.pid}/root`;
    const probe = sb.run(["exec", c.id, "sh", "-c", PROBE, "sh", String(innerPid(joining))]);
    await until("the probe", () => {
      try {
        Deno.statSync(`${root}/ready`);
        return true;
      } catch {
        return false;
      }
    });
    await writer.write(new Uint8Array([10]));
    await writer.close();
    assert.equal((await helper.status).code, 0, "the held join went on to execve");
    Deno.writeTextFileSync(`${root}/go`, "");
    const r = await probe;
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split("\n");
  } finally {
    reader.releaseLock();
    await helper.stdout.cancel().catch(() => {});
    if (joining > 0) {
      signalProcess(joining, SIGNALS.SIGKILL);
      await waitChild(joining).catch(() => {});
    }
    await helper.status;
  }
}

/** The errno-free answer of access(W_OK) for `path`: false on a read-only mount. */
function writable(path: string): boolean {
  const r = new Deno.Command("test", { args: ["-w", path] }).outputSync();
  return r.success;
}

for (const monitor of MONITORS) {
  for (const flag of ["--cap-add=SYS_PTRACE", "--privileged"]) {
    test(
      monitor,
      `with ${flag}, trun's binary is read-only through the joining process's exe and a kept descriptor`,
      async (sb) => {
        const c = await sleeper(sb, [flag]);
        // The probe can tell: without the seal the binary shows writable.
        assert.deepEqual(await attack(sb, c, true), ["opened", "exe ok", "kept ok"]);
        Deno.removeSync(`/proc/${c.pid}/root/go`);
        Deno.removeSync(`/proc/${c.pid}/root/ready`);
        assert.deepEqual(await attack(sb, c, false), ["opened", "exe errno=30", "kept errno=30"]);
      },
    );
  }

  test(
    monitor,
    "exec and the monitor run from a read-only trun binary only for a container with CAP_SYS_PTRACE",
    async (sb) => {
      const exe = Deno.execPath();
      for (const [flags, sealed] of [[["--cap-add=SYS_PTRACE"], true], [[], false]] as const) {
        const c = await sleeper(sb, [...flags]);
        // The container's first process was cloned from the monitor (conmon
        // runs trun's create in its own mount namespace).
        const parent = Number(
          Deno.readTextFileSync(`/proc/${c.pid}/status`).match(/^PPid:\s*(\d+)/m)![1],
        );
        assert.equal(
          writable(`/proc/${parent}/root${exe}`),
          !sealed,
          `the monitor's view of ${exe} (${flags})`,
        );
        // A running `trun exec`: its own exe, as every clone of it sees it.
        const probe = sb.run(["exec", c.id, "sh", "-c", ": >/execing; sleep 30"]);
        await until("the exec", () => {
          try {
            Deno.statSync(`/proc/${c.pid}/root/execing`);
            return true;
          } catch {
            return false;
          }
        });
        const execs = new Deno.Command("pgrep", { args: ["-f", `exec ${c.id} sh`] }).outputSync();
        const pids = dec.decode(execs.stdout).trim().split("\n").map(Number)
          .filter((p) => Deno.readLinkSync(`/proc/${p}/exe`) === exe);
        assert.equal(pids.length, 1, `one trun exec process: ${pids}`);
        assert.equal(writable(`/proc/${pids[0]}/exe`), !sealed, `trun exec's exe (${flags})`);
        const env = Deno.readTextFileSync(`/proc/${pids[0]}/environ`).split("\0");
        assert.equal(env.includes("TRUN_EXE_SEALED=1"), sealed, `marked (${flags})`);
        assert.equal((await sb.run(["rm", "-f", c.id])).code, 0);
        await probe;
      }
    },
  );
}

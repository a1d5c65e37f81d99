// `trun run --rootfs` in real namespaces: isolation, id mapping, exit codes,
// signals, env, users, and hostile root filesystems.
import assert from "node:assert/strict";
import { hostCapabilities, MAIN_TS, requires, trunSandbox } from "../_harness/host.ts";
import {
  busyboxRootfs,
  HOSTILE_KINDS,
  type HostileKind,
  hostileRootfs,
} from "../_harness/rootfs.ts";
import { loadIdMapping, mapToHost } from "../../lib/runtime/idmap.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");
const mapped = requires(caps, "userns", "busybox", "idmap");
const rootless = requires(caps, "userns", "busybox", "rootless");
const mapping = loadIdMapping();

function test(name: string, gate: { ignore: boolean; suffix: string }, fn: () => Promise<void>) {
  Deno.test({ name: name + gate.suffix, ignore: gate.ignore, fn });
}

const mountTable = () => Deno.readTextFile("/proc/self/mountinfo");

test(
  "run --rootfs: the command is PID 1 and sees only the container's processes",
  base,
  async () => {
    await using sb = await trunSandbox();
    const rootfs = await busyboxRootfs();
    const r = await sb.run([
      "run",
      "--rootfs",
      rootfs,
      "sh",
      "-c",
      "echo pid=$$; ls /proc | grep -E '^[0-9]+$'",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [first, ...pids] = r.stdout.trim().split("\n");
    assert.equal(first, "pid=1");
    // sh (1), ls and grep: nothing from the host.
    assert.ok(pids.length <= 3, r.stdout);
    for (const p of pids) assert.ok(Number(p) < 10, `pid ${p} looks like a host process`);
  },
);

test("run --rootfs: uid 0 inside, with the subordinate range in uid_map", mapped, async () => {
  await using sb = await trunSandbox();
  const r = await sb.run([
    "run",
    "--rootfs",
    await busyboxRootfs(),
    "sh",
    "-c",
    "id -u; cat /proc/self/uid_map /proc/self/gid_map",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
  assert.deepEqual(lines[0], [0]);
  const uidMap = lines.slice(1, 1 + mapping.uid.length);
  assert.deepEqual(uidMap, mapping.uid.map((x) => [x.inside, x.outside, x.count]));
  if (!caps.isRoot) {
    assert.deepEqual(uidMap[0], [0, Deno.uid(), 1]);
    assert.ok(uidMap.length >= 2 && uidMap[1]![2]! >= 65536, "the subordinate range is mapped");
  }
});

test(
  "run --rootfs: a file uid 1000 writes in a bind mount belongs to its mapped host id",
  mapped,
  async () => {
    await using sb = await trunSandbox();
    const scratch = `${sb.dir}/scratch`;
    await Deno.mkdir(scratch, { mode: 0o777 });
    await Deno.chmod(scratch, 0o777);
    const r = await sb.run([
      "run",
      "-u",
      "1000:1000",
      "-v",
      `${scratch}:/scratch`,
      "--rootfs",
      await busyboxRootfs(),
      "sh",
      "-c",
      "echo hello > /scratch/f && id -u",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "1000");
    const st = await Deno.stat(`${scratch}/f`);
    assert.equal(st.uid, mapToHost(1000, mapping.uid));
    assert.equal(st.gid, mapToHost(1000, mapping.gid));
    assert.equal(await Deno.readTextFile(`${scratch}/f`), "hello\n");
  },
);

test(
  "run --rootfs: the host's mount table is unchanged after the container exits",
  base,
  async () => {
    await using sb = await trunSandbox();
    const before = await mountTable();
    const r = await sb.run([
      "run",
      "-v",
      `${sb.dir}:/mnt/host`,
      "--rootfs",
      await busyboxRootfs(),
      "sh",
      "-c",
      "mount | wc -l",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Number(r.stdout.trim()) > 5, "the container had its own mounts");
    assert.equal(await mountTable(), before);
  },
);

test("run --rootfs: the hostname is the container's own", base, async () => {
  await using sb = await trunSandbox();
  const hostBefore = Deno.hostname();
  const r = await sb.run([
    "run",
    "--hostname",
    "box.example",
    "--rootfs",
    await busyboxRootfs(),
    "sh",
    "-c",
    "hostname; echo $HOSTNAME",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "box.example\nbox.example\n");
  const plain = await sb.run(["run", "--rootfs", await busyboxRootfs(), "hostname"]);
  assert.match(plain.stdout.trim(), /^[0-9a-f]{12}$/);
  assert.equal(Deno.hostname(), hostBefore);
});

const EXITS: [string, string[], number, RegExp | null][] = [
  ["0 for success", ["true"], 0, null],
  ["1 for a failing command", ["false"], 1, null],
  ["the command's own status", ["sh", "-c", "exit 42"], 42, null],
  [
    "126 when the file cannot be executed",
    ["/etc/passwd"],
    126,
    /exec: "\/etc\/passwd": permission denied/,
  ],
  [
    "127 when the command is not found",
    ["no-such-command"],
    127,
    /exec: "no-such-command": executable file not found in \$PATH/,
  ],
  ["127 for a missing path", ["/no/such"], 127, /no such file or directory/],
];
for (const [what, cmd, code, err] of EXITS) {
  test(`run --rootfs: exits ${what}`, base, async () => {
    await using sb = await trunSandbox();
    const r = await sb.run(["run", "--rootfs", await busyboxRootfs(), ...cmd]);
    assert.equal(r.code, code, r.stderr);
    if (err) assert.match(r.stderr, err);
  });
}

/** Starts trun in the background; returns it and a reader of its stdout. */
function spawnTrun(env: Record<string, string>, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN_TS, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const waitFor = async (text: string) => {
    while (!seen.includes(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`trun ended before printing "${text}": ${seen}`);
      seen += value;
    }
  };
  const rest = async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return seen;
      seen += value;
    }
  };
  return { child, waitFor, rest };
}

test("run --rootfs: exits 137 when the container is killed with SIGKILL", base, async () => {
  await using sb = await trunSandbox();
  const t = await spawnTrun(sb.env, [
    "run",
    "--name",
    "victim",
    "--rootfs",
    await busyboxRootfs(),
    "sh",
    "-c",
    "echo ready; exec sleep 60",
  ]);
  await t.waitFor("ready");
  // The container runs beside its monitor; its host pid is in inspect.
  const pid = await sb.run(["inspect", "--format", "{{.State.Pid}}", "victim"]);
  assert.equal(pid.code, 0, pid.stderr);
  Deno.kill(Number(pid.stdout.trim()), "SIGKILL");
  const status = await t.child.status;
  await t.rest();
  await t.child.stderr.cancel();
  assert.equal(status.code, 137);
});

test("run --rootfs: SIGTERM sent to trun reaches the container", base, async () => {
  await using sb = await trunSandbox();
  const script = `trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.1; done`;
  const t = await spawnTrun(sb.env, ["run", "--rootfs", await busyboxRootfs(), "sh", "-c", script]);
  await t.waitFor("ready");
  t.child.kill("SIGTERM");
  const status = await t.child.status;
  const out = await t.rest();
  await t.child.stderr.cancel();
  assert.equal(status.code, 42);
  assert.match(out, /got TERM/);
});

test("run --rootfs: -e, --env-file, -w and the default environment", base, async () => {
  await using sb = await trunSandbox();
  const envFile = `${sb.dir}/env`;
  await Deno.writeTextFile(envFile, "# comment\nFROMFILE=yes\nFOO=file\n");
  const r = await sb.run([
    "run",
    "--env-file",
    envFile,
    "-e",
    "FOO=flag",
    "-w",
    "/work/dir",
    "-h",
    "envbox",
    "--rootfs",
    await busyboxRootfs(),
    "sh",
    "-c",
    'echo "$FOO $FROMFILE $HOME $HOSTNAME $PATH"; pwd',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    "flag yes /root envbox /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/work/dir\n",
  );
});

test("run --rootfs: -u by name takes the passwd and group entries", mapped, async () => {
  await using sb = await trunSandbox();
  const r = await sb.run([
    "run",
    "-u",
    "app",
    "--rootfs",
    await busyboxRootfs(),
    "sh",
    "-c",
    "id; echo $HOME",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const [id, home] = r.stdout.trim().split("\n");
  assert.match(id!, /^uid=1000\(app\) gid=1000\(app\) groups=/);
  // The kernel sorts the groups; both the primary and /etc/group's wheel.
  assert.match(id!, /groups=.*1000\(app\)/);
  assert.match(id!, /groups=.*10\(wheel\)/);
  assert.equal(home, "/home/app");
});

test("run --rootfs: -u by number, with a group", mapped, async () => {
  await using sb = await trunSandbox();
  const r = await sb.run([
    "run",
    "-u",
    "33:33",
    "--rootfs",
    await busyboxRootfs(),
    "sh",
    "-c",
    "id -u; id -g",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "33\n33\n");
});

test("run --rootfs: the rootfs directory is never modified", base, async () => {
  await using sb = await trunSandbox();
  const rootfs = await busyboxRootfs();
  const r = await sb.run([
    "run",
    "--rootfs",
    rootfs,
    "sh",
    "-c",
    "echo x > /new-file && rm /bin/ls && echo done",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "done\n");
  await assert.rejects(Deno.stat(`${rootfs}/new-file`));
  await Deno.lstat(`${rootfs}/bin/ls`);
});

test("run --rootfs: --read-only refuses writes to the root", base, async () => {
  await using sb = await trunSandbox();
  const r = await sb.run([
    "run",
    "--read-only",
    "--rootfs",
    await busyboxRootfs(),
    "sh",
    "-c",
    "touch /x || echo refused; touch /dev/shm/ok && echo shm",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "refused\nshm\n");
});

test("run --rootfs: masked and read-only paths", base, async () => {
  await using sb = await trunSandbox();
  const r = await sb.run([
    "run",
    "--rootfs",
    await busyboxRootfs(),
    "sh",
    "-c",
    "cat /proc/keys 2>/dev/null | wc -c; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo ro; touch /sys/x 2>/dev/null || echo sysro",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "0\n0\nro\nsysro\n");
});

for (const kind of Object.keys(HOSTILE_KINDS) as HostileKind[]) {
  test(
    `run --rootfs: a rootfs whose ${HOSTILE_KINDS[kind].path} links to "${
      HOSTILE_KINDS[kind].target
    }" is refused or contained`,
    base,
    async () => {
      await using sb = await trunSandbox();
      const rootfs = await hostileRootfs(kind);
      const marker = `${sb.dir}/marker`;
      await Deno.mkdir(marker);
      const before = await mountTable();
      const r = await sb.run([
        "run",
        "-v",
        `${marker}:/tmp/probe`,
        "--rootfs",
        rootfs,
        "sh",
        "-c",
        "ls /tmp/probe >/dev/null && echo contained",
      ]);
      assert.equal(await mountTable(), before, "the host's mounts did not change");
      if (r.code === 0) {
        assert.equal(r.stdout, "contained\n");
      } else {
        assert.equal(r.code, 125, r.stderr);
        assert.match(r.stderr, /symlink/);
      }
      // The standard targets refuse symlinks outright; below /dev the image's
      // entries are hidden by trun's own tmpfs, so they are contained.
      if (kind === "proc-symlink" || kind === "dev-symlink" || kind === "sys-symlink") {
        assert.equal(r.code, 125, `${kind}: ${r.stdout} ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`"/${HOSTILE_KINDS[kind].path}"`));
      }
    },
  );
}

test("run --rootfs --userns=single: only root is mapped", rootless, async () => {
  await using sb = await trunSandbox();
  const r = await sb.run([
    "run",
    "--userns=single",
    "--rootfs",
    await busyboxRootfs(),
    "cat",
    "/proc/self/uid_map",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split(/\s+/).map(Number), [0, Deno.uid(), 1]);
  const u = await sb.run([
    "run",
    "--userns=single",
    "-u",
    "app",
    "--rootfs",
    await busyboxRootfs(),
    "id",
  ]);
  assert.equal(u.code, 125);
  assert.match(u.stderr, /only root is mapped/);
});

test("run --rootfs: stdin is passed through with -i, and is /dev/null without", base, async () => {
  await using sb = await trunSandbox();
  const rootfs = await busyboxRootfs();
  const r = await sb.run(["run", "-i", "--rootfs", rootfs, "sh", "-c", "tr a-z A-Z"], {
    stdin: "hello\n",
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "HELLO\n");
  const closed = await sb.run([
    "run",
    "--rootfs",
    rootfs,
    "sh",
    "-c",
    "cat; readlink /proc/self/fd/0",
  ], { stdin: "hello\n" });
  assert.equal(closed.code, 0, closed.stderr);
  assert.equal(closed.stdout, "/dev/null\n");
});

test("run --rootfs: ignored signals are reset (yes | head ends)", base, async () => {
  await using sb = await trunSandbox();
  const rootfs = await busyboxRootfs();
  const r = await sb.run(["run", "--rootfs", rootfs, "sh", "-c", "yes | head -n 2"], {
    timeoutMs: 20_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "y\ny\n");
  // Deno ignores SIGPIPE; the container's first process must not inherit that.
  const ign = await sb.run(["run", "--rootfs", rootfs, "grep", "SigIgn", "/proc/self/status"]);
  assert.match(ign.stdout, /^SigIgn:\s+0+\n$/);
});

test("run: an unknown flag is a usage error with exit 125", base, async () => {
  await using sb = await trunSandbox();
  const r = await sb.run(["run", "--bogus", "--rootfs", "/"]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /unknown flag: --bogus/);
});

test(
  "run --rootfs: without subordinate ranges, falls back to a single mapping with a one-line warning",
  rootless,
  async () => {
    await using sb = await trunSandbox();
    const empty = `${sb.dir}/subuid-empty`;
    await Deno.writeTextFile(empty, "# no ranges for anyone\n");
    const r = await sb.run([
      "run",
      "--rootfs",
      await busyboxRootfs(),
      "sh",
      "-c",
      "id -u; cat /proc/self/uid_map",
    ], {
      env: { TRUN_SUBUID_FILE: empty, TRUN_SUBGID_FILE: empty },
    });
    assert.equal(r.code, 0, r.stderr);
    const [uid, map] = r.stdout.trim().split("\n");
    assert.equal(uid, "0");
    assert.deepEqual(map!.trim().split(/\s+/).map(Number), [0, Deno.uid(), 1]);
    const warnings = r.stderr.trim().split("\n").filter((l) => l.includes("warning"));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0]!, /subordinate/);
    assert.match(warnings[0]!, /single/);
  },
);

test(
  "run --rootfs: /etc/hostname, /etc/hosts and /etc/resolv.conf come from trun, and nothing is left behind",
  base,
  async () => {
    await using sb = await trunSandbox();
    const rootfs = await busyboxRootfs();
    // The host's network: its resolv.conf as it is (private networks get
    // the helper's resolver, tests/integration/network_names_test.ts).
    const r = await sb.run([
      "run",
      "--network",
      "host",
      "-h",
      "named-box",
      "--rootfs",
      rootfs,
      "sh",
      "-c",
      "cat /etc/hostname; grep named-box /etc/hosts; cat /etc/resolv.conf",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const hostResolv = await Deno.readTextFile("/etc/resolv.conf").catch(() => "");
    assert.equal(r.stdout, `named-box\n127.0.1.1\tnamed-box\n${hostResolv}`);
    // The rootfs is untouched and the runtime directory holds nothing of the container.
    await assert.rejects(Deno.stat(`${rootfs}/etc/hostname`));
    const left = await Array.fromAsync(Deno.readDir(`${sb.env.TRUN_RUNROOT}/containers`)).catch(
      () => [],
    );
    assert.deepEqual(left, []);
  },
);

test("run -t: the container's stdio is a terminal (80x24 when trun has none)", base, async () => {
  await using sb = await trunSandbox();
  const r = await sb.run([
    "run",
    "-t",
    "--rootfs",
    await busyboxRootfs(),
    "sh",
    "-c",
    "test -t 0 && test -t 1 && test -t 2 && echo tty; stty size; echo $TERM",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "tty\r\n24 80\r\nxterm\r\n");
});

const haveScript = await new Deno.Command("sh", {
  args: ["-c", "command -v script"],
  stdout: "null",
}).output()
  .then((o) => o.success, () => false);
test(
  `run -it: an interactive shell through a terminal, with Ctrl-C and the exit status${
    haveScript ? "" : " (skipped: script(1) not installed)"
  }`,
  { ignore: base.ignore || !haveScript, suffix: base.suffix },
  async () => {
    await using sb = await trunSandbox();
    const cmd = [
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      MAIN_TS,
      "run",
      "-it",
      "--rootfs",
      await busyboxRootfs(),
      "sh",
    ];
    // script(1) gives trun a terminal of its own, as a user's would be.
    const child = new Deno.Command("script", {
      args: ["-qfec", cmd.map((a) => `'${a}'`).join(" "), "/dev/null"],
      env: sb.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    const enc = new TextEncoder();
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await pause(2500);
    await w.write(enc.encode("sleep 30\n"));
    await pause(800);
    await w.write(enc.encode("\x03")); // Ctrl-C: interrupts sleep, not trun
    await pause(500);
    await w.write(enc.encode("echo answer-$((6*7)); exit 3\n"));
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 3, text + new TextDecoder().decode(out.stderr));
    assert.match(text, /answer-42/);
  },
);

// The security defaults and the flags that change them, in real
// containers (as the test user, and as root with TRUN_TEST_ROOT=1):
// capability sets from /proc/self/status for root and --user 1000, with
// --cap-add, --cap-drop and --privileged, in `run` and in `exec`; masked
// and read-only paths; --security-opt; --ulimit; --sysctl; --device; and
// a session keyring of the container's own, in both directions, checked
// with Debian's keyctl (keyutils) run inside through the host's loader.
import assert from "node:assert/strict";
import {
  hostCapabilities,
  MAIN_TS,
  requires,
  type TrunSandbox,
  trunSandbox,
} from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";
import { podmanSandbox, podmanTools } from "../_harness/podman.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");
const KEYCTL = "/usr/bin/keyctl";
const LIBDIR = "/lib/x86_64-linux-gnu";
const hasKeyctl = await Deno.stat(KEYCTL).then(() => true, () => false) &&
  await Deno.stat(`${LIBDIR}/ld-linux-x86-64.so.2`).then(() => true, () => false);

function test(name: string, fn: () => Promise<void>, extra?: { ignore: boolean; why: string }) {
  const skip = !base.ignore && extra?.ignore === true;
  Deno.test({
    name: `${name}${base.suffix}${skip ? ` (skipped: ${extra!.why})` : ""}`,
    ignore: base.ignore || skip,
    fn,
  });
}

/** A sandbox with the busybox rootfs; containers left are removed with it. */
async function sandbox(): Promise<TrunSandbox & { rootfs: string }> {
  const sb = await trunSandbox();
  return { ...sb, rootfs: await busyboxRootfs() };
}

/** `run --rm FLAGS --rootfs R sh -c SCRIPT`, asserting success; its stdout. */
async function runSh(
  sb: TrunSandbox & { rootfs: string },
  flags: string[],
  script: string,
): Promise<string> {
  const r = await sb.run(["run", "--rm", ...flags, "--rootfs", sb.rootfs, "sh", "-c", script]);
  assert.equal(r.code, 0, `run ${flags.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The capability masks of /proc/self/status text, by set. */
function capMasks(status: string): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const m of status.matchAll(/^Cap(Inh|Prm|Eff|Bnd|Amb):\s*([0-9a-f]+)$/gm)) {
    out[m[1]!] = BigInt(`0x${m[2]}`);
  }
  assert.equal(Object.keys(out).length, 5, `five sets in:\n${status}`);
  return out;
}

/** Docker's 14 default capabilities (0xa80425fb), cut to what this host gives trun. */
const OWN_BOUNDING = capMasks(await Deno.readTextFile("/proc/self/status")).Bnd!;
const DEFAULT = 0xa80425fbn & OWN_BOUNDING;
const CAP_CHOWN = 1n << 0n;
const CAP_NET_ADMIN = 1n << 12n;
const CAP_SYS_ADMIN = 1n << 21n;

const CAPS = "grep ^Cap /proc/self/status";

test("run: root has Docker's 14 in bounding, effective and permitted; inheritable and ambient empty", async () => {
  await using sb = await sandbox();
  assert.deepEqual(capMasks(await runSh(sb, [], CAPS)), {
    Inh: 0n,
    Prm: DEFAULT,
    Eff: DEFAULT,
    Bnd: DEFAULT,
    Amb: 0n,
  });
});

test("run --user 1000: only the bounding set; --cap-add makes it effective and ambient", async () => {
  await using sb = await sandbox();
  assert.deepEqual(capMasks(await runSh(sb, ["--user", "1000"], CAPS)), {
    Inh: 0n,
    Prm: 0n,
    Eff: 0n,
    Bnd: DEFAULT,
    Amb: 0n,
  });
  const added = capMasks(await runSh(sb, ["--user", "1000", "--cap-add", "net_admin"], CAPS));
  assert.deepEqual(added, {
    Inh: CAP_NET_ADMIN,
    Prm: CAP_NET_ADMIN,
    Eff: CAP_NET_ADMIN,
    Bnd: DEFAULT | CAP_NET_ADMIN,
    Amb: CAP_NET_ADMIN,
  });
});

test("run --cap-add/--cap-drop (ALL, any case, with or without CAP_) and --privileged", async () => {
  await using sb = await sandbox();
  const eff = async (flags: string[]) => capMasks(await runSh(sb, flags, CAPS));
  const added = await eff(["--cap-add", "CAP_SYS_ADMIN", "--cap-drop", "chown"]);
  assert.equal(added.Eff, (DEFAULT | CAP_SYS_ADMIN) & ~CAP_CHOWN);
  assert.equal(added.Bnd, added.Eff);
  const none = await eff(["--cap-drop", "ALL"]);
  assert.deepEqual([none.Eff, none.Prm, none.Bnd], [0n, 0n, 0n]);
  const one = await eff(["--cap-drop", "all", "--cap-add", "Chown"]);
  assert.deepEqual([one.Eff, one.Bnd], [CAP_CHOWN, CAP_CHOWN]);
  const all = await eff(["--privileged"]);
  assert.deepEqual([all.Eff, all.Prm, all.Bnd, all.Inh], [
    OWN_BOUNDING,
    OWN_BOUNDING,
    OWN_BOUNDING,
    0n,
  ]);
  const bad = await sb.run(["run", "--rm", "--cap-add", "bogus", "--rootfs", sb.rootfs, "true"]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /invalid --cap-add: unknown capability: "CAP_BOGUS"/);
});

test("exec gets the container's capabilities; exec --privileged gets all", async () => {
  await using sb = await sandbox();
  const r = await sb.run([
    "run",
    "-d",
    "--cap-drop",
    "chown",
    "--cap-add",
    "net_admin",
    "--rootfs",
    sb.rootfs,
    "sleep",
    "60",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  try {
    const want = (DEFAULT | CAP_NET_ADMIN) & ~CAP_CHOWN;
    const inRun = await sb.run(["exec", id, "sh", "-c", CAPS]);
    assert.equal(inRun.code, 0, inRun.stderr);
    assert.deepEqual(capMasks(inRun.stdout), { Inh: 0n, Prm: want, Eff: want, Bnd: want, Amb: 0n });
    const user = await sb.run(["exec", "-u", "1000", id, "sh", "-c", CAPS]);
    assert.deepEqual(capMasks(user.stdout), { Inh: 0n, Prm: 0n, Eff: 0n, Bnd: want, Amb: 0n });
    const priv = await sb.run(["exec", "--privileged", id, "sh", "-c", CAPS]);
    assert.equal(priv.code, 0, priv.stderr);
    assert.equal(capMasks(priv.stdout).Eff, OWN_BOUNDING);
  } finally {
    await sb.run(["rm", "-f", id]);
  }
});

test("masked paths are empty, read-only paths refuse writes; --privileged and unmask lift them", async () => {
  await using sb = await sandbox();
  const script = [
    "echo block=$(ls /sys/dev/block | wc -l)",
    "echo keys=$(wc -c < /proc/keys)",
    "echo timer=$(wc -c < /proc/timer_list)",
    "echo interrupts=$(wc -c < /proc/interrupts)",
    "echo 1 > /proc/sys/kernel/shmmax 2>/dev/null && echo sys=rw || echo sys=ro",
  ].join("; ");
  const masked = await runSh(sb, [], script);
  assert.match(masked, /^block=0$/m);
  assert.match(masked, /^keys=0$/m);
  assert.match(masked, /^timer=0$/m);
  assert.match(masked, /^interrupts=0$/m);
  assert.match(masked, /^sys=ro$/m);
  // The host has block devices: unmasked, the directory lists them.
  const hostBlocks = [...Deno.readDirSync("/sys/dev/block")].length;
  assert.ok(hostBlocks > 0);
  const unmasked = await runSh(sb, ["--security-opt", "unmask=/sys/dev/block"], script);
  assert.match(unmasked, new RegExp(`^block=${hostBlocks}$`, "m"));
  assert.match(unmasked, /^keys=0$/m, "other paths stay masked");
  const all = await runSh(
    sb,
    ["--security-opt", "unmask=ALL"],
    "grep -c ' /proc/' /proc/mounts || true",
  );
  assert.equal(all.trim(), "0");
  const priv = await runSh(sb, ["--privileged"], "grep -c ' /proc/' /proc/mounts || true");
  assert.equal(priv.trim(), "0");
  const mask = await runSh(sb, ["--security-opt", "mask=/etc/passwd"], "wc -c < /etc/passwd");
  assert.equal(mask.trim(), "0");
});

test("--security-opt no-new-privileges sets NoNewPrivs; bad options fail with 125", async () => {
  await using sb = await sandbox();
  const grep = "grep ^NoNewPrivs /proc/self/status";
  assert.match(await runSh(sb, [], grep), /NoNewPrivs:\s*0/);
  assert.match(await runSh(sb, ["--security-opt", "no-new-privileges"], grep), /NoNewPrivs:\s*1/);
  assert.match(
    await runSh(sb, ["--security-opt", "no-new-privileges=false"], grep),
    /NoNewPrivs:\s*0/,
  );
  await runSh(sb, ["--security-opt", "apparmor=unconfined"], "true");
  for (
    const [opt, re] of [
      ["bogus", /invalid --security-opt 1: "bogus"/],
      ["label=type:spc_t", /does not support SELinux labels/],
      ["seccomp=/nonexistent.json", /seccomp profile "\/nonexistent.json"/],
    ] as const
  ) {
    const r = await sb.run(["run", "--rm", "--security-opt", opt, "--rootfs", sb.rootfs, "true"]);
    assert.equal(r.code, 125, opt);
    assert.match(r.stderr, re);
  }
});

test("--ulimit is what ulimit says inside; --sysctl sets namespaced sysctls only", async () => {
  await using sb = await sandbox();
  const limits = await runSh(sb, ["--ulimit", "nofile=512:1024"], "ulimit -n; ulimit -Hn");
  assert.deepEqual(limits.trim().split("\n"), ["512", "1024"]);
  const sysctl = await runSh(
    sb,
    ["--sysctl", "kernel.shmmax=123456", "--sysctl", "fs.mqueue.msg_max=20"],
    "cat /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max",
  );
  assert.deepEqual(sysctl.trim().split("\n"), ["123456", "20"]);
  // The host's value is untouched.
  assert.notEqual((await Deno.readTextFile("/proc/sys/kernel/shmmax")).trim(), "123456");
  const net = await runSh(
    sb,
    ["--network", "none", "--sysctl", "net.ipv4.ip_forward=1"],
    "cat /proc/sys/net/ipv4/ip_forward",
  );
  assert.equal(net.trim(), "1");
  for (
    const [flags, re] of [
      [
        ["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"],
        /not allowed in the host's network namespace/,
      ],
      [["--sysctl", "kernel.hostname=x"], /"kernel.hostname" is not allowed/],
      [["--ulimit", "nofile=10:5"], /soft limit must be less than or equal to hard limit/],
      [["--ulimit", "bogus=1"], /invalid ulimit type: "bogus"/],
    ] as const
  ) {
    const r = await sb.run(["run", "--rm", ...flags, "--rootfs", sb.rootfs, "true"]);
    assert.equal(r.code, 125, flags.join(" "));
    assert.match(r.stderr, re);
  }
});

test("--device gives the host's node at the container path; a missing one fails with 125", async () => {
  await using sb = await sandbox();
  const out = await runSh(
    sb,
    ["--device", "/dev/null:/dev/mynull"],
    "ls -l /dev/mynull; echo data > /dev/mynull && echo written",
  );
  assert.match(out, /^c.*\s1,\s+3\s.*\/dev\/mynull$/m);
  assert.match(out, /^written$/m);
  const r = await sb.run([
    "run",
    "--rm",
    "--device",
    "/dev/nonexistent",
    "--rootfs",
    sb.rootfs,
    "true",
  ]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /error gathering device information .*"\/dev\/nonexistent"/);
});

/**
 * Flags and a command prefix that run the host's keyctl inside a busybox
 * container. Docker's default seccomp profile refuses keyctl and add_key
 * (tests/integration/seccomp_test.ts checks that), so these containers run
 * unconfined: the keyring's isolation is what is tested here.
 */
const KEY_FLAGS = [
  "--security-opt",
  "seccomp=unconfined",
  "-v",
  `${KEYCTL}:/k/keyctl:ro`,
  "-v",
  `${LIBDIR}:/k/lib:ro`,
];
const KEY_IN = "/k/lib/ld-linux-x86-64.so.2 --library-path /k/lib /k/keyctl";

const noKeyctl = { ignore: !hasKeyctl, why: "keyctl missing (install keyutils)" };

const conmon = await new Deno.Command("sh", { args: ["-c", "command -v conmon"], stdout: "null" })
  .output().then((o) => o.success, () => false);

// Both monitors: trun's own starts the container through the engine's
// launch, conmon through `trun runtime create`.
for (const monitor of ["trun", "conmon"] as const) {
  const why = !hasKeyctl ? "keyctl missing (install keyutils)" : "conmon not installed";
  test(
    `${monitor}: the session keyring is the container's own: host keys are not visible, its keys do not leak`,
    async () => {
      await using sb = await sandbox();
      const tag = crypto.randomUUID().slice(0, 8);
      const inside = [
        `${KEY_IN} rdescribe @s`,
        `${KEY_IN} search @s user host-${tag} >/dev/null 2>&1 && echo host-key=seen || echo host-key=unseen`,
        `${KEY_IN} add user in-${tag} x @s >/dev/null && echo added`,
      ].join("; ");
      // A session keyring of the test's own (\`keyctl session\`): a key added by
      // a process without one goes to a new keyring that dies with it.
      const script = [
        `keyctl add user host-${tag} secret @s >/dev/null`,
        `keyctl search @s user host-${tag} >/dev/null && echo host-key=on-host`,
        `"$DENO" run -A "$MAIN" run --rm ${
          KEY_FLAGS.join(" ")
        } --rootfs "$ROOTFS" sh -c '${inside}'`,
        `keyctl search @s user in-${tag} >/dev/null 2>&1 && echo in-key=leaked || echo in-key=kept`,
      ].join("\n");
      const o = await new Deno.Command(KEYCTL, {
        args: ["session", "-", "sh", "-c", script],
        env: {
          ...sb.env,
          NO_COLOR: "1",
          TRUN_MONITOR: monitor,
          DENO: Deno.execPath(),
          MAIN: MAIN_TS,
          ROOTFS: sb.rootfs,
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(o.stdout);
      assert.ok(o.success, new TextDecoder().decode(o.stderr));
      assert.match(out, /^host-key=on-host$/m);
      assert.match(out, /^keyring;0;0;[0-9a-f]+;_ses\.[0-9a-f]{64}$/m);
      assert.match(out, /^host-key=unseen$/m);
      assert.match(out, /^added$/m);
      assert.match(out, /^in-key=kept$/m);
    },
    { ignore: !hasKeyctl || (monitor === "conmon" && !conmon), why },
  );
}

test("exec joins the container's session keyring", async () => {
  await using sb = await sandbox();
  const r = await sb.run([
    "run",
    "-d",
    ...KEY_FLAGS,
    "--rootfs",
    sb.rootfs,
    "sh",
    "-c",
    `${KEY_IN} add user from-run x @s >/dev/null; sleep 60`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  try {
    let seen = "";
    for (let i = 0; i < 50 && !seen.includes("from-run"); i++) {
      const e = await sb.run(["exec", "-u", "1000", id, "sh", "-c", `${KEY_IN} show @s`]);
      assert.equal(e.code, 0, e.stderr);
      seen = e.stdout;
      if (!seen.includes("from-run")) await new Promise((res) => setTimeout(res, 100));
    }
    assert.match(seen, new RegExp(`keyring: _ses\\.${id}`));
    assert.match(seen, /user: from-run/);
  } finally {
    await sb.run(["rm", "-f", id]);
  }
}, noKeyctl);

// Side by side with Podman running runc (rootless: Podman as root cannot
// start containers on this host's hybrid cgroups without more setup). What
// must match: the sets of a non-root user with --cap-add (Podman's rule),
// the masked paths, and a session keyring of the container's own. The
// bounding sets differ on purpose: trun keeps Docker's 14 defaults where
// Podman 4 drops NET_RAW, MKNOD and AUDIT_WRITE.
const tools = await podmanTools();
const podmanMissing = caps.isRoot
  ? "Podman comparison is rootless: run as the test user"
  : ["podman", "conmon", "tar", "script"].map((t) => tools.reasons[t]).filter((r) => r).join(
    "; ",
  ) ||
    (!hasKeyctl ? "keyctl missing (install keyutils)" : "");
const runc = await new Deno.Command("sh", { args: ["-c", "command -v runc"], stdout: "null" })
  .output().then((o) => o.success, () => false);

test(
  "the same sets, masks and keyring as Podman with runc",
  async () => {
    await using sb = await sandbox();
    const pm = await podmanSandbox(tools, { network: "none" });
    try {
      const image = "localhost/trun-security/busybox:latest";
      await pm.importRootfs(sb.rootfs, image);
      const script = [
        "grep -E '^Cap(Inh|Prm|Eff|Amb)' /proc/self/status",
        "echo block=$(ls /sys/dev/block | wc -l)",
        "echo keys=$(wc -c < /proc/keys)",
        `${KEY_IN} rdescribe @s | cut -d';' -f1-3,5 | sed 's/[0-9a-f]\\{64\\}/ID/'`,
      ].join("; ");
      const flags = ["--user", "1000", "--cap-add", "net_admin", ...KEY_FLAGS];
      const theirs = await pm.podman([
        "--runtime",
        "runc",
        "run",
        "--rm",
        ...flags,
        image,
        "sh",
        "-c",
        script,
      ]);
      assert.equal(theirs.code, 0, `podman: ${theirs.stderr}`);
      const ours = await runSh(sb, flags, script);
      assert.match(ours, /^keyring;0;0;_ses\.ID$/m);
      assert.equal(ours, theirs.stdout);
    } finally {
      await pm.cleanup();
    }
  },
  { ignore: podmanMissing !== "" || !runc, why: podmanMissing || "runc missing (install runc)" },
);

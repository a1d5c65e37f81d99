// The seccomp filter in real containers: `trun run` installs Docker's
// default profile (Seccomp: 2, also for `exec`), the calls it refuses fail
// with EPERM or ENOSYS inside while everyday work (busybox tools, pipelines,
// file operations) goes on; and `trun runtime` runs a bundle's
// `linux.seccomp` (absent, the default profile, a custom one) exactly as
// runc does with libseccomp. Calls busybox cannot make go through a small
// static probe (tests/_harness/syscall_probe.c), bind-mounted at /probe.
import assert from "node:assert/strict";
import { findTool, hostCapabilities, requires, trunSandbox } from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";
import { runcSpecBundle, type RuntimeCli, runtimeCli, type Spec } from "../_harness/bundle.ts";
import { syscallProbe } from "../_harness/syscall_probe.ts";
import { podmanSandbox, podmanTools } from "../_harness/podman.ts";
import { SYSCALL_TABLE_X86_64 } from "../../ffi/syscall_table_x86_64.ts";
import { CLONE, SIGNALS } from "../../ffi/syscalls.ts";
import { Errno } from "../../ffi/errno.ts";
import { DEFAULT_SECCOMP_PROFILE, resolveSeccompProfile } from "../../lib/spec/seccomp_profile.ts";

const caps = await hostCapabilities();
const probe = await syscallProbe();
const RUNC = await findTool("runc");
const tools = await podmanTools();

type Gate = { ignore: boolean; suffix: string };

function withProbe(g: Gate): Gate {
  if (g.ignore || !("missing" in probe)) return g;
  return { ignore: true, suffix: ` (skipped: ${probe.missing})` };
}

const BASE = requires(caps, "userns", "busybox");
const PROBE = withProbe(BASE);
const RUNC_GATE: Gate = RUNC === null
  ? { ignore: true, suffix: " (skipped: runc missing (install runc))" }
  : withProbe(requires(caps, "userns", "busybox"));

/** Rootless Podman (its own store), with runc as the reference runtime beside trun-runc. */
function podmanGate(): Gate {
  if (caps.isRoot) return { ignore: true, suffix: " (skipped: the Podman comparison is rootless)" };
  const missing = (["podman", "conmon", "script", "tar"] as const).filter((t) => tools[t] === null)
    .map((t) => tools.reasons[t] ?? t);
  if (RUNC === null) missing.push("runc missing (install runc)");
  const g = withProbe(requires(caps, "userns", "newuidmap", "idmap", "busybox"));
  if (g.ignore || missing.length === 0) return g;
  return { ignore: true, suffix: ` (skipped: ${missing.join("; ")})` };
}

function test(name: string, gate: Gate, fn: () => Promise<void>) {
  Deno.test({ name: `seccomp: ${name}${gate.suffix}`, ignore: gate.ignore, fn });
}

const nr = (name: string) => SYSCALL_TABLE_X86_64[name]!;
const EPERM = `errno=${Errno.EPERM}`;
const ENOSYS = `errno=${Errno.ENOSYS}`;

/** [label, system call number, arguments, what the default filter makes of it]. */
const REFUSED: [string, number, (number | string)[], string][] = [
  ["add_key", nr("add_key"), [], EPERM],
  ["request_key", nr("request_key"), [], EPERM],
  ["keyctl", nr("keyctl"), [0], EPERM],
  ["io_uring_setup", nr("io_uring_setup"), [1, 0], EPERM],
  ["kexec_load", nr("kexec_load"), [], EPERM],
  ["open_by_handle_at", nr("open_by_handle_at"), [], EPERM],
  ["perf_event_open", nr("perf_event_open"), [], EPERM],
  ["bpf", nr("bpf"), [0], EPERM],
  ["userfaultfd", nr("userfaultfd"), [0], EPERM],
  ["unshare(CLONE_NEWUSER)", nr("unshare"), [CLONE.NEWUSER], EPERM],
  ["clone(CLONE_NEWUSER)", nr("clone"), [CLONE.NEWUSER | SIGNALS.SIGCHLD], EPERM],
  ["setns", nr("setns"), [0, 0], EPERM],
  ["mount", nr("mount"), [], EPERM],
  [
    "clone(CLONE_NEWNS|CLONE_NEWPID)",
    nr("clone"),
    [CLONE.NEWNS | CLONE.NEWPID | SIGNALS.SIGCHLD],
    EPERM,
  ],
  ["personality(READ_IMPLIES_EXEC)", nr("personality"), ["0x400000"], ENOSYS],
  ["socket(AF_VSOCK)", nr("socket"), [40, 1, 0], ENOSYS],
  ["clone3", nr("clone3"), [], ENOSYS],
  ["afs_syscall", nr("afs_syscall"), [], ENOSYS],
  ["file_getattr", nr("file_getattr"), [], ENOSYS],
  ["number 1000", 1000, [], ENOSYS],
  // A character device (1:3, /dev/null's numbers): no device cgroup, so no device nodes.
  ["mknod(S_IFCHR)", nr("mknod"), ["s:/dev/shm/trun-chr", 0o20600, 259], EPERM],
];

/** Calls the default filter lets through. */
const ALLOWED: [string, number, (number | string)[], string][] = [
  ["getpid", nr("getpid"), [], "ok"],
  ["personality(query)", nr("personality"), ["0xffffffff"], "ok"],
  ["socket(AF_UNIX)", nr("socket"), [1, 1, 0], "ok"],
  ["mknod(S_IFIFO)", nr("mknod"), ["s:/dev/shm/trun-fifo", 0o10600, 0], "ok"],
];

/** A shell script printing `label result` for each probe row. */
function probeScript(rows: typeof REFUSED): string {
  return rows.map(([label, n, args]) =>
    `echo "${label} $(/probe/syscall_probe ${n} ${args.join(" ")} 2>&1)"`
  ).join("\n");
}

function parse(stdout: string, rows: typeof REFUSED): Map<string, string> {
  const got = new Map<string, string>();
  for (const line of stdout.trim().split("\n")) {
    const label = rows.find(([l]) => line.startsWith(`${l} `))?.[0];
    if (label) got.set(label, line.slice(label.length + 1).trim());
  }
  return got;
}

/** Everyday work that must go on under the filter: `label status` per line. */
const WORKLOAD = [
  ["pipeline", "seq 1 2000 | sort -rn | head -1 | grep -qx 2000"],
  [
    "file operations",
    "mkdir -p /tmp/w/a/b && echo hi > /tmp/w/a/b/f && cp -a /tmp/w /tmp/w2 && mv /tmp/w2 /tmp/w3 && " +
    "ln -s /tmp/w3/a/b/f /tmp/l && grep -q hi /tmp/l && chmod 600 /tmp/w3/a/b/f && " +
    "chown 1:1 /tmp/w3/a/b/f && touch -d '2020-01-01 00:00' /tmp/w3/a/b/f && mkfifo /tmp/ff && " +
    "rm -rf /tmp/w /tmp/w3 /tmp/l /tmp/ff",
  ],
  [
    "tar and gzip",
    "tar -C /etc -czf /tmp/e.tgz . && tar -tzf /tmp/e.tgz | grep -q passwd && rm /tmp/e.tgz",
  ],
  ["dd and sync", "dd if=/dev/zero of=/tmp/z bs=4k count=100 2>/dev/null && sync && rm /tmp/z"],
  ["checksums", "sha256sum /bin/busybox && md5sum /etc/passwd"],
  ["background job", "sleep 0.1 & wait $!"],
  ["find and xargs", "find /etc -type f | xargs cat > /dev/null"],
  ["ps and top", "ps && top -bn1"],
  ["chroot (CAP_SYS_CHROOT)", "chroot / true"],
  ["linux32 (PER_LINUX32)", "linux32 true"],
  ["timeout", "timeout 5 true"],
  ["uname, id, date, nproc", "uname -a && id && date && nproc && hostname"],
].map(([label, cmd]) => `( ${cmd} ) >/dev/null 2>&1; echo "${label}: $?"`).join("\n");

function probeMount(): string[] {
  return "dir" in probe ? ["-v", `${probe.dir}:/probe:ro`] : [];
}

test("a container runs in filter mode (Seccomp: 2), and so does exec", BASE, async () => {
  await using sb = await trunSandbox();
  const rootfs = await busyboxRootfs();
  const r = await sb.run([
    "run",
    "--rm",
    "--rootfs",
    rootfs,
    "grep",
    "^Seccomp",
    "/proc/self/status",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Seccomp:\s+2$/m);
  assert.match(r.stdout, /^Seccomp_filters:\s+1$/m);
  const id = await sb.run(["run", "-d", "--rootfs", rootfs, "sleep", "100"]);
  assert.equal(id.code, 0, id.stderr);
  try {
    const e = await sb.run([
      "exec",
      id.stdout.trim(),
      "sh",
      "-c",
      "grep ^Seccomp: /proc/self/status; unshare -U true",
    ]);
    assert.match(e.stdout, /^Seccomp:\s+2$/m, e.stderr);
    assert.notEqual(e.code, 0, "unshare -U works in exec");
    assert.match(e.stderr, /Operation not permitted/);
  } finally {
    await sb.run(["rm", "-f", id.stdout.trim()]);
  }
});

test("what the default filter refuses fails with EPERM or ENOSYS inside", PROBE, async () => {
  await using sb = await trunSandbox();
  const script = `${probeScript(REFUSED)}\n${
    probeScript(ALLOWED)
  }\nunshare -U -r true; echo "unshare -U -r $?"`;
  const r = await sb.run([
    "run",
    "--rm",
    ...probeMount(),
    "--rootfs",
    await busyboxRootfs(),
    "sh",
    "-c",
    script,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const got = parse(r.stdout, [...REFUSED, ...ALLOWED]);
  for (const [label, , , expected] of [...REFUSED, ...ALLOWED]) {
    assert.equal(got.get(label), expected, `${label}\n${r.stdout}`);
  }
  assert.match(r.stdout, /^unshare -U -r 1$/m);
  assert.match(r.stderr, /unshare: unshare\(0x10000000\): Operation not permitted/);
});

test("everyday work goes on under the default filter", BASE, async () => {
  await using sb = await trunSandbox();
  const r = await sb.run(["run", "--rm", "--rootfs", await busyboxRootfs(), "sh", "-c", WORKLOAD]);
  assert.equal(r.code, 0, r.stderr);
  const failed = r.stdout.trim().split("\n").filter((l) => !l.endsWith(": 0"));
  assert.deepEqual(failed, [], r.stdout);
});

// ---------------------------------------------------------------------------
// `trun runtime` against runc (libseccomp) on the same bundles

/** Runs `sh -c script` in a bundle through runc and trun; returns each one's output. */
async function bothRuntimes(
  edit: (spec: Spec) => void,
  script: string,
): Promise<Record<"runc" | "trun", { code: number; stdout: string; stderr: string }>> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "trun-seccomp-" }));
  try {
    for (const d of ["bundle", "runc-root", "trun-root", "scratch"]) {
      await Deno.mkdir(`${dir}/${d}`);
    }
    await Deno.chmod(dir, 0o755);
    await runcSpecBundle(RUNC!, `${dir}/bundle`, (s) => {
      s.process.terminal = false;
      s.process.args = ["sh", "-c", script];
      s.root.readonly = false;
      delete s.process.capabilities.ambient;
      if ("dir" in probe) {
        s.mounts.push({
          destination: "/probe",
          type: "bind",
          source: probe.dir,
          options: ["rbind", "ro"],
        });
      }
      edit(s);
    }, !caps.isRoot);
    const out: Partial<Record<"runc" | "trun", { code: number; stdout: string; stderr: string }>> =
      {};
    for (const name of ["runc", "trun"] as const) {
      const rt: RuntimeCli = runtimeCli(name, {
        runc: RUNC!,
        root: `${dir}/${name}-root`,
        scratch: `${dir}/scratch`,
      });
      const id = `seccomp-${crypto.randomUUID().slice(0, 8)}`;
      out[name] = await rt.run(["run", "--bundle", `${dir}/bundle`, id]);
      await rt.run(["delete", "--force", id]);
    }
    return out as Record<"runc" | "trun", { code: number; stdout: string; stderr: string }>;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The default profile as trun's `run` resolves it, for the bundle's bounding set. */
function defaultSeccomp(s: Spec): void {
  s.linux.seccomp = resolveSeccompProfile(DEFAULT_SECCOMP_PROFILE, {
    capabilities: s.process.capabilities.bounding,
    arch: "amd64",
  });
}

test("runtime: the default profile in linux.seccomp gives what runc gives", RUNC_GATE, async () => {
  const rows = [...REFUSED, ...ALLOWED];
  const out = await bothRuntimes(
    defaultSeccomp,
    `grep ^Seccomp: /proc/self/status\n${probeScript(rows)}`,
  );
  for (const name of ["runc", "trun"] as const) {
    assert.equal(out[name].code, 0, `${name}: ${out[name].stderr}`);
    assert.match(out[name].stdout, /^Seccomp:\s+2$/m, name);
  }
  const runc = parse(out.runc.stdout, rows), trun = parse(out.trun.stdout, rows);
  for (const [label, , , expected] of rows) {
    assert.equal(trun.get(label), runc.get(label), `${label}: trun vs runc`);
    assert.equal(trun.get(label), expected, label);
  }
});

test("runtime: without linux.seccomp nothing is filtered, as with runc", RUNC_GATE, async () => {
  const out = await bothRuntimes(
    () => {},
    `grep ^Seccomp: /proc/self/status\n${probeScript([ALLOWED[0]!, REFUSED[0]!, REFUSED[16]!])}`,
  );
  for (const name of ["runc", "trun"] as const) {
    assert.equal(out[name].code, 0, `${name}: ${out[name].stderr}`);
    assert.match(out[name].stdout, /^Seccomp:\s+0$/m, name);
    // Unfiltered, the kernel itself answers: add_key(NULL…) is EFAULT or EINVAL, not EPERM.
    assert.doesNotMatch(out[name].stdout, /^add_key errno=1$/m, name);
  }
  assert.equal(out.trun.stdout, out.runc.stdout);
});

test(
  "runtime: a custom profile (errnoRet, argument rules, kill) acts as with runc",
  RUNC_GATE,
  async () => {
    const edit = (s: Spec) => {
      s.linux.seccomp = {
        defaultAction: "SCMP_ACT_ALLOW",
        architectures: ["SCMP_ARCH_X86_64"],
        syscalls: [
          { names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: Errno.EACCES },
          {
            names: ["getppid"],
            action: "SCMP_ACT_ERRNO",
            args: [{ index: 0, value: 7, op: "SCMP_CMP_GT" }],
          },
          {
            names: ["getpid"],
            action: "SCMP_ACT_KILL_PROCESS",
            args: [{ index: 1, value: 0xff00, valueTwo: 0x4200, op: "SCMP_CMP_MASKED_EQ" }],
          },
        ],
      };
    };
    const p = "/probe/syscall_probe";
    const script = [
      "mkdir /tmp/x; echo mkdir=$?",
      `echo "getppid(7) $(${p} ${nr("getppid")} 7)"`,
      `echo "getppid(8) $(${p} ${nr("getppid")} 8)"`,
      `echo "getpid(0,0x4300) $(${p} ${nr("getpid")} 0 0x4300)"`,
      `${p} ${nr("getpid")} 0 0x4211; echo "getpid(0,0x4211) status $?"`,
    ].join("\n");
    const out = await bothRuntimes(edit, script);
    assert.equal(
      out.trun.stdout,
      out.runc.stdout,
      `trun:\n${out.trun.stdout}\nrunc:\n${out.runc.stdout}`,
    );
    assert.match(out.trun.stdout, /^mkdir=1$/m);
    assert.match(out.trun.stderr, /mkdir: can't create directory '\/tmp\/x': Permission denied/);
    assert.match(out.trun.stdout, /^getppid\(7\) ok$/m);
    assert.match(out.trun.stdout, new RegExp(`^getppid\\(8\\) errno=${Errno.EPERM}$`, "m"));
    assert.match(out.trun.stdout, /^getpid\(0,0x4300\) ok$/m);
    assert.match(
      out.trun.stdout,
      new RegExp(`^getpid\\(0,0x4211\\) status ${128 + SIGNALS.SIGSYS}$`, "m"),
    );
  },
);

// ---------------------------------------------------------------------------
// Podman

/**
 * What Podman's own default profile (containers/common) makes of the probe
 * rows, where it differs from trun's (Docker's) default: it allows unshare,
 * setns, mount, keyctl, clone3 (the kernel answers EINVAL to its NULL
 * arguments) and every socket family to every container, and leaves
 * add_key, request_key and io_uring unnamed (ENOSYS).
 */
const PODMAN_DIFFERS: Record<string, string | null> = {
  "add_key": ENOSYS,
  "request_key": ENOSYS,
  "keyctl": null,
  "io_uring_setup": ENOSYS,
  "open_by_handle_at": EPERM,
  "unshare(CLONE_NEWUSER)": null,
  "clone(CLONE_NEWUSER)": null,
  "clone(CLONE_NEWNS|CLONE_NEWPID)": null,
  "setns": null,
  "mount": null,
  "socket(AF_VSOCK)": "ok",
  "clone3": `errno=${Errno.EINVAL}`,
};

test(
  "Podman's default profile acts the same through runc and through trun-runc",
  podmanGate(),
  async () => {
    const pm = await podmanSandbox(tools, { network: "none" });
    try {
      const image = "localhost/trun-seccomp/busybox:latest";
      await pm.importRootfs(await busyboxRootfs(), image);
      // Rows whose call could succeed (and fork or change namespaces) under Podman's
      // profile are left out: their results are kernel answers, not the filter's.
      const rows = [...REFUSED, ...ALLOWED].filter(([l]) => PODMAN_DIFFERS[l] !== null);
      const script = `grep ^Seccomp: /proc/self/status\n${probeScript(rows)}`;
      const outputs: Record<string, string> = {};
      for (const runtime of [RUNC!, pm.runtime]) {
        const r = await pm.podman([
          "--runtime",
          runtime,
          "run",
          "--rm",
          ...probeMount(),
          image,
          "sh",
          "-c",
          script,
        ], { timeoutMs: 60_000 });
        assert.equal(r.code, 0, `${runtime}: ${r.stderr}`);
        assert.match(r.stdout, /^Seccomp:\s+2$/m, runtime);
        outputs[runtime] = r.stdout;
      }
      assert.equal(outputs[pm.runtime], outputs[RUNC!], "trun-runc and runc under Podman");
      const got = parse(outputs[RUNC!]!, rows);
      for (const [label, , , trunDefault] of rows) {
        assert.equal(got.get(label), PODMAN_DIFFERS[label] ?? trunDefault, `Podman: ${label}`);
      }
    } finally {
      await pm.cleanup();
    }
  },
);

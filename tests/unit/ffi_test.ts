// ffi/: struct layouts, the exec tail every child program ends with, and the
// file-system calls made through the one `syscall()` binding.
import assert from "node:assert/strict";
import {
  type ChildOp,
  cloexecPipe,
  closeFd,
  execTail,
  readFd,
  spawnProcess,
  waitChild,
} from "../../ffi/child_program.ts";
import { Errno, SyscallError } from "../../ffi/errno.ts";
import { lchown, lgetxattr, llistxattr, lsetxattr, lutimes, mknod, syncfs } from "../../ffi/fs.ts";
import {
  CAPABILITIES,
  decodeDev,
  describeMountFlags,
  encodeCapData,
  encodeCapHeader,
  encodeDev,
  encodeMountAttr,
  encodeOpenHow,
  encodeRlimit,
  encodeSockaddrUn,
  encodeTimespecs,
  encodeWinsize,
  MOUNT_ATTR,
  MS,
  RLIMITS,
  SIGNALS,
  SYSCALLS_X86_64,
} from "../../ffi/syscalls.ts";

const u64s = (b: Uint8Array) => [...new BigUint64Array(b.slice().buffer)];
const u32s = (b: Uint8Array) => [...new Uint32Array(b.slice().buffer)];

Deno.test("struct encoders lay out the kernel's structs", () => {
  assert.deepEqual(u64s(encodeOpenHow(0o2000000, 0o644, 0x10)), [0o2000000n, 0o644n, 0x10n]);
  assert.deepEqual(
    u64s(encodeMountAttr({ set: MOUNT_ATTR.RDONLY, propagation: MS.PRIVATE, usernsFd: 7 })),
    [1n, 0n, BigInt(MS.PRIVATE), 7n],
  );
  assert.deepEqual([...new Uint16Array(encodeWinsize(24, 80).buffer)], [24, 80, 0, 0]);
  assert.deepEqual(u32s(encodeCapHeader(0)), [0x20080522, 0]);
  // Bit 33 (CAP_MAC_ADMIN) lands in the second data struct's word.
  assert.deepEqual(
    u32s(encodeCapData({ effective: (1n << 33n) | 1n, permitted: 2n, inheritable: 0n })),
    [1, 2, 0, 2, 0, 0],
  );
  assert.deepEqual(u64s(encodeRlimit(1024, 0xffff_ffff_ffff_ffffn)), [1024n, 2n ** 64n - 1n]);
  assert.deepEqual([...new BigInt64Array(encodeTimespecs(1.5, 2).buffer)], [
    1n,
    500_000_000n,
    2n,
    0n,
  ]);
  const sun = encodeSockaddrUn("/run/x.sock")!;
  assert.equal(sun.length, 110);
  assert.deepEqual([sun[0], sun[1], sun[2]], [1, 0, "/".charCodeAt(0)]);
  assert.equal(encodeSockaddrUn("x".repeat(108)), null);
});

Deno.test("encodeDev() uses the kernel's 32-bit device numbering", () => {
  assert.equal(encodeDev(0, 0), 0);
  assert.equal(encodeDev(1, 3), 0x103); // /dev/null
  assert.equal(encodeDev(136, 0x12345), 0x12308845);
  assert.equal(encodeDev(0xfff, 0xfffff), 0xffffffff);
  assert.equal(encodeDev(0x1000, 0), null);
});

Deno.test("decodeDev() reads st_rdev back into major and minor", () => {
  for (const [major, minor] of [[1, 3], [10, 229], [136, 0x12345], [259, 7]] as const) {
    assert.deepEqual(decodeDev(encodeDev(major, minor)!), { major, minor });
  }
});

Deno.test("name tables follow the kernel's numbering", () => {
  assert.equal(SIGNALS.SIGKILL, 9);
  assert.equal(SIGNALS["SIGNOPE"], undefined);
  assert.equal(RLIMITS.RLIMIT_NOFILE, 7);
  assert.equal(RLIMITS.RLIMIT_RTTIME, 15);
  assert.equal(CAPABILITIES.CAP_SYS_ADMIN, 21);
  assert.equal(CAPABILITIES.CAP_CHECKPOINT_RESTORE, 40);
  assert.equal(Object.keys(CAPABILITIES).length, 41);
  assert.equal(SYSCALLS_X86_64.pidfd_open, 434);
  assert.equal(SYSCALLS_X86_64.faccessat2, 439);
  assert.equal(describeMountFlags(MS.BIND | MS.REC), "MS_BIND|MS_REC");
  assert.equal(describeMountFlags(0), "0");
});

Deno.test("execTail() resets signals, restores the mask, then tries each path", () => {
  const ops = execTail({ paths: ["/a/sh", "/b/sh"], argv: ["sh"], env: ["A=1"], closeFds: true });
  const calls = ops.map((o) => o.call);
  const resets = ops.filter((o) => o.call === "rt_sigaction").map((o) => o.args[0]);
  // Exactly the signals Deno ignores or catches (SIGPIPE among them): the
  // kernel resets every other disposition at execve.
  const status = Deno.readTextFileSync("/proc/self/status");
  const field = (n: string) => BigInt("0x" + status.match(new RegExp(`^${n}:\\s*(\\w+)`, "m"))![1]);
  const mask = field("SigIgn") | field("SigCgt");
  const expected = Array.from({ length: 64 }, (_, i) => i + 1).filter((sig) =>
    sig !== SIGNALS.SIGKILL && sig !== SIGNALS.SIGSTOP && ((mask >> BigInt(sig - 1)) & 1n) === 1n
  );
  assert.deepEqual(resets, expected);
  assert.ok(resets.includes(SIGNALS.SIGPIPE));
  assert.deepEqual(calls.slice(-4), ["close_range", "rt_sigprocmask", "execve", "execve"]);
  const [first, last] = ops.slice(-2) as [ChildOp, ChildOp];
  assert.equal(first.okErrno, Errno.ENOENT);
  assert.equal(last.okErrno, undefined);
  assert.deepEqual(first.args[0], { str: "/a/sh" });
  assert.equal(last.step, `executing "sh"`);
  assert.ok(!execTail({ paths: ["/x"], argv: [], env: [] }).some((o) => o.call === "close_range"));
});

Deno.test({
  name: "spawnProcess() starts a program with no ignored signals",
  ignore: Deno.build.os !== "linux" || Deno.build.arch !== "x86_64",
  fn: async () => {
    const [r, w] = cloexecPipe();
    let pid: number;
    try {
      // Deno ignores SIGPIPE; the exec tail must not pass that on.
      pid = spawnProcess(
        "/bin/sh",
        ["sh", "-c", "grep SigIgn /proc/self/status >&2; exit 3"],
        [],
        w,
      );
    } finally {
      closeFd(w);
    }
    const [out, status] = await Promise.all([readFd(r, 4096), waitChild(pid)]);
    closeFd(r);
    assert.deepEqual(status, { exited: true, code: 3 });
    assert.match(new TextDecoder().decode(out), /^SigIgn:\s+0+\n$/);
  },
});

Deno.test("fs calls work through syscall() and name the path when they fail", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = `${dir}/f`;
    await Deno.writeTextFile(f, "x");
    await Deno.symlink("f", `${dir}/link`);
    lutimes(`${dir}/link`, 1000.25, 2000);
    const st = await Deno.lstat(`${dir}/link`);
    assert.equal(st.mtime?.getTime(), 2_000_000);
    assert.equal((await Deno.stat(f)).mtime?.getTime() === 2_000_000, false);
    lchown(`${dir}/link`, Deno.uid()!, Deno.gid()!);
    mknod(`${dir}/fifo`, 0o10644); // S_IFIFO
    assert.equal((await Deno.lstat(`${dir}/fifo`)).isFifo, true);
    syncfs(dir);
    assert.equal(lgetxattr(f, "user.trun.missing"), null);
    let xattrs = true;
    try {
      lsetxattr(f, "user.trun.test", new TextEncoder().encode("v".repeat(1000)));
    } catch (e) {
      // Some file systems have no user xattrs; the rest still ran.
      if (!(e instanceof SyscallError && e.errno === Errno.EOPNOTSUPP)) throw e;
      xattrs = false;
    }
    if (xattrs) {
      // 1000 bytes: past lgetxattr's first buffer, so the ERANGE retry runs.
      assert.equal(lgetxattr(f, "user.trun.test")?.length, 1000);
      assert.ok(llistxattr(f).includes("user.trun.test"));
    }
    assert.throws(
      () => lchown(`${dir}/missing`, 0, 0),
      (e) => e instanceof SyscallError && e.errno === Errno.ENOENT && /missing/.test(e.message),
    );
    assert.throws(() => mknod(`${dir}/dev`, 0o20644, 0x1000, 0), SyscallError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

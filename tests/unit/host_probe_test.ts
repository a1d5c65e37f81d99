/**
 * Unit tests of lib/host/: the pure parsers (mountinfo, file
 * capabilities, access by mode) and probeHost() against fake /proc, /sys,
 * /etc, /dev and /usr/bin trees built in temp dirs, one broken piece at a
 * time, checking that each yields exactly its one problem line.
 */
import assert from "node:assert/strict";
import {
  canReadWrite,
  filesystemOf,
  type HostReport,
  parseFileCaps,
  parseMountInfo,
  probeHost,
  type ProbeOptions,
} from "../../lib/host/mod.ts";

Deno.test("parseMountInfo() reads mount point, root, type and super options", () => {
  const text = [
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory",
    "40 30 0:37 /user.slice /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
    "50 22 8:1 / /mnt/with\\040space rw - ext4 /dev/sda1 rw",
    "garbage line",
  ].join("\n");
  assert.deepEqual(parseMountInfo(text), [
    { root: "/", mountPoint: "/sys/fs/cgroup", fsType: "tmpfs", superOptions: ["rw", "mode=755"] },
    {
      root: "/",
      mountPoint: "/sys/fs/cgroup/memory",
      fsType: "cgroup",
      superOptions: ["rw", "memory"],
    },
    {
      root: "/user.slice",
      mountPoint: "/sys/fs/cgroup/unified",
      fsType: "cgroup2",
      superOptions: ["rw"],
    },
    { root: "/", mountPoint: "/mnt/with space", fsType: "ext4", superOptions: ["rw"] },
  ]);
});

const MOUNTS = parseMountInfo([
  "1 0 8:1 / / rw - ext4 /dev/vda rw",
  "2 1 0:1 / /home rw - xfs /dev/vdb rw",
  "3 1 0:2 / /home/al rw - nfs4 srv:/al rw",
  "4 1 0:3 / /tmp rw - ext4 /dev/vda rw",
  "5 4 0:4 / /tmp rw - tmpfs tmpfs rw",
].join("\n"));
const FS_CASES: [string, string, string][] = [
  ["the root file system", "/var/lib/trun", "ext4"],
  ["the longest matching mount point", "/home/bob/.local", "xfs"],
  ["a nested mount", "/home/al/.local/share/trun", "nfs4"],
  ["no prefix match across names", "/home/alice", "xfs"],
  ["the mount on top of a stack", "/tmp/x", "tmpfs"],
];
for (const [what, path, fs] of FS_CASES) {
  Deno.test(`filesystemOf() picks ${what}`, () => {
    assert.equal(filesystemOf(path, MOUNTS), fs);
  });
}

/** struct vfs_cap_data bytes: magic_etc, then (permitted, inheritable) per word. */
function capBytes(magic: number, words: number[]): Uint8Array {
  const out = new Uint8Array(4 + words.length * 8);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, true);
  words.forEach((w, i) => view.setUint32(4 + i * 8, w, true));
  return out;
}
const CAPS_CASES: [string, Uint8Array, ReturnType<typeof parseFileCaps>][] = [
  [
    "revision 2 cap_setuid+ep",
    capBytes(0x02000001, [1 << 7, 0]),
    { permitted: ["cap_setuid"], effective: true },
  ],
  [
    "revision 3 cap_setgid+p (not effective)",
    capBytes(0x03000000, [1 << 6, 0]),
    { permitted: ["cap_setgid"], effective: false },
  ],
  [
    "revision 1 with two capabilities",
    capBytes(0x01000001, [(1 << 6) | (1 << 7)]),
    { permitted: ["cap_setgid", "cap_setuid"], effective: true },
  ],
  [
    "a capability in the second word",
    capBytes(0x02000001, [0, 1 << 7]),
    { permitted: ["cap_bpf"], effective: true },
  ],
  ["an unknown revision", capBytes(0x07000001, [1, 0]), null],
  ["a value too short", new Uint8Array(6), null],
];
for (const [what, bytes, want] of CAPS_CASES) {
  Deno.test(`parseFileCaps() decodes ${what}`, () => {
    assert.deepEqual(parseFileCaps(bytes), want);
  });
}

const ACCESS_CASES: [string, number, number, number, boolean][] = [
  ["others rw (0666)", 0o20666, 0, 0, true],
  ["0600 owned by someone else", 0o20600, 0, 0, false],
  ["0600 owned by the user", 0o20600, 1000, 0, true],
  ["0660 in one of the user's groups", 0o20660, 0, 44, true],
  ["0066: the owner bits rule the owner, even when others may", 0o20066, 1000, 0, false],
  ["read-only for others (0644)", 0o20644, 0, 0, false],
];
for (const [what, mode, uid, gid, want] of ACCESS_CASES) {
  Deno.test(`canReadWrite() by mode: ${what}`, () => {
    assert.equal(canReadWrite({ mode, uid, gid }, { uid: 1000, groups: [1000, 44] }), want);
  });
}
Deno.test("canReadWrite() lets root open anything", () => {
  assert.equal(canReadWrite({ mode: 0o20000, uid: 5, gid: 5 }, { uid: 0, groups: [] }), true);
});

// ---- probeHost() against fake trees ----

const UID = 4242;
/** File capabilities the fake helpers carry unless a case changes them (any test user can run this). */
const HELPER_CAPS: Record<string, Uint8Array> = {
  newuidmap: capBytes(0x02000001, [1 << 7, 0]),
  newgidmap: capBytes(0x02000001, [1 << 6, 0]),
};

interface Fake {
  root: string;
  /** Writes a file under root (mkdir -p), then chmods it (the umask may clear bits). */
  put(path: string, text: string, mode?: number): void;
  /** Removes a file or tree under root. */
  drop(path: string): void;
  /** Options for probeHost() on this tree. */
  opts: ProbeOptions;
}

const PURE_V2_MOUNTINFO = (realRoot: string) =>
  [
    "1 0 8:1 / / rw - ext4 /dev/vda rw",
    "2 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate",
    `3 1 0:27 / ${realRoot}/run rw - tmpfs tmpfs rw`,
  ].join("\n");

const HYBRID_MOUNTINFO = [
  "1 0 8:1 / / rw - ext4 /dev/vda rw",
  "30 1 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755",
  "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
  "34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
  "38 30 0:35 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids",
  "39 30 0:36 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd",
  "40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
].join("\n");

/**
 * A healthy rootless host for user "alice" (uid 4242): kernel 6.8, userns
 * allowed, helpers with file caps, ranges, overlay registered, pure cgroup
 * v2 with a delegated user@4242.service, pasta and slirp4netns, 0666 devices.
 */
function buildFake(root: string, realRoot: string): Fake {
  const put = (path: string, text: string, mode = 0o644) => {
    const full = `${root}${path}`;
    Deno.mkdirSync(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    Deno.writeTextFileSync(full, text);
    Deno.chmodSync(full, mode);
  };
  const drop = (path: string) => Deno.removeSync(`${root}${path}`, { recursive: true });
  put("/proc/sys/kernel/osrelease", "6.8.0-4-amd64\n");
  put("/proc/sys/user/max_user_namespaces", "63000\n");
  put("/proc/filesystems", "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n");
  put("/proc/self/mountinfo", PURE_V2_MOUNTINFO(realRoot));
  put("/proc/self/cgroup", "0::/user.slice/user-4242.slice/session-3.scope\n");
  put("/proc/self/status", "Name:\tdeno\nGroups:\t4242 44\n");
  put("/etc/passwd", "root:x:0:0::/root:/bin/sh\nalice:x:4242:4242::/home/alice:/bin/sh\n");
  put("/etc/subuid", "alice:100000:65536\n");
  put("/etc/subgid", "alice:100000:65536\n");
  put("/etc/os-release", 'NAME="Fake"\nPRETTY_NAME="Fake Linux 1"\n');
  for (const bin of ["newuidmap", "newgidmap", "fuse-overlayfs", "pasta", "slirp4netns"]) {
    put(`/usr/bin/${bin}`, "#!/bin/sh\n", 0o755);
  }
  Deno.mkdirSync(`${root}/store`);
  Deno.mkdirSync(`${root}/run`);
  put("/dev/fuse", "", 0o666);
  put("/dev/net/tun", "", 0o666);
  const cg = "/sys/fs/cgroup";
  put(`${cg}/cgroup.controllers`, "cpuset cpu io memory hugetlb pids rdma misc\n");
  const session = `${cg}/user.slice/user-4242.slice/session-3.scope`;
  put(`${session}/cgroup.controllers`, "cpu memory pids\n");
  put(`${session}/cgroup.subtree_control`, "");
  put(`${session}/cgroup.procs`, "", 0o644);
  Deno.chmodSync(`${root}${session}`, 0o755);
  const service = `${cg}/user.slice/user-4242.slice/user@4242.service`;
  put(`${service}/cgroup.controllers`, "cpu memory pids\n");
  put(`${service}/cgroup.procs`, "", 0o666);
  Deno.chmodSync(`${root}${service}`, 0o777);
  return {
    root,
    put,
    drop,
    opts: {
      root,
      uid: UID,
      gid: UID,
      pathEnv: "/usr/bin",
      paths: { uid: UID, env: { TRUN_ROOT: `${realRoot}/store`, TRUN_RUNROOT: `${realRoot}/run` } },
      readFileCaps: (path) => HELPER_CAPS[path.slice(path.lastIndexOf("/") + 1)] ?? null,
    },
  };
}

async function probeFake(change: (f: Fake) => void): Promise<HostReport> {
  const root = await Deno.makeTempDir({ prefix: "trun-probe-test-" });
  try {
    const fake = buildFake(root, Deno.realPathSync(root));
    change(fake);
    return await probeHost(fake.opts);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("probeHost() finds no problem on a healthy pure cgroup v2 host", async () => {
  const r = await probeFake(() => {});
  assert.deepEqual(r.problems, []);
  assert.equal(r.host.kernel, "6.8.0-4-amd64");
  assert.equal(r.host.distribution, "Fake Linux 1");
  assert.deepEqual(r.host.user, { name: "alice", uid: UID, gid: UID });
  assert.equal(r.userNamespaces.allowed, true);
  assert.equal(r.userNamespaces.tested, "not tested");
  assert.equal(r.userNamespaces.idMapping, "subordinate");
  assert.deepEqual(r.userNamespaces.subuidRanges, [{ start: 100000, count: 65536 }]);
  assert.deepEqual(r.userNamespaces.newuidmap, {
    path: "/usr/bin/newuidmap",
    mode: "0755",
    setuidRoot: false,
    fileCaps: ["cap_setuid"],
    usable: true,
  });
  assert.deepEqual(r.storage.kernelOverlay, {
    filesystem: "registered",
    kernelSupportsUserns: true,
    status: "expected",
    tested: false,
  });
  assert.equal(r.storage.storeFilesystem, "ext4");
  assert.equal(r.storage.runtimeFilesystem, "tmpfs");
  assert.deepEqual(r.storage.devFuse, {
    path: "/dev/fuse",
    exists: true,
    mode: "0666",
    accessible: true,
  });
  assert.deepEqual(r.cgroups, {
    version: "v2",
    v2Mount: "/sys/fs/cgroup",
    v2MountRoot: "/",
    v1Controllers: [],
    ownCgroup: "/user.slice/user-4242.slice/session-3.scope",
    controllers: ["cpu", "memory", "pids"],
    subtreeControl: [],
    writable: false,
    userServiceCgroup: "/user.slice/user-4242.slice/user@4242.service",
    delegated: null,
    containerParent: null,
    delegatedControllers: [],
  });
  assert.equal(r.network.pasta, "/usr/bin/pasta");
});

/** One broken piece each, and the one problem line it must produce (or none). */
const BROKEN: [string, (f: Fake) => void, RegExp[], (r: HostReport) => void][] = [
  [
    "user namespaces disabled by user.max_user_namespaces",
    (f) => f.put("/proc/sys/user/max_user_namespaces", "0\n"),
    [/^user namespaces are disabled \(user\.max_user_namespaces = 0\): .*sysctl -w user\.max_user_namespaces=/],
    (r) => assert.equal(r.userNamespaces.allowed, false),
  ],
  [
    "user namespaces disabled by Debian's kernel.unprivileged_userns_clone",
    (f) => f.put("/proc/sys/kernel/unprivileged_userns_clone", "0\n"),
    [/^unprivileged user namespaces are disabled \(kernel\.unprivileged_userns_clone = 0\): .*sysctl -w kernel\.unprivileged_userns_clone=1/],
    (r) => {
      assert.equal(r.userNamespaces.allowed, false);
      assert.equal(r.userNamespaces.unprivilegedUsernsClone, 0);
    },
  ],
  [
    "user namespaces restricted by Ubuntu's AppArmor sysctl",
    (f) => f.put("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1\n"),
    [/^AppArmor restricts unprivileged user namespaces .*`userns,` rule/],
    (r) => assert.equal(r.userNamespaces.apparmorRestrictUnprivilegedUserns, 1),
  ],
  [
    "a kernel without user namespaces",
    (f) => f.drop("/proc/sys/user/max_user_namespaces"),
    [/^user namespaces are not available .*CONFIG_USER_NS/],
    (r) => assert.equal(r.userNamespaces.maxUserNamespaces, null),
  ],
  [
    "sysctls that allow user namespaces",
    (f) => {
      f.put("/proc/sys/kernel/unprivileged_userns_clone", "1\n");
      f.put("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "0\n");
    },
    [],
    (r) => assert.equal(r.userNamespaces.allowed, true),
  ],
  [
    "a newuidmap without setuid bit or file caps",
    (f) => {
      f.opts.readFileCaps = (p) => (p.endsWith("newgidmap") ? HELPER_CAPS["newgidmap"]! : null);
    },
    [/^\/usr\/bin\/newuidmap has neither the setuid bit \(mode 0755\) nor the cap_setuid file capability: .*chmod u\+s \/usr\/bin\/newuidmap/],
    (r) => {
      assert.equal(r.userNamespaces.newuidmap.usable, false);
      assert.deepEqual(r.userNamespaces.newuidmap.fileCaps, []);
    },
  ],
  [
    "helpers with capabilities that are permitted but not effective",
    (f) => {
      f.opts.readFileCaps = () => capBytes(0x02000000, [(1 << 6) | (1 << 7), 0]);
    },
    [/^\/usr\/bin\/newuidmap has neither/, /^\/usr\/bin\/newgidmap has neither/],
    () => {},
  ],
  [
    "file capabilities that cannot be read, on a helper without setuid",
    (f) => {
      f.opts.readFileCaps = () => {
        throw new Error("no FFI");
      };
    },
    [/^\/usr\/bin\/newuidmap has neither/, /^\/usr\/bin\/newgidmap has neither/],
    (r) => assert.equal(r.userNamespaces.newuidmap.fileCaps, null),
  ],
  [
    "missing uidmap helpers",
    (f) => {
      f.drop("/usr/bin/newuidmap");
      f.drop("/usr/bin/newgidmap");
    },
    [/^newuidmap and newgidmap not found: containers get a single-id mapping .*apt-get install uidmap/],
    (r) => assert.equal(r.userNamespaces.idMapping, "single"),
  ],
  [
    "no subuid range for the user, with a free range suggested",
    (f) => f.put("/etc/subuid", "bob:100000:65536\n"),
    [/^no subordinate uid range for "alice" in \/etc\/subuid: .*usermod --add-subuids 165536-231071 alice/],
    (r) => assert.deepEqual(r.userNamespaces.subuidRanges, []),
  ],
  [
    "no /etc/subgid",
    (f) => f.drop("/etc/subgid"),
    [/^no subordinate gid range for "alice" in \/etc\/subgid: .*--add-subgids/],
    () => {},
  ],
  [
    "/dev/fuse with mode 0600, which trun does not use: no problem",
    (f) => f.put("/dev/fuse", "", 0o600),
    [],
    (r) => assert.deepEqual(r.storage.devFuse.accessible, false),
  ],
  [
    "/dev/fuse 0660 in one of the user's groups",
    (f) => {
      f.put("/dev/fuse", "", 0o660);
      f.opts.groups = [UID, Deno.statSync(`${f.root}/dev/fuse`).gid ?? 0];
    },
    [],
    (r) => assert.equal(r.storage.devFuse.accessible, true),
  ],
  [
    "/dev/net/tun with mode 0600",
    (f) => f.put("/dev/net/tun", "", 0o600),
    [/^\/dev\/net\/tun is mode 0600 and not open to alice: pasta and slirp4netns .*chmod 0666/],
    () => {},
  ],
  [
    "no pasta and no slirp4netns",
    (f) => {
      f.drop("/usr/bin/pasta");
      f.drop("/usr/bin/slirp4netns");
    },
    [/^neither pasta nor slirp4netns found: containers get only loopback .*install passt/],
    () => {},
  ],
  [
    "a kernel older than 5.11, with fuse-overlayfs (which trun does not use)",
    (f) => f.put("/proc/sys/kernel/osrelease", "5.10.0-28-amd64\n"),
    [
      /^kernel 5\.10\.0-28-amd64 cannot mount overlay in a user namespace \(needs 5\.11\): containers cannot start .*use Linux 5\.11 or later$/,
    ],
    (r) => assert.equal(r.storage.kernelOverlay.status, "unavailable"),
  ],
  [
    "a kernel older than 5.11 and no fuse-overlayfs",
    (f) => {
      f.put("/proc/sys/kernel/osrelease", "5.4.0\n");
      f.drop("/usr/bin/fuse-overlayfs");
    },
    [/^kernel 5\.4\.0 cannot mount overlay/],
    () => {},
  ],
  [
    "no fuse-overlayfs on a kernel with overlay in user namespaces",
    (f) => f.drop("/usr/bin/fuse-overlayfs"),
    [],
    (r) => assert.equal(r.storage.fuseOverlayfs, null),
  ],
  [
    "overlay as an unloaded module",
    (f) => {
      f.put("/proc/filesystems", "nodev\tsysfs\n\text4\n");
      f.put("/lib/modules/6.8.0-4-amd64/kernel/fs/overlayfs/overlay.ko.xz", "");
    },
    [],
    (r) => assert.equal(r.storage.kernelOverlay.filesystem, "module"),
  ],
  [
    "no overlay at all",
    (f) => f.put("/proc/filesystems", "nodev\tsysfs\n\text4\n"),
    [/^the overlay file system is not in this kernel .*containers cannot start .*modprobe overlay$/],
    (r) => assert.equal(r.storage.kernelOverlay.filesystem, "missing"),
  ],
  [
    "hybrid cgroups (v2 at /sys/fs/cgroup/unified, controllers on v1)",
    (f) => {
      f.put("/proc/self/mountinfo", HYBRID_MOUNTINFO);
      f.put("/proc/self/cgroup", "4:memory:/user.slice\n0::/\n");
      f.put("/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
      f.put("/sys/fs/cgroup/unified/cgroup.subtree_control", "\n");
      f.put("/sys/fs/cgroup/unified/cgroup.procs", "", 0o644);
    },
    [
      /^cgroup v2 controllers cpu, memory, pids not available \(hybrid layout: \/sys\/fs\/cgroup\/unified has hugetlb; they are on cgroup v1\): .*systemd\.unified_cgroup_hierarchy=1/,
      /^cgroup \/ in \/sys\/fs\/cgroup\/unified is not writable by alice and no user@4242\.service cgroup is delegated: .*loginctl enable-linger alice/,
    ],
    (r) => {
      assert.equal(r.cgroups.version, "hybrid");
      assert.equal(r.cgroups.v2Mount, "/sys/fs/cgroup/unified");
      assert.deepEqual(r.cgroups.v1Controllers, ["cpu", "cpuacct", "memory", "pids"]);
      assert.deepEqual(r.cgroups.controllers, ["hugetlb"]);
      assert.equal(r.cgroups.ownCgroup, "/");
    },
  ],
  [
    "pure cgroup v2 without delegation",
    (f) => f.drop("/sys/fs/cgroup/user.slice/user-4242.slice/user@4242.service"),
    [/^cgroup \/user\.slice\/user-4242\.slice\/session-3\.scope in \/sys\/fs\/cgroup is not writable/],
    (r) => assert.equal(r.cgroups.userServiceCgroup, null),
  ],
  [
    "a cgroup namespace (mount root is a prefix of the path)",
    (f) => {
      f.put(
        "/proc/self/mountinfo",
        "1 0 8:1 / / rw - ext4 /dev/vda rw\n2 1 0:26 /user.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw",
      );
      f.put("/proc/self/cgroup", "0::/user.slice/box\n");
      f.put("/sys/fs/cgroup/box/cgroup.controllers", "cpu memory pids\n");
      f.put("/sys/fs/cgroup/box/cgroup.procs", "", 0o666);
      Deno.chmodSync(`${f.root}/sys/fs/cgroup/box`, 0o777);
    },
    [],
    (r) => {
      assert.equal(r.cgroups.writable, true);
      assert.deepEqual(r.cgroups.controllers, ["cpu", "memory", "pids"]);
    },
  ],
  [
    "cgroup v1 only",
    (f) => f.put("/proc/self/mountinfo", HYBRID_MOUNTINFO.split("\n").slice(0, -1).join("\n")),
    [/^only cgroup v1 is mounted: .*systemd\.unified_cgroup_hierarchy=1/],
    (r) => assert.equal(r.cgroups.version, "v1"),
  ],
  [
    "a store on NFS",
    (f) => {
      const real = Deno.realPathSync(f.root);
      f.put(
        "/proc/self/mountinfo",
        `${PURE_V2_MOUNTINFO(real)}\n9 1 0:40 / ${real}/store rw - nfs4 srv:/x rw`,
      );
    },
    [/^the store .*\/store is on nfs4: .*set TRUN_ROOT to a local directory/],
    (r) => assert.equal(r.storage.storeFilesystem, "nfs4"),
  ],
  [
    "root, which needs no user namespace, subuids or delegation",
    (f) => {
      f.opts.uid = 0;
      f.opts.gid = 0;
      f.put("/proc/sys/user/max_user_namespaces", "0\n");
      f.drop("/etc/subuid");
      f.drop("/usr/bin/newuidmap");
      f.put("/dev/fuse", "", 0o600);
      f.drop("/sys/fs/cgroup/user.slice/user-4242.slice/user@4242.service");
    },
    [],
    (r) => {
      assert.equal(r.userNamespaces.idMapping, "host");
      assert.equal(r.host.user.name, "root");
      assert.equal(r.storage.devFuse.accessible, true);
    },
  ],
];

for (const [what, change, want, extra] of BROKEN) {
  Deno.test(`probeHost() reports ${what}`, async () => {
    const r = await probeFake(change);
    assert.equal(
      r.problems.length,
      want.length,
      `expected ${want.length} problem(s), got:\n${r.problems.join("\n")}`,
    );
    want.forEach((re, i) => assert.match(r.problems[i]!, re));
    for (const p of r.problems) assert.ok(!p.includes("\n"), `one line each: ${p}`);
    // trun mounts roots only with kernel overlay: no line may promise another way.
    for (const p of r.problems) assert.doesNotMatch(p, /fuse-overlayfs|copied|full copy/);
    extra(r);
  });
}

Deno.test("probeHost() sees the setuid bit, and root ownership, of a helper", async () => {
  const r = await probeFake((f) => {
    Deno.chmodSync(`${f.root}/usr/bin/newuidmap`, 0o4755);
    f.opts.readFileCaps = () => null;
  });
  assert.equal(r.userNamespaces.newuidmap.mode, "4755");
  // The fake file belongs to whoever runs the test: setuid counts only when that is root.
  assert.equal(r.userNamespaces.newuidmap.setuidRoot, Deno.uid() === 0);
});

const ACTIVE_CASES: [string, string, HostReport["userNamespaces"]["tested"], string, RegExp[]][] = [
  ["a working user namespace and overlay", "exit 0", "works", "works", []],
  [
    "an overlay mount that fails",
    'case "$1" in -Urm) echo "mount: permission denied" >&2; exit 32;; esac',
    "works",
    "fails",
    [/^mounting overlay in a user namespace failed \(mount: permission denied\): containers cannot start /],
  ],
  [
    "a user namespace that cannot be created",
    'echo "unshare: unshare failed: Operation not permitted" >&2; exit 1',
    "fails",
    "expected",
    [/^creating a user namespace failed \(unshare: unshare failed: Operation not permitted\): /],
  ],
];
for (const [what, script, userns, overlay, problems] of ACTIVE_CASES) {
  Deno.test(`probeHost() with active checks reports ${what}`, async () => {
    const r = await probeFake((f) => {
      f.put("/usr/bin/unshare", `#!/bin/sh\n${script}\n`, 0o755);
      f.opts.active = true;
    });
    assert.equal(r.userNamespaces.tested, userns);
    assert.equal(r.storage.kernelOverlay.status, overlay);
    assert.equal(r.problems.length, problems.length, r.problems.join("\n"));
    problems.forEach((re, i) => assert.match(r.problems[i]!, re));
  });
}

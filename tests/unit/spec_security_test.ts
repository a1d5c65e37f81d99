// Table tests of the security flags' parsers and decisions: capabilities
// (--cap-add, --cap-drop, --privileged, --user), --security-opt, masked
// paths, --ulimit, --sysctl and --device.
import assert from "node:assert/strict";
import {
  ALL_CAPABILITIES,
  capabilitiesInMask,
  capabilityList,
  capabilityName,
  capabilitySets,
} from "../../lib/spec/capabilities.ts";
import { DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS } from "../../lib/spec/defaults.ts";
import { type DeviceRequest, deviceSpec, parseDeviceFlag } from "../../lib/spec/devices.ts";
import { maskedAndReadonlyPaths, parseSecurityOpts } from "../../lib/spec/security_opt.ts";
import { parseSysctls } from "../../lib/spec/sysctl.ts";
import { parseUlimit, parseUlimits, UNLIMITED } from "../../lib/spec/ulimit.ts";
import { rootlessDeviceProblem, splitDev } from "../../lib/host/devices.ts";

// ---------------------------------------------------------------------------
// Capabilities

const NAMES: [string, string][] = [
  ["net_admin", "CAP_NET_ADMIN"],
  ["NET_ADMIN", "CAP_NET_ADMIN"],
  ["cap_net_admin", "CAP_NET_ADMIN"],
  ["CAP_SYS_ADMIN", "CAP_SYS_ADMIN"],
  [" Sys_Time ", "CAP_SYS_TIME"],
  ["all", "ALL"],
  ["ALL", "ALL"],
];
for (const [raw, want] of NAMES) {
  Deno.test(`capabilityName() reads "${raw}" as ${want}`, () => {
    assert.equal(capabilityName(raw), want);
  });
}

Deno.test("capabilityName() refuses a name the kernel lacks", () => {
  assert.throws(() => capabilityName("bogus"), /unknown capability: "CAP_BOGUS"/);
  assert.throws(() => capabilityName("CAP_"), /unknown capability/);
});

Deno.test("ALL_CAPABILITIES lists the 41 capabilities up to CAP_CHECKPOINT_RESTORE", () => {
  assert.equal(ALL_CAPABILITIES.length, 41);
  assert.equal(ALL_CAPABILITIES[0], "CAP_CHOWN");
  assert.equal(ALL_CAPABILITIES.at(-1), "CAP_CHECKPOINT_RESTORE");
});

Deno.test("capabilitiesInMask() reads /proc/PID/status masks", () => {
  assert.deepEqual(
    capabilitiesInMask("00000000a80425fb"),
    DEFAULT_CAPABILITIES.toSorted((a, b) =>
      ALL_CAPABILITIES.indexOf(a) - ALL_CAPABILITIES.indexOf(b)
    ),
  );
  assert.deepEqual(capabilitiesInMask("0000000000000000"), []);
  const most = capabilitiesInMask("000001fffeffffff");
  assert.equal(most.length, 40);
  assert.equal(most.includes("CAP_SYS_RESOURCE"), false);
});

const sorted = (xs: readonly string[]) => [...xs].sort();

const LISTS: [string, Parameters<typeof capabilityList>[0], string[]][] = [
  ["the defaults", {}, [...DEFAULT_CAPABILITIES]],
  ["--cap-add NET_ADMIN", { add: ["net_admin"] }, [...DEFAULT_CAPABILITIES, "CAP_NET_ADMIN"]],
  ["--cap-add of a default (no duplicate)", { add: ["CHOWN"] }, [...DEFAULT_CAPABILITIES]],
  [
    "--cap-drop CHOWN,NET_RAW",
    { drop: ["chown", "CAP_NET_RAW"] },
    DEFAULT_CAPABILITIES.filter((c) => c !== "CAP_CHOWN" && c !== "CAP_NET_RAW"),
  ],
  ["--cap-drop ALL", { drop: ["ALL"] }, []],
  ["--cap-drop ALL --cap-add KILL", { drop: ["all"], add: ["kill"] }, ["CAP_KILL"]],
  ["--cap-add ALL", { add: ["ALL"] }, [...ALL_CAPABILITIES]],
  [
    "--cap-add ALL --cap-drop SYS_ADMIN",
    { add: ["ALL"], drop: ["SYS_ADMIN"] },
    ALL_CAPABILITIES.filter((c) => c !== "CAP_SYS_ADMIN"),
  ],
  ["--privileged", { privileged: true }, [...ALL_CAPABILITIES]],
  ["--privileged ignores --cap-drop (Docker)", { privileged: true, drop: ["ALL"] }, [
    ...ALL_CAPABILITIES,
  ]],
  [
    "--privileged within trun's bounding set",
    { privileged: true, available: ["CAP_CHOWN", "CAP_SYS_ADMIN"] },
    ["CAP_CHOWN", "CAP_SYS_ADMIN"],
  ],
  [
    "the defaults within trun's bounding set",
    { available: ALL_CAPABILITIES.filter((c) => c !== "CAP_NET_RAW") },
    DEFAULT_CAPABILITIES.filter((c) => c !== "CAP_NET_RAW"),
  ],
];
for (const [what, req, want] of LISTS) {
  Deno.test(`capabilityList() gives ${what}`, () => {
    assert.deepEqual(sorted(capabilityList(req)), sorted(want));
  });
}

Deno.test("capabilityList() refuses unknown names and capabilities trun lacks", () => {
  assert.throws(() => capabilityList({ add: ["nope"] }), /invalid --cap-add: unknown capability/);
  assert.throws(() => capabilityList({ drop: ["nope"] }), /invalid --cap-drop: unknown capability/);
  assert.throws(
    () => capabilityList({ add: ["SYS_RESOURCE"], available: ["CAP_CHOWN"] }),
    /CAP_SYS_RESOURCE not in trun's own bounding set/,
  );
});

Deno.test("capabilitySets() gives root the list but inheritable and ambient (CVE-2022-24769)", () => {
  const list = capabilityList({});
  assert.deepEqual(capabilitySets(list, 0, {}), {
    bounding: list,
    effective: list,
    permitted: list,
    inheritable: [],
    ambient: [],
  });
});

Deno.test("capabilitySets() gives another user only what --cap-add asked, ambient too", () => {
  assert.deepEqual(capabilitySets(capabilityList({}), 1000, {}), {
    bounding: [...DEFAULT_CAPABILITIES],
    effective: [],
    permitted: [],
    inheritable: [],
    ambient: [],
  });
  const req = { add: ["net_admin", "chown"] };
  const sets = capabilitySets(capabilityList(req), 1000, req);
  assert.deepEqual(sorted(sets.effective), ["CAP_CHOWN", "CAP_NET_ADMIN"]);
  assert.deepEqual(sets.ambient, sets.effective);
  assert.deepEqual(sets.inheritable, sets.effective);
  assert.deepEqual(sets.permitted, sets.effective);
  // --cap-add ALL less a drop: everything the list holds, not the dropped one.
  const all = { add: ["ALL"], drop: ["net_admin"] };
  const allSets = capabilitySets(capabilityList(all), 1000, all);
  assert.equal(allSets.effective.length, ALL_CAPABILITIES.length - 1);
  assert.equal(allSets.effective.includes("CAP_NET_ADMIN"), false);
  // As Docker: an add wins over a drop of the same name.
  const both = { add: ["net_admin"], drop: ["net_admin"] };
  assert.deepEqual(capabilitySets(capabilityList(both), 1000, both).effective, ["CAP_NET_ADMIN"]);
});

// ---------------------------------------------------------------------------
// Masked and read-only paths, --security-opt

Deno.test("MASKED_PATHS holds Podman's list and Docker's", () => {
  for (
    const p of [
      "/proc/acpi",
      "/proc/kcore",
      "/proc/keys",
      "/proc/latency_stats",
      "/proc/timer_list",
      "/proc/timer_stats",
      "/proc/sched_debug",
      "/proc/scsi",
      "/sys/firmware",
      "/sys/fs/selinux",
      "/sys/dev/block",
      "/proc/interrupts",
      "/proc/asound",
      "/sys/devices/virtual/powercap",
    ]
  ) assert.ok(MASKED_PATHS.includes(p), p);
  for (const p of ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]) {
    assert.ok(READONLY_PATHS.includes(p), p);
  }
});

const OPTS: [string, string[], ReturnType<typeof parseSecurityOpts>][] = [
  ["nothing", [], { mask: [], unmask: [] }],
  ["no-new-privileges", ["no-new-privileges"], { noNewPrivileges: true, mask: [], unmask: [] }],
  ["no-new-privileges=false", ["no-new-privileges=false"], {
    noNewPrivileges: false,
    mask: [],
    unmask: [],
  }],
  ["the legacy no-new-privileges:true", ["no-new-privileges:true"], {
    noNewPrivileges: true,
    mask: [],
    unmask: [],
  }],
  ["mask= and unmask=", ["mask=/a:/b", "unmask=/proc/kcore", "mask=/c"], {
    mask: ["/a", "/b", "/c"],
    unmask: ["/proc/kcore"],
  }],
  ["unmask=ALL", ["unmask=ALL"], { mask: [], unmask: ["ALL"] }],
  ["systempaths=unconfined", ["systempaths=unconfined"], { mask: [], unmask: ["ALL"] }],
  ["seccomp=unconfined", ["seccomp=unconfined"], {
    mask: [],
    unmask: [],
    seccomp: { kind: "unconfined" },
  }],
  ["seccomp=FILE", ["seccomp=/etc/p.json"], {
    mask: [],
    unmask: [],
    seccomp: { kind: "file", path: "/etc/p.json" },
  }],
  ["apparmor=unconfined and label=disable (no-ops)", ["apparmor=unconfined", "label=disable"], {
    mask: [],
    unmask: [],
  }],
];
for (const [what, list, want] of OPTS) {
  Deno.test(`parseSecurityOpts() reads ${what}`, () => {
    assert.deepEqual(parseSecurityOpts(list), want);
  });
}

const BAD_OPTS: [string, RegExp][] = [
  ["foo", /invalid --security-opt 1: "foo"/],
  ["foo=bar", /invalid --security-opt 2: "foo=bar"/],
  ["no-new-privileges=yes", /must be true or false/],
  ["mask=relative", /"relative" is not an absolute path/],
  ["unmask=/a:b", /"b" is not an absolute path/],
  ["seccomp=", /no profile given/],
  ["label=user:u", /does not support SELinux labels/],
  ["label=type:t", /does not support SELinux labels/],
  ["apparmor=docker-default", /does not load AppArmor profiles/],
  ["systempaths=x", /systempaths=unconfined is the only/],
];
for (const [opt, re] of BAD_OPTS) {
  Deno.test(`parseSecurityOpts() refuses "${opt}"`, () => {
    assert.throws(() => parseSecurityOpts([opt]), re);
  });
}

const DEFAULTS = {
  masked: ["/proc/kcore", "/proc/keys", "/sys/firmware"],
  readonly: ["/proc/sys"],
};
const PATHS: [string, Parameters<typeof maskedAndReadonlyPaths>[1], string[], string[]][] = [
  ["the defaults", {}, DEFAULTS.masked, DEFAULTS.readonly],
  ["unmask of one path", { unmask: ["/proc/keys"] }, ["/proc/kcore", "/sys/firmware"], [
    "/proc/sys",
  ]],
  ["unmask of a glob", { unmask: ["/proc/*"] }, ["/sys/firmware"], []],
  ["unmask=ALL", { unmask: ["ALL"] }, [], []],
  ["mask added", { mask: ["/etc/secret"] }, [...DEFAULTS.masked, "/etc/secret"], ["/proc/sys"]],
  ["--privileged, with a mask", { privileged: true, mask: ["/x"] }, ["/x"], []],
];
for (const [what, opts, masked, readonly] of PATHS) {
  Deno.test(`maskedAndReadonlyPaths() gives ${what}`, () => {
    assert.deepEqual(maskedAndReadonlyPaths(DEFAULTS, opts), { masked, readonly });
  });
}

// ---------------------------------------------------------------------------
// --ulimit

const ULIMITS: [string, { type: string; soft: number; hard: number }][] = [
  ["nofile=1024", { type: "RLIMIT_NOFILE", soft: 1024, hard: 1024 }],
  ["nofile=512:1024", { type: "RLIMIT_NOFILE", soft: 512, hard: 1024 }],
  ["nproc=100:unlimited", { type: "RLIMIT_NPROC", soft: 100, hard: UNLIMITED }],
  ["core=-1", { type: "RLIMIT_CORE", soft: UNLIMITED, hard: UNLIMITED }],
  ["memlock=0:-1", { type: "RLIMIT_MEMLOCK", soft: 0, hard: UNLIMITED }],
  ["rttime=5", { type: "RLIMIT_RTTIME", soft: 5, hard: 5 }],
];
for (const [arg, want] of ULIMITS) {
  Deno.test(`parseUlimit() reads ${arg}`, () => assert.deepEqual(parseUlimit(arg), want));
}

const BAD_ULIMITS: [string, RegExp][] = [
  ["nofile", /use NAME=SOFT\[:HARD\]/],
  ["files=1", /invalid ulimit type: "files"/],
  ["nofile=x", /invalid ulimit argument/],
  ["nofile=1.5", /invalid ulimit argument/],
  ["nofile=1:2:3", /too many limit value arguments/],
  ["nofile=10:5", /soft limit must be less than or equal to hard limit/],
  ["nofile=unlimited:5", /soft limit must be less than or equal to hard limit/],
];
for (const [arg, re] of BAD_ULIMITS) {
  Deno.test(`parseUlimit() refuses ${arg}`, () => assert.throws(() => parseUlimit(arg), re));
}

Deno.test("parseUlimits() lets a later value for the same name win", () => {
  assert.deepEqual(parseUlimits(["nofile=1", "nproc=2", "nofile=3"]), [
    { type: "RLIMIT_NOFILE", soft: 3, hard: 3 },
    { type: "RLIMIT_NPROC", soft: 2, hard: 2 },
  ]);
});

// ---------------------------------------------------------------------------
// --sysctl

Deno.test("parseSysctls() takes IPC and mqueue sysctls, and net.* with a network of its own", () => {
  assert.deepEqual(
    parseSysctls(["kernel.shmmax=1000", "kernel/msgmax=5", "fs.mqueue.msg_max=20"], false),
    { "kernel.shmmax": "1000", "kernel.msgmax": "5", "fs.mqueue.msg_max": "20" },
  );
  assert.deepEqual(parseSysctls(["net.ipv4.ip_forward=1"], true), { "net.ipv4.ip_forward": "1" });
  assert.deepEqual(parseSysctls(["kernel.sem=250 32000 32 128"], false), {
    "kernel.sem": "250 32000 32 128",
  });
});

const BAD_SYSCTLS: [string, boolean, RegExp][] = [
  ["net.ipv4.ip_forward=1", false, /not allowed in the host's network namespace/],
  ["kernel.hostname=x", true, /"kernel.hostname" is not allowed/],
  ["vm.swappiness=1", true, /"vm.swappiness" is not allowed/],
  ["kernel.shmmax", false, /use NAME=VALUE/],
  ["=1", false, /use NAME=VALUE/],
];
for (const [arg, own, re] of BAD_SYSCTLS) {
  Deno.test(`parseSysctls() refuses ${arg}${own ? " even with its own network" : ""}`, () => {
    assert.throws(() => parseSysctls([arg], own), re);
  });
}

// ---------------------------------------------------------------------------
// --device

const DEVICE_FLAGS: [string, ReturnType<typeof parseDeviceFlag>][] = [
  ["/dev/fuse", { hostPath: "/dev/fuse", containerPath: "/dev/fuse", permissions: "rwm" }],
  ["/dev/fuse:r", { hostPath: "/dev/fuse", containerPath: "/dev/fuse", permissions: "r" }],
  ["/dev/sda:/dev/xvda", { hostPath: "/dev/sda", containerPath: "/dev/xvda", permissions: "rwm" }],
  ["/dev/sda:/dev/xvda:rw", {
    hostPath: "/dev/sda",
    containerPath: "/dev/xvda",
    permissions: "rw",
  }],
];
for (const [arg, want] of DEVICE_FLAGS) {
  Deno.test(`parseDeviceFlag() reads ${arg}`, () => assert.deepEqual(parseDeviceFlag(arg), want));
}

const BAD_DEVICES: [string, RegExp][] = [
  ["", /invalid device specification/],
  ["/a:/b:rwx", /invalid device mode: "rwx"/],
  ["/a:/b:rr", /invalid device mode: "rr"/],
  ["/a:/b:c:d", /invalid device specification/],
  ["dev/fuse", /is not an absolute path/],
  ["/dev/fuse:fuse", /"fuse" is not an absolute path/],
];
for (const [arg, re] of BAD_DEVICES) {
  Deno.test(`parseDeviceFlag() refuses "${arg}"`, () => {
    assert.throws(() => parseDeviceFlag(arg), re);
  });
}

const FUSE: DeviceRequest = {
  hostPath: "/dev/fuse",
  containerPath: "/dev/fuse2",
  permissions: "r",
  node: { type: "c", major: 10, minor: 229, mode: 0o20666, uid: 0, gid: 0 },
};

Deno.test("deviceSpec() binds the host's node in a user namespace, makes one as root", () => {
  assert.deepEqual(deviceSpec([FUSE], true), {
    mounts: [{
      destination: "/dev/fuse2",
      type: "bind",
      source: "/dev/fuse",
      options: ["bind", "nosuid", "noexec", "ro"],
    }],
    devices: [],
  });
  assert.deepEqual(deviceSpec([{ ...FUSE, permissions: "rwm" }], false), {
    mounts: [],
    devices: [{
      type: "c",
      path: "/dev/fuse2",
      major: 10,
      minor: 229,
      fileMode: 0o666,
      uid: 0,
      gid: 0,
    }],
  });
  // A later request for the same container path wins.
  const later = { ...FUSE, hostPath: "/dev/null" };
  assert.equal(deviceSpec([FUSE, later], true).mounts[0]?.source, "/dev/null");
});

Deno.test("splitDev() splits dev_t as major(3) and minor(3) do", () => {
  assert.deepEqual(splitDev(0x103), { major: 1, minor: 3 });
  assert.deepEqual(splitDev(0xae5), { major: 10, minor: 229 });
  // A large minor spills into the high bits.
  assert.deepEqual(splitDev(0x12345678), { major: 0x456, minor: 0x12378 });
});

Deno.test("rootlessDeviceProblem() explains a node the user cannot open", () => {
  const disk = { type: "b" as const, major: 8, minor: 0, mode: 0o660, uid: 0, gid: 6 };
  const who = { uid: 1001, groups: [1001] };
  assert.match(
    rootlessDeviceProblem("/dev/sda", disk, "rw", who) ?? "",
    /device "\/dev\/sda" \(mode 660, owner 0:6\) cannot be opened read-write by uid 1001/,
  );
  assert.equal(rootlessDeviceProblem("/dev/sda", disk, "rw", { uid: 1001, groups: [6] }), null);
  const readable = { ...disk, mode: 0o644 };
  assert.equal(rootlessDeviceProblem("/dev/sda", readable, "r", who), null);
  assert.notEqual(rootlessDeviceProblem("/dev/sda", readable, "rw", who), null);
});

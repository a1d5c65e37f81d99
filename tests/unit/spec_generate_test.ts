// Table tests of spec generation: image config + run options + host facts →
// the OCI config.json (and the /etc files its bind mounts need).
import assert from "node:assert/strict";
import type { IdMapping } from "../../lib/runtime/idmap.ts";
import { DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS } from "../../lib/spec/defaults.ts";
import {
  type EtcFileName,
  generateSpec,
  type HostFacts,
  type ImageProcessConfig,
  type RootfsFacts,
  type RunOptions,
  type SpecInput,
} from "../../lib/spec/generate.ts";
import { type Mount, OCI_VERSION, type Spec } from "../../lib/spec/types.ts";
import { parseVolume } from "../../lib/spec/mounts.ts";
import { type DeviceRequest, parseDeviceFlag } from "../../lib/spec/devices.ts";
import { Errno } from "../../ffi/errno.ts";
import { hostMode, range, single, subordinate } from "./_mappings.ts";

// ---------------------------------------------------------------------------
// Input builders

const ID = "0123456789abcdef".repeat(4);
const ROOT = "/store/containers/c1/rootfs";
const FILES = "/run/trun/c1/files";

const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
  "app:x:1000:1000:App:/home/app:/bin/sh",
  "",
].join("\n");

const GROUP = [
  "root:x:0:",
  "daemon:x:1:",
  "tty:x:5:app",
  "staff:x:50:app,daemon",
  "app:x:1000:",
  "",
].join("\n");

const HOST_HOSTS = "127.0.0.1\tlocalhost\n192.168.1.10\tbuildhost\n";
const HOST_RESOLV = "nameserver 192.168.1.1\n";

function options(o: Partial<RunOptions> = {}): RunOptions {
  return {
    args: [],
    env: [],
    envFiles: [],
    groupAdd: [],
    volumes: [],
    readOnly: false,
    network: { kind: "host" },
    tty: false,
    ...o,
  };
}

function rootfs(o: Partial<RootfsFacts> = {}): RootfsFacts {
  return {
    passwd: PASSWD,
    group: GROUP,
    etcBindable: { hostname: true, hosts: true, "resolv.conf": true },
    ...o,
  };
}

function host(o: Partial<HostFacts> = {}): HostFacts {
  return { idMapping: subordinate(), env: {}, hosts: HOST_HOSTS, resolvConf: HOST_RESOLV, ...o };
}

interface InputParts {
  image?: ImageProcessConfig;
  options?: Partial<RunOptions>;
  rootfs?: Partial<RootfsFacts>;
  host?: Partial<HostFacts>;
  volumes?: SpecInput["volumes"];
}

function input(p: InputParts = {}): SpecInput {
  return {
    id: ID,
    rootPath: ROOT,
    filesDir: FILES,
    image: p.image ?? { cmd: ["/bin/sh"] },
    rootfs: rootfs(p.rootfs),
    options: options(p.options),
    host: host(p.host),
    ...(p.volumes ? { volumes: p.volumes } : {}),
  };
}

function spec(p: InputParts = {}): Spec {
  return generateSpec(input(p)).spec;
}

function mountAt(s: Spec, destination: string): Mount | undefined {
  return s.mounts?.find((m) => m.destination === destination);
}

// ---------------------------------------------------------------------------
// Command

const COMMANDS: [string, ImageProcessConfig, Partial<RunOptions>, string[]][] = [
  ["the image's entrypoint followed by its cmd", { entrypoint: ["/ep"], cmd: ["c1", "c2"] }, {}, [
    "/ep",
    "c1",
    "c2",
  ]],
  [
    "the image's entrypoint followed by the arguments, dropping its cmd",
    { entrypoint: ["/ep"], cmd: ["c1"] },
    { args: ["a1"] },
    ["/ep", "a1"],
  ],
  ["the image's cmd when there is no entrypoint", { cmd: ["sh", "-c", "true"] }, {}, [
    "sh",
    "-c",
    "true",
  ]],
  ["the arguments over the image's cmd", { cmd: ["sh"] }, { args: ["ls", "-l"] }, ["ls", "-l"]],
  [
    "--entrypoint alone, dropping the image's cmd",
    { entrypoint: ["/ep"], cmd: ["c1"] },
    { entrypoint: "/bin/other" },
    ["/bin/other"],
  ],
  [
    "--entrypoint followed by the arguments",
    { entrypoint: ["/ep"], cmd: ["c1"] },
    { entrypoint: "/bin/other", args: ["x"] },
    ["/bin/other", "x"],
  ],
  [
    'the arguments alone with --entrypoint ""',
    { entrypoint: ["/ep"], cmd: ["c1"] },
    { entrypoint: "", args: ["ls"] },
    ["ls"],
  ],
  ['the cmd when the image\'s entrypoint is [""]', { entrypoint: [""], cmd: ["sh"] }, {}, ["sh"]],
];
for (const [what, image, o, want] of COMMANDS) {
  Deno.test(`generateSpec() runs ${what}`, () => {
    assert.deepEqual(spec({ image, options: o }).process?.args, want);
  });
}

const NO_COMMAND: [string, ImageProcessConfig, Partial<RunOptions>][] = [
  ["the image has no entrypoint or cmd and no arguments are given", {}, {}],
  ['--entrypoint "" clears the image\'s cmd too', { entrypoint: ["/ep"], cmd: ["c1"] }, {
    entrypoint: "",
  }],
];
for (const [what, image, o] of NO_COMMAND) {
  Deno.test(`generateSpec() refuses when ${what}`, () => {
    assert.throws(() => spec({ image, options: o }), /No command specified/);
  });
}

Deno.test("generateSpec() takes the working directory from -w, else the image, else /", () => {
  assert.equal(spec({ options: { workdir: "/srv/./x/" } }).process?.cwd, "/srv/x");
  assert.equal(spec({ image: { cmd: ["sh"], workingDir: "app" } }).process?.cwd, "/app");
  assert.equal(spec().process?.cwd, "/");
});

// ---------------------------------------------------------------------------
// Environment

const HOSTNAME = `HOSTNAME=${ID.slice(0, 12)}`;
const PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const ENVS: [string, InputParts, string[]][] = [
  ["PATH, HOSTNAME and HOME by default", {}, [PATH, HOSTNAME, "HOME=/root"]],
  ["TERM=xterm after HOSTNAME with a tty", { options: { tty: true } }, [
    PATH,
    HOSTNAME,
    "TERM=xterm",
    "HOME=/root",
  ]],
  [
    "the user's variables before the image's, the image's PATH in PATH's place",
    {
      image: { cmd: ["sh"], env: ["PATH=/img/bin", "A=image", "B=image"] },
      options: { env: ["B=flag"] },
    },
    ["PATH=/img/bin", HOSTNAME, "B=flag", "A=image", "HOME=/root"],
  ],
  [
    "env files before -e, a name keeping its first position",
    {
      options: {
        envFiles: [{ name: "f.env", text: "C=file\nD=file\n" }],
        env: ["D=flag", "E=flag"],
      },
    },
    [PATH, HOSTNAME, "C=file", "D=flag", "E=flag", "HOME=/root"],
  ],
  ["-e NAME copying trun's environment", {
    options: { env: ["FOO", "MISSING"] },
    host: { env: { FOO: "from-host" } },
  }, [PATH, HOSTNAME, "FOO=from-host", "HOME=/root"]],
  ["HOSTNAME from --hostname", { options: { hostname: "web" } }, [
    PATH,
    "HOSTNAME=web",
    "HOME=/root",
  ]],
  ["HOME from the -u user's passwd entry", { options: { user: "app" } }, [
    PATH,
    HOSTNAME,
    "HOME=/home/app",
  ]],
];
for (const [what, p, want] of ENVS) {
  Deno.test(`generateSpec() sets the environment: ${what}`, () => {
    assert.deepEqual(spec(p).process?.env, want);
  });
}

Deno.test("generateSpec() sets process.terminal from -t", () => {
  assert.equal(spec({ options: { tty: true } }).process?.terminal, true);
  assert.equal(spec().process?.terminal, false);
});

// ---------------------------------------------------------------------------
// User

const USERS: [string, InputParts, { uid: number; gid: number; additionalGids: number[] }][] = [
  ["root with no -u", {}, { uid: 0, gid: 0, additionalGids: [0] }],
  ["a user name with its groups from /etc/group", { options: { user: "app" } }, {
    uid: 1000,
    gid: 1000,
    additionalGids: [1000, 5, 50],
  }],
  ["user:group, with no supplementary groups", { options: { user: "app:staff" } }, {
    uid: 1000,
    gid: 50,
    additionalGids: [50],
  }],
  ["a numeric uid that has an entry", { options: { user: "1000" } }, {
    uid: 1000,
    gid: 1000,
    additionalGids: [1000, 5, 50],
  }],
  ["a numeric uid without an entry, gid 0", { options: { user: "4242" } }, {
    uid: 4242,
    gid: 0,
    additionalGids: [0],
  }],
  ["uid:gid that need not exist", { options: { user: "4242:4343" } }, {
    uid: 4242,
    gid: 4343,
    additionalGids: [4343],
  }],
  [":group for root", { options: { user: ":tty" } }, { uid: 0, gid: 5, additionalGids: [5] }],
  ["the image's User when -u is not given", { image: { cmd: ["sh"], user: "daemon" } }, {
    uid: 1,
    gid: 1,
    additionalGids: [1, 50],
  }],
  [
    "-u over the image's User",
    { image: { cmd: ["sh"], user: "daemon" }, options: { user: "app" } },
    {
      uid: 1000,
      gid: 1000,
      additionalGids: [1000, 5, 50],
    },
  ],
  ["--group-add by name and number", { options: { groupAdd: ["staff", "77"] } }, {
    uid: 0,
    gid: 0,
    additionalGids: [0, 50, 77],
  }],
];
for (const [what, p, want] of USERS) {
  Deno.test(`generateSpec() resolves ${what}`, () => {
    assert.deepEqual(spec(p).process?.user, want);
  });
}

const BAD_USERS: [string, InputParts, RegExp][] = [
  ["an unknown user name", { options: { user: "nobody" } }, /Unable to find user "nobody"/],
  ["an unknown group name", { options: { user: "app:wheel" } }, /Unable to find group "wheel"/],
  [
    "a user name without /etc/passwd",
    { options: { user: "app" }, rootfs: { passwd: null } },
    /has no \/etc\/passwd/,
  ],
];
for (const [what, p, re] of BAD_USERS) {
  Deno.test(`generateSpec() refuses ${what}`, () => assert.throws(() => spec(p), re));
}

const SINGLE_REFUSED: [string, string, RegExp][] = [
  ["a non-root user", "app", /cannot run as user "app" \(uid 1000, gid 1000\).*\/etc\/subuid/],
  ["a numeric non-root uid", "4242", /cannot run as user "4242" \(uid 4242, gid 0\)/],
  ["root with a non-root group", "0:5", /cannot run as user "0:5" \(uid 0, gid 5\)/],
];
for (const [what, user, re] of SINGLE_REFUSED) {
  Deno.test(`generateSpec() refuses ${what} under the single-id mapping`, () => {
    assert.throws(() => spec({ options: { user }, host: { idMapping: single() } }), re);
  });
}

Deno.test("generateSpec() runs root under the single-id mapping without supplementary groups", () => {
  const s = spec({ options: { groupAdd: ["staff"] }, host: { idMapping: single() } });
  assert.deepEqual(s.process?.user, { uid: 0, gid: 0, additionalGids: [] });
});

// ---------------------------------------------------------------------------
// Namespaces and id mappings

const NAMESPACES: [string, () => IdMapping, "host" | "none" | "pasta", string[]][] = [
  ["host mapping, host network", hostMode, "host", ["ipc", "mount", "pid", "uts"]],
  ["host mapping, network none", hostMode, "none", ["ipc", "mount", "network", "pid", "uts"]],
  ["single mapping, host network", single, "host", ["ipc", "mount", "pid", "user", "uts"]],
  ["subordinate mapping, private network through pasta", subordinate, "pasta", [
    "ipc",
    "mount",
    "network",
    "pid",
    "user",
    "uts",
  ]],
  ["subordinate mapping, network none", subordinate, "none", [
    "ipc",
    "mount",
    "network",
    "pid",
    "user",
    "uts",
  ]],
];
for (const [what, mapping, network, want] of NAMESPACES) {
  Deno.test(`generateSpec() creates the right namespaces: ${what}`, () => {
    const mode = network === "pasta" ? { kind: network, options: [] } : { kind: network };
    const s = spec({ options: { network: mode }, host: { idMapping: mapping() } });
    const ns = s.linux?.namespaces ?? [];
    assert.deepEqual(ns.map((n) => n.type).sort(), want);
    assert.ok(ns.every((n) => n.path === undefined), "no namespace is joined");
  });
}

Deno.test("generateSpec() adds the user namespace when rootless", () => {
  for (const m of [single, subordinate]) {
    const types = spec({ host: { idMapping: m() } }).linux?.namespaces?.map((n) => n.type);
    assert.ok(types?.includes("user"), m.name);
  }
});

Deno.test("generateSpec() copies the uid and gid ranges into the mappings", () => {
  const mapping = subordinate();
  mapping.gid = [range(0, 1001, 1), range(1, 200000, 1000)];
  const s = spec({ host: { idMapping: mapping } });
  assert.deepEqual(s.linux?.uidMappings, [
    { containerID: 0, hostID: 1000, size: 1 },
    { containerID: 1, hostID: 100000, size: 65536 },
  ]);
  assert.deepEqual(s.linux?.gidMappings, [
    { containerID: 0, hostID: 1001, size: 1 },
    { containerID: 1, hostID: 200000, size: 1000 },
  ]);
  const one = spec({ host: { idMapping: single() } });
  assert.deepEqual(one.linux?.uidMappings, [{ containerID: 0, hostID: 1000, size: 1 }]);
});

Deno.test("generateSpec() writes no mappings without a user namespace", () => {
  const linux = spec({ host: { idMapping: hostMode() } }).linux ?? {};
  assert.equal("uidMappings" in linux, false);
  assert.equal("gidMappings" in linux, false);
});

// ---------------------------------------------------------------------------
// Mounts

const STANDARD = ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"];

const PTS_GID: [string, IdMapping, boolean][] = [
  ["host mode", hostMode(), true],
  ["subordinate ranges covering 5", subordinate(), true],
  ["the single-id mapping", single(), false],
  ["ranges that stop at 4", {
    ...subordinate(),
    gid: [range(0, 1000, 1), range(1, 100000, 4)],
  }, false],
  ["a range that starts at 5", {
    ...subordinate(),
    gid: [range(0, 1000, 1), range(5, 100000, 1)],
  }, true],
];
for (const [what, mapping, want] of PTS_GID) {
  Deno.test(`generateSpec() ${want ? "gives" : "omits"} devpts gid=5 with ${what}`, () => {
    const opts = mountAt(spec({ host: { idMapping: mapping } }), "/dev/pts")?.options ?? [];
    assert.equal(opts.includes("gid=5"), want);
    assert.ok(opts.includes("newinstance") && opts.includes("ptmxmode=0666"));
  });
}

Deno.test("generateSpec() mounts a fresh sysfs with its own network namespace", () => {
  assert.deepEqual(mountAt(spec({ options: { network: { kind: "none" } } }), "/sys"), {
    destination: "/sys",
    type: "sysfs",
    source: "sysfs",
    options: ["nosuid", "noexec", "nodev", "ro"],
  });
});

Deno.test("generateSpec() binds the host's /sys read-only when sharing the network", () => {
  assert.deepEqual(mountAt(spec({ options: { network: { kind: "host" } } }), "/sys"), {
    destination: "/sys",
    type: "bind",
    source: "/sys",
    options: ["rbind", "nosuid", "noexec", "nodev", "ro"],
  });
});

Deno.test("generateSpec() starts with the standard mounts in order", () => {
  const dests = (spec().mounts ?? []).map((m) => m.destination);
  assert.deepEqual(dests.slice(0, STANDARD.length), STANDARD);
  assert.equal(mountAt(spec(), "/proc")?.type, "proc");
  assert.equal(mountAt(spec(), "/dev")?.type, "tmpfs");
});

const ETC_BINDABLE: [
  string,
  Partial<Record<EtcFileName, boolean>>,
  Partial<HostFacts>,
  EtcFileName[],
][] = [
  ["all three when bindable", {}, {}, ["hostname", "hosts", "resolv.conf"]],
  ["none when none is bindable", { hostname: false, hosts: false, "resolv.conf": false }, {}, []],
  ["only the bindable ones", { hosts: false }, {}, ["hostname", "resolv.conf"]],
  ["no resolv.conf when the host has none", {}, { resolvConf: null }, ["hostname", "hosts"]],
];
for (const [what, bindable, hostFacts, want] of ETC_BINDABLE) {
  Deno.test(`generateSpec() binds /etc files: ${what}`, () => {
    const etcBindable = { hostname: true, hosts: true, "resolv.conf": true, ...bindable };
    const { spec: s, files } = generateSpec(input({ rootfs: { etcBindable }, host: hostFacts }));
    const etc = (s.mounts ?? []).slice(STANDARD.length);
    assert.deepEqual(
      etc,
      want.map((name) => ({
        destination: `/etc/${name}`,
        type: "bind",
        source: `${FILES}/${name}`,
        options: ["bind"],
      })),
    );
    assert.deepEqual(files.map((f) => f.path), want.map((name) => `${FILES}/${name}`));
  });
}

Deno.test("generateSpec() returns the /etc files' contents", () => {
  const { files } = generateSpec(input({ options: { hostname: "web" } }));
  const byPath = Object.fromEntries(files.map((f) => [f.path, f.content]));
  assert.deepEqual(byPath, {
    [`${FILES}/hostname`]: "web\n",
    [`${FILES}/hosts`]: `${HOST_HOSTS}127.0.1.1\tweb\n`,
    [`${FILES}/resolv.conf`]: HOST_RESOLV,
  });
});

Deno.test("generateSpec() adds volumes as rbind mounts after the /etc files", () => {
  const s = spec({
    options: { volumes: ["/data:/data:ro", "/src/../srv:/app", "/h:/etc/hosts:rw"] },
  });
  const dests = (s.mounts ?? []).map((m) => m.destination);
  assert.deepEqual(dests.slice(STANDARD.length), [
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/data",
    "/app",
    "/etc/hosts",
  ]);
  assert.deepEqual((s.mounts ?? []).slice(-3), [
    { destination: "/data", type: "bind", source: "/data", options: ["rbind", "ro"] },
    { destination: "/app", type: "bind", source: "/srv", options: ["rbind", "rw"] },
    { destination: "/etc/hosts", type: "bind", source: "/h", options: ["rbind", "rw"] },
  ]);
});

Deno.test("generateSpec() refuses a bad volume", () => {
  assert.throws(() => spec({ options: { volumes: ["./data:/data"] } }), /invalid volume/);
});

Deno.test("generateSpec() mounts a named volume from the source prepared for it", () => {
  const s = spec({
    options: { volumes: ["data:/data:ro"], tmpfs: ["/run:size=1m"] },
    volumes: { "/data": { kind: "dir", name: "data", path: "/store/volumes/data/_data" } },
  });
  assert.deepEqual((s.mounts ?? []).slice(-2), [
    {
      destination: "/data",
      type: "bind",
      source: "/store/volumes/data/_data",
      options: ["rbind", "ro"],
    },
    {
      destination: "/run",
      type: "tmpfs",
      source: "tmpfs",
      options: ["rw", "noexec", "nosuid", "nodev", "size=1m"],
    },
  ]);
});

Deno.test("generateSpec() refuses a volume mount nobody prepared", () => {
  assert.throws(() => spec({ options: { volumes: ["data:/data"] } }), /was not prepared/);
});

// ---------------------------------------------------------------------------
// Hostname, capabilities, root, paths, document

Deno.test("generateSpec() defaults the hostname to the first 12 characters of the id", () => {
  assert.equal(spec().hostname, "0123456789ab");
  assert.equal(spec({ options: { hostname: "web" } }).hostname, "web");
});

Deno.test("generateSpec() gives Docker's 14 capabilities in bounding, effective and permitted", () => {
  const caps = spec().process?.capabilities;
  assert.equal(DEFAULT_CAPABILITIES.length, 14);
  assert.deepEqual(caps, {
    bounding: [...DEFAULT_CAPABILITIES],
    effective: [...DEFAULT_CAPABILITIES],
    permitted: [...DEFAULT_CAPABILITIES],
    inheritable: [],
    ambient: [],
  });
  for (const c of ["CAP_CHOWN", "CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"]) {
    assert.ok(caps?.bounding?.includes(c), c);
  }
  assert.equal(caps?.bounding?.includes("CAP_SYS_ADMIN"), false);
});

Deno.test("generateSpec() sets root.path and root.readonly from --read-only", () => {
  assert.deepEqual(spec({ options: { readOnly: true } }).root, { path: ROOT, readonly: true });
  assert.deepEqual(spec().root, { path: ROOT, readonly: false });
});

Deno.test("generateSpec() masks Docker's paths and makes its read-only paths read-only", () => {
  const s = spec();
  assert.deepEqual(s.linux?.maskedPaths, [...MASKED_PATHS]);
  assert.deepEqual(s.linux?.readonlyPaths, [...READONLY_PATHS]);
  assert.ok(s.linux?.maskedPaths?.includes("/proc/kcore"));
  assert.ok(s.linux?.readonlyPaths?.includes("/proc/sys"));
  // The document has its own copies: changing one does not change the defaults.
  s.linux?.maskedPaths?.push("/x");
  assert.equal(MASKED_PATHS.includes("/x"), false);
});

const ROUND_TRIP: [string, InputParts][] = [
  ["the defaults", {}],
  ["a rootless run with everything", {
    image: { entrypoint: ["/ep"], cmd: ["c"], env: ["A=1"], workingDir: "/w", user: "app" },
    options: {
      tty: true,
      network: { kind: "none" },
      hostname: "h",
      volumes: ["/a:/b:ro"],
      env: ["B=2"],
      readOnly: true,
    },
  }],
  ["root in host mode", { host: { idMapping: hostMode() } }],
  ["the single mapping", { host: { idMapping: single() } }],
];
for (const [what, p] of ROUND_TRIP) {
  Deno.test(`generateSpec() returns valid JSON that round-trips: ${what}`, () => {
    const s = spec(p);
    assert.equal(s.ociVersion, OCI_VERSION);
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  });
}

// Once a bug: a volume on the container's root is accepted (`-v /host:/` and
// `-v /host:/x/..` give target "/"), which would bind a host directory over
// the whole root filesystem; Docker refuses it ("invalid specification:
// destination can't be '/'").
for (const text of ["/host:/", "/host:/x/.."]) {
  Deno.test({
    name: `parseVolume() refuses "${text}", whose container path is the root`,

    fn: () => assert.throws(() => parseVolume(text), /invalid volume/),
  });
}

Deno.test("generateSpec() sets the console size with -t only, so the first stty size is right", () => {
  const size = { rows: 40, columns: 120 };
  assert.deepEqual(spec({ options: { tty: true, consoleSize: size } }).process!.consoleSize, {
    height: 40,
    width: 120,
  });
  assert.equal(
    spec({ options: { tty: false, consoleSize: size } }).process!.consoleSize,
    undefined,
  );
});

Deno.test("generateSpec() with --init binds the host's init read-only and runs it in front", () => {
  const s = spec({ options: { args: ["sleep", "1"], init: "/usr/bin/catatonit" } });
  assert.deepEqual(s.process!.args, ["/run/trun-init", "--", "sleep", "1"]);
  const m = s.mounts!.find((x) => x.destination === "/run/trun-init")!;
  assert.equal(m.source, "/usr/bin/catatonit");
  assert.deepEqual(m.options, ["bind", "ro", "nosuid", "nodev"]);
  assert.equal(
    spec({ options: { args: ["sleep", "1"] } }).mounts!.some((x) =>
      x.destination === "/run/trun-init"
    ),
    false,
  );
});

// ---------------------------------------------------------------------------
// Security flags (capabilities, masks, --ulimit, --sysctl, --device)

function sec(o: Partial<RunOptions> = {}, h: Partial<HostFacts> = {}): Spec {
  return spec({ options: o, host: h });
}

// /dev/fuse at another path in the container, read-only.
const FUSE: DeviceRequest = {
  ...parseDeviceFlag("/dev/fuse:/dev/fuse2:r"),
  node: { type: "c", major: 10, minor: 229, mode: 0o666, uid: 0, gid: 0 },
};

Deno.test("generateSpec() sets the capability sets for root, --user 1000 and --privileged", () => {
  assert.deepEqual(sec().process?.capabilities?.inheritable, []);
  const user = sec({ user: "1000" }).process?.capabilities;
  assert.deepEqual(user?.bounding, [...DEFAULT_CAPABILITIES]);
  assert.deepEqual(user?.effective, []);
  const added = sec({ user: "app", capAdd: ["NET_ADMIN"] }).process?.capabilities;
  assert.deepEqual(added?.ambient, ["CAP_NET_ADMIN"]);
  const dropped = sec({ capDrop: ["ALL"] }).process?.capabilities;
  assert.deepEqual(dropped?.bounding, []);
  const priv = sec({ privileged: true }, { capabilities: ["CAP_CHOWN", "CAP_SYS_ADMIN"] });
  assert.deepEqual(priv.process?.capabilities?.effective, ["CAP_CHOWN", "CAP_SYS_ADMIN"]);
});

Deno.test("generateSpec() applies no-new-privileges, masks and --privileged's paths and /sys", () => {
  assert.equal(sec().process?.noNewPrivileges, false);
  assert.equal(sec({ noNewPrivileges: true }).process?.noNewPrivileges, true);
  const s = sec({ unmask: ["/sys/dev/block"], mask: ["/etc/x"] });
  assert.equal(s.linux?.maskedPaths?.includes("/sys/dev/block"), false);
  assert.ok(s.linux?.maskedPaths?.includes("/etc/x"));
  const priv = sec({ privileged: true });
  assert.deepEqual(priv.linux?.maskedPaths, []);
  assert.deepEqual(priv.linux?.readonlyPaths, []);
  const sys = (x: Spec) => x.mounts?.find((m) => m.destination === "/sys")?.options;
  assert.ok(sys(sec())?.includes("ro"));
  assert.ok(sys(priv)?.includes("rw"));
  assert.equal(sys(priv)?.includes("ro"), false);
});

Deno.test("generateSpec() puts devices in mounts rootless and in linux.devices as root", () => {
  const rootless = sec({ devices: [FUSE] });
  assert.ok(rootless.mounts?.some((m) => m.destination === "/dev/fuse2" && m.type === "bind"));
  assert.equal(rootless.linux?.devices, undefined);
  const root = sec({ devices: [FUSE] }, { idMapping: hostMode() });
  assert.equal(root.mounts?.some((m) => m.destination === "/dev/fuse2"), false);
  assert.equal(root.linux?.devices?.[0]?.path, "/dev/fuse2");
});

Deno.test("generateSpec() sets linux.sysctl, net.* only with --network none", () => {
  assert.equal(sec().linux?.sysctl, undefined);
  assert.deepEqual(sec({ sysctls: ["kernel.shmmax=5"] }).linux?.sysctl, { "kernel.shmmax": "5" });
  assert.throws(() => sec({ sysctls: ["net.core.somaxconn=5"] }), /host's network namespace/);
  assert.deepEqual(
    sec({ network: { kind: "none" }, sysctls: ["net.core.somaxconn=5"] }).linux?.sysctl,
    { "net.core.somaxconn": "5" },
  );
});

Deno.test("generateSpec() sets process.rlimits from --ulimit", () => {
  assert.equal(sec().process?.rlimits, undefined);
  assert.deepEqual(sec({ ulimits: ["nofile=100:200"] }).process?.rlimits, [
    { type: "RLIMIT_NOFILE", soft: 100, hard: 200 },
  ]);
});

// ---------------------------------------------------------------------------
// Seccomp

Deno.test("generateSpec() gives a container Docker's default seccomp profile for its capabilities", () => {
  const s = spec().linux!.seccomp!;
  assert.equal(s.defaultAction, "SCMP_ACT_ERRNO");
  assert.equal(s.defaultErrnoRet, Errno.ENOSYS);
  assert.deepEqual(s.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  const allowed = s.syscalls!.filter((r) => r.action === "SCMP_ACT_ALLOW" && !r.args);
  assert.ok(allowed.some((r) => r.names.includes("read")));
  assert.ok(allowed.some((r) => r.names.includes("chroot"))); // CAP_SYS_CHROOT is a default
  assert.ok(!allowed.some((r) => r.names.includes("mount"))); // CAP_SYS_ADMIN is not
});

Deno.test("generateSpec() leaves seccomp out for seccomp=unconfined and --privileged", () => {
  assert.equal(spec({ options: { seccomp: { kind: "unconfined" } } }).linux!.seccomp, undefined);
  assert.equal(spec({ options: { privileged: true } }).linux!.seccomp, undefined);
});

Deno.test("generateSpec() reads a seccomp=PROFILE.json in Docker's format", () => {
  const text = JSON.stringify({
    defaultAction: "SCMP_ACT_ALLOW",
    syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }],
  });
  const s = spec({ options: { seccomp: { kind: "profile", path: "/p.json", text } } }).linux!
    .seccomp!;
  assert.deepEqual(s, {
    defaultAction: "SCMP_ACT_ALLOW",
    architectures: [],
    syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }],
  });
  assert.throws(
    () => spec({ options: { seccomp: { kind: "profile", path: "/bad.json", text: "{" } } }),
    /seccomp profile "\/bad.json" is not valid JSON/,
  );
});

Deno.test("generateSpec() with a cgroup parent: its own cgroup, a cgroup namespace and cgroup2 at /sys/fs/cgroup", () => {
  const s = spec({
    host: { cgroupParent: "/trun-ci.x/trun" },
    options: { resources: { memory: { limit: 10485760 } } },
  });
  assert.equal(s.linux?.cgroupsPath, `/trun-ci.x/trun/${ID}`);
  assert.deepEqual(s.linux?.resources, { memory: { limit: 10485760 } });
  assert.ok(s.linux?.namespaces?.some((n) => n.type === "cgroup"));
  const mount = mountAt(s, "/sys/fs/cgroup");
  assert.equal(mount?.type, "cgroup");
  assert.ok(mount?.options?.includes("ro"));
  const order = s.mounts!.map((m) => m.destination);
  assert.equal(order.indexOf("/sys/fs/cgroup"), order.indexOf("/sys") + 1);
});

Deno.test("generateSpec() without a cgroup parent keeps the limits but no cgroup of its own", () => {
  const s = spec({ options: { resources: { pids: { limit: 5 } } } });
  assert.equal(s.linux?.cgroupsPath, undefined);
  assert.deepEqual(s.linux?.resources, { pids: { limit: 5 } });
  assert.ok(!s.linux?.namespaces?.some((n) => n.type === "cgroup"));
  assert.equal(mountAt(s, "/sys/fs/cgroup"), undefined);
});

// ---------------------------------------------------------------------------
// Names and --network container:

Deno.test("generateSpec() writes /etc/hosts with the name, --add-host and --domainname", () => {
  const g = generateSpec({
    ...input({
      options: {
        network: { kind: "none" },
        hostname: "web",
        domainname: "example.org",
        addHosts: ["db:10.0.0.5"],
        dns: ["1.1.1.1"],
      },
    }),
    name: "c1",
  });
  assert.equal(g.spec.domainname, "example.org");
  const file = (name: string) => g.files.find((f) => f.path === `${FILES}/${name}`)?.content;
  assert.equal(
    file("hosts"),
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.5\tdb\n" +
      "127.0.1.1\tweb.example.org web c1\n",
  );
  assert.equal(file("resolv.conf"), "nameserver 1.1.1.1\n");
});

const PEER = {
  id: "f".repeat(64),
  pid: 4242,
  userns: true,
  hostname: "peerhost",
  files: { hosts: "/store/containers/peer/userdata/etc/hosts", "resolv.conf": "/p/resolv.conf" },
};

Deno.test("generateSpec() joins a peer's user and network namespaces by path, without mappings", () => {
  const s = generateSpec({
    ...input({ options: { network: { kind: "container", container: "peer" } } }),
    networkPeer: PEER,
  }).spec;
  assert.deepEqual(s.linux?.namespaces, [
    { type: "pid" },
    { type: "ipc" },
    { type: "uts" },
    { type: "mount" },
    { type: "user", path: "/proc/4242/ns/user" },
    { type: "network", path: "/proc/4242/ns/net" },
  ]);
  assert.equal(s.linux?.uidMappings, undefined);
  assert.equal(s.linux?.gidMappings, undefined);
  assert.equal(s.hostname, "peerhost");
  assert.equal(mountAt(s, "/sys")?.type, "sysfs");
});

Deno.test("generateSpec() shares a peer's /etc files and writes none of its own", () => {
  const g = generateSpec({
    ...input({ options: { network: { kind: "container", container: "peer" } } }),
    networkPeer: PEER,
  });
  assert.deepEqual(g.files, []);
  assert.equal(mountAt(g.spec, "/etc/hosts")?.source, PEER.files.hosts);
  assert.equal(mountAt(g.spec, "/etc/resolv.conf")?.source, "/p/resolv.conf");
  assert.equal(mountAt(g.spec, "/etc/hostname"), undefined);
  assert.ok(g.spec.process?.env?.includes("HOSTNAME=peerhost"));
});

Deno.test("generateSpec() joins only the network namespace of a peer without a user namespace", () => {
  const s = generateSpec({
    ...input({
      options: { network: { kind: "container", container: "peer" } },
      host: { idMapping: hostMode() },
    }),
    networkPeer: { ...PEER, userns: false },
  }).spec;
  assert.deepEqual(s.linux?.namespaces?.filter((n) => n.path), [
    { type: "network", path: "/proc/4242/ns/net" },
  ]);
});

Deno.test("generateSpec() refuses container: without the peer looked up", () => {
  assert.throws(
    () => spec({ options: { network: { kind: "container", container: "peer" } } }),
    /--network container:peer: the container to join was not looked up/,
  );
});

/**
 * Unit tests of lib/runtime/idmap.ts: subuid parsing, the mapping plan and
 * its warnings, map text and id translation, and writeIdMaps against a fake
 * /proc and fake newuidmap/newgidmap scripts (no namespaces needed).
 */
import assert from "node:assert/strict";
import {
  currentUserName,
  findExecutable,
  formatIdMap,
  idMapMatches,
  type IdMapping,
  type IdMappingInput,
  type IdRange,
  loadIdMapping,
  mapToContainer,
  mapToHost,
  parseSubordinateIds,
  planIdMapping,
  rangesFor,
  type SubordinateEntry,
  suggestSubordinateRange,
  userNameFromPasswd,
  writeIdMaps,
} from "../../lib/runtime/idmap.ts";

const PARSE_CASES: [string, string, SubordinateEntry[]][] = [
  ["a name", "alice:100000:65536\n", [{ owner: "alice", start: 100000, count: 65536 }]],
  ["a numeric uid owner", "1000:100000:65536", [{ owner: "1000", start: 100000, count: 65536 }]],
  [
    "several ranges for one user, in file order",
    "alice:100000:65536\nbob:165536:65536\nalice:300000:1000\n",
    [
      { owner: "alice", start: 100000, count: 65536 },
      { owner: "bob", start: 165536, count: 65536 },
      { owner: "alice", start: 300000, count: 1000 },
    ],
  ],
  [
    "comments, blank lines and surrounding spaces",
    "# users\n\n   \n  alice:100000:65536  \n#bob:1:2\n",
    [{ owner: "alice", start: 100000, count: 65536 }],
  ],
  [
    "garbage lines among good ones",
    [
      "alice:100000",
      "alice:x:10",
      "alice:-1:10",
      "alice:10:0",
      ":100000:65536",
      "alice:100000:65536:extra",
      "alice:4294967290:100",
      "alice:1e5:10",
      "just words",
      "carol:200000:10",
    ].join("\n"),
    [{ owner: "carol", start: 200000, count: 10 }],
  ],
  ["an empty file", "", []],
];

for (const [what, text, want] of PARSE_CASES) {
  Deno.test(`parseSubordinateIds() handles ${what}`, () => {
    assert.deepEqual(parseSubordinateIds(text), want);
  });
}

const ENTRIES = parseSubordinateIds(
  "alice:100000:65536\n1000:300000:10\nalicia:400000:10\n10000:500000:10\n",
);
const RANGES_FOR_CASES: [string, { name: string; uid: number }, number[]][] = [
  ["by name and by numeric uid", { name: "alice", uid: 1000 }, [100000, 300000]],
  ["by numeric uid only", { name: "nobody-here", uid: 1000 }, [300000]],
  ["whole names, not prefixes", { name: "ali", uid: 1 }, []],
  ["whole numbers, not prefixes", { name: "x", uid: 100 }, []],
];
for (const [what, user, starts] of RANGES_FOR_CASES) {
  Deno.test(`rangesFor() matches ${what}`, () => {
    assert.deepEqual(rangesFor(ENTRIES, user).map((e) => e.start), starts);
  });
}

Deno.test("suggestSubordinateRange() starts after every existing range", () => {
  assert.deepEqual(suggestSubordinateRange([]), { start: 100000, count: 65536 });
  assert.deepEqual(suggestSubordinateRange(ENTRIES), { start: 500010, count: 65536 });
});

const BASE: IdMappingInput = {
  uid: 1000,
  gid: 1000,
  userName: "alice",
  subuidText: "alice:100000:65536\n",
  subgidText: "alice:100000:65536\n",
  newuidmap: "/usr/bin/newuidmap",
  newgidmap: "/usr/bin/newgidmap",
};
const SINGLE: Pick<IdMapping, "uid" | "gid"> = {
  uid: [{ inside: 0, outside: 1000, count: 1 }],
  gid: [{ inside: 0, outside: 1000, count: 1 }],
};
const FALLBACK = "using a single-id mapping (only root inside the container)";

const PLAN_CASES: [string, Partial<IdMappingInput>, IdMapping][] = [
  [
    "maps 0 to the user and 1.. to the subordinate range",
    {},
    {
      mode: "subordinate",
      uid: [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }],
      gid: [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }],
      helpers: { newuidmap: "/usr/bin/newuidmap", newgidmap: "/usr/bin/newgidmap" },
    },
  ],
  [
    "concatenates several ranges, inside ids continuing, sorted and merged",
    {
      subuidText: "alice:300000:10\n1000:100000:5\nalice:100000:5\nalice:100003:4\n",
      subgidText: "1000:200000:3\n",
    },
    {
      mode: "subordinate",
      uid: [
        { inside: 0, outside: 1000, count: 1 },
        { inside: 1, outside: 100000, count: 7 },
        { inside: 8, outside: 300000, count: 10 },
      ],
      gid: [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 200000, count: 3 }],
      helpers: { newuidmap: "/usr/bin/newuidmap", newgidmap: "/usr/bin/newgidmap" },
    },
  ],
  [
    "cuts the user's own id out of a range that covers it",
    { subuidText: "alice:998:5\n" },
    {
      mode: "subordinate",
      uid: [
        { inside: 0, outside: 1000, count: 1 },
        { inside: 1, outside: 998, count: 2 },
        { inside: 3, outside: 1001, count: 2 },
      ],
      gid: [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }],
      helpers: { newuidmap: "/usr/bin/newuidmap", newgidmap: "/usr/bin/newgidmap" },
    },
  ],
  [
    "uses no user namespace for root",
    { uid: 0, gid: 0, userName: "root", newuidmap: null },
    {
      mode: "host",
      uid: [{ inside: 0, outside: 0, count: 4294967295 }],
      gid: [{ inside: 0, outside: 0, count: 4294967295 }],
    },
  ],
  [
    "falls back when newuidmap is missing",
    { newuidmap: null },
    {
      mode: "single",
      ...SINGLE,
      warning: "newuidmap not found: install the uidmap package (apt-get install uidmap; " +
        `shadow-utils on Fedora); ${FALLBACK}`,
    },
  ],
  [
    "falls back when both helpers are missing",
    { newuidmap: null, newgidmap: null },
    {
      mode: "single",
      ...SINGLE,
      warning: "newuidmap and newgidmap not found: install the uidmap package (apt-get install " +
        `uidmap; shadow-utils on Fedora); ${FALLBACK}`,
    },
  ],
  [
    "falls back when the user has no subuid range, suggesting a free one",
    { subuidText: "bob:100000:65536\n" },
    {
      mode: "single",
      ...SINGLE,
      warning: 'no subordinate uid range for "alice" in /etc/subuid: add one (usermod ' +
        `--add-subuids 165536-231071 alice); ${FALLBACK}`,
    },
  ],
  [
    "falls back when /etc/subgid is absent, naming the path it was given",
    { subgidText: null, subgidPath: "/etc/test-subgid" },
    {
      mode: "single",
      ...SINGLE,
      warning: 'no subordinate gid range for "alice" in /etc/test-subgid: add one (usermod ' +
        `--add-subgids 165536-231071 alice); ${FALLBACK}`,
    },
  ],
  [
    "names every missing piece in one line",
    { newgidmap: null, subuidText: "", subgidText: null },
    {
      mode: "single",
      ...SINGLE,
      warning: "newgidmap not found: install the uidmap package (apt-get install uidmap; " +
        'shadow-utils on Fedora); no subordinate uid or gid range for "alice" in /etc/subuid ' +
        "and /etc/subgid: add them (usermod --add-subuids 100000-165535 --add-subgids " +
        `100000-165535 alice); ${FALLBACK}`,
    },
  ],
];
for (const [what, change, want] of PLAN_CASES) {
  Deno.test(`planIdMapping() ${what}`, () => {
    const got = planIdMapping({ ...BASE, ...change });
    assert.deepEqual(got, want);
    if (got.warning) assert.ok(!got.warning.includes("\n"), "the warning is one line");
  });
}

Deno.test("planIdMapping() caps the map at the kernel's 340 lines and says so", () => {
  const lines = Array.from({ length: 400 }, (_, i) => `alice:${100000 + i * 10}:5`).join("\n");
  const got = planIdMapping({ ...BASE, subuidText: lines });
  assert.equal(got.mode, "subordinate");
  assert.equal(got.uid.length, 340);
  assert.match(got.warning ?? "", /more than 339 subordinate ranges for "alice"/);
});

const FORMAT_CASES: [string, IdRange[], string][] = [
  ["no ranges", [], ""],
  ["the single mapping", [{ inside: 0, outside: 1000, count: 1 }], "0 1000 1\n"],
  [
    "a subordinate mapping",
    [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }],
    "0 1000 1\n1 100000 65536\n",
  ],
];
for (const [what, ranges, text] of FORMAT_CASES) {
  Deno.test(`formatIdMap() writes ${what}`, () => {
    assert.equal(formatIdMap(ranges), text);
  });
}

const MAP: IdRange[] = [
  { inside: 0, outside: 1000, count: 1 },
  { inside: 1, outside: 100000, count: 65536 },
  { inside: 65537, outside: 300000, count: 10 },
];
const MAP_CASES: [string, number, number | null][] = [
  ["root inside is the user", 0, 1000],
  ["uid 1 is the first subordinate id", 1, 100000],
  ["a file written by uid 1000 inside belongs to 100999", 1000, 100999],
  ["the last id of the first range", 65536, 165535],
  ["the next range continues the inside ids", 65537, 300000],
  ["the last mapped id", 65546, 300009],
  ["past the end is unmapped", 65547, null],
];
for (const [what, inside, host] of MAP_CASES) {
  Deno.test(`mapToHost() and mapToContainer(): ${what}`, () => {
    assert.equal(mapToHost(inside, MAP), host);
    if (host !== null) assert.equal(mapToContainer(host, MAP), inside);
  });
}
Deno.test("mapToContainer() returns null for host ids outside every range", () => {
  assert.equal(mapToContainer(999, MAP), null);
  assert.equal(mapToContainer(165536, MAP), null);
});

async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "trun-idmap-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function writeScript(path: string, body: string): void {
  Deno.writeTextFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  Deno.chmodSync(path, 0o755); // the umask may have cleared bits
}

Deno.test("findExecutable() skips relative entries and non-executables, then tries /usr/sbin", async () => {
  await withTempDir((root) => {
    for (const d of ["/a", "/b", "/usr/sbin"]) Deno.mkdirSync(`${root}${d}`, { recursive: true });
    Deno.writeTextFileSync(`${root}/a/tool`, "not executable", { mode: 0o644 });
    Deno.chmodSync(`${root}/a/tool`, 0o644);
    writeScript(`${root}/b/tool`, "true");
    writeScript(`${root}/usr/sbin/other`, "true");
    assert.equal(findExecutable("tool", "relative:/a:/b", root), "/b/tool");
    assert.equal(findExecutable("other", "/a:/b", root), "/usr/sbin/other");
    assert.equal(findExecutable("missing", "/a:/b", root), null);
  });
});

Deno.test("userNameFromPasswd() finds the uid's login name", () => {
  const passwd = "root:x:0:0::/root:/bin/sh\ntrundev:x:1001:1001::/home/trundev:/bin/bash\n";
  assert.equal(userNameFromPasswd(passwd, 1001), "trundev");
  assert.equal(userNameFromPasswd(passwd, 0), "root");
  assert.equal(userNameFromPasswd(passwd, 100), null);
});

Deno.test("currentUserName() prefers /etc/passwd, then USER, then LOGNAME, then the uid", async () => {
  await withTempDir((dir) => {
    const passwdPath = `${dir}/passwd`;
    Deno.writeTextFileSync(passwdPath, "alice:x:1000:1000::/home/alice:/bin/sh\n");
    const env = { USER: "wrong", LOGNAME: "wrong" };
    assert.equal(currentUserName(1000, { passwdPath, env }), "alice");
    assert.equal(currentUserName(1002, { passwdPath, env: { USER: "bob" } }), "bob");
    assert.equal(currentUserName(1002, { passwdPath, env: { LOGNAME: "carol" } }), "carol");
    assert.equal(currentUserName(1002, { passwdPath: `${dir}/absent`, env: {} }), "1002");
  });
});

Deno.test("loadIdMapping() reads the files and finds the helpers on PATH", async () => {
  await withTempDir((dir) => {
    Deno.mkdirSync(`${dir}/bin`);
    writeScript(`${dir}/bin/newuidmap`, "true");
    writeScript(`${dir}/bin/newgidmap`, "true");
    Deno.writeTextFileSync(`${dir}/subuid`, "alice:200000:65536\n");
    Deno.writeTextFileSync(`${dir}/subgid`, "1000:300000:65536\n");
    Deno.writeTextFileSync(`${dir}/passwd`, "alice:x:1000:1000::/home/alice:/bin/sh\n");
    const got = loadIdMapping({
      subuidPath: `${dir}/subuid`,
      subgidPath: `${dir}/subgid`,
      passwdPath: `${dir}/passwd`,
      pathEnv: `${dir}/bin`,
      uid: 1000,
      gid: 1000,
    });
    assert.equal(got.mode, "subordinate");
    assert.deepEqual(got.uid[1], { inside: 1, outside: 200000, count: 65536 });
    assert.deepEqual(got.gid[1], { inside: 1, outside: 300000, count: 65536 });
    assert.deepEqual(got.helpers, {
      newuidmap: `${dir}/bin/newuidmap`,
      newgidmap: `${dir}/bin/newgidmap`,
    });
  });
});

Deno.test("loadIdMapping() gives root host mode without reading the files", () => {
  const got = loadIdMapping({ uid: 0, gid: 0, subuidPath: "/nonexistent/subuid" });
  assert.equal(got.mode, "host");
  assert.equal(got.warning, undefined);
});

/** A fake /proc/PID with empty map files, as the kernel shows them before the parent writes. */
function fakeProc(root: string, pid: number): string {
  const dir = `${root}/${pid}`;
  Deno.mkdirSync(dir, { recursive: true });
  for (const f of ["uid_map", "gid_map", "setgroups"]) Deno.writeTextFileSync(`${dir}/${f}`, "");
  return dir;
}

Deno.test("writeIdMaps() in single mode writes uid_map, setgroups deny, then gid_map", async () => {
  await withTempDir(async (root) => {
    const dir = fakeProc(root, 4242);
    await writeIdMaps(4242, planIdMapping({ ...BASE, newuidmap: null }), { procRoot: root });
    assert.equal(Deno.readTextFileSync(`${dir}/uid_map`), "0 1000 1\n");
    assert.equal(Deno.readTextFileSync(`${dir}/setgroups`), "deny");
    assert.equal(Deno.readTextFileSync(`${dir}/gid_map`), "0 1000 1\n");
  });
});

Deno.test("writeIdMaps() in single mode writes no gid_map when setgroups fails", async () => {
  await withTempDir(async (root) => {
    const dir = fakeProc(root, 7);
    Deno.removeSync(`${dir}/setgroups`);
    Deno.mkdirSync(`${dir}/setgroups`); // writing to a directory fails (EISDIR)
    const mapping = planIdMapping({ ...BASE, newuidmap: null });
    await assert.rejects(
      writeIdMaps(7, mapping, { procRoot: root }),
      /Cannot write ".*\/7\/setgroups"/,
    );
    assert.equal(Deno.readTextFileSync(`${dir}/uid_map`), "0 1000 1\n");
    assert.equal(Deno.readTextFileSync(`${dir}/gid_map`), "");
  });
});

Deno.test("writeIdMaps() says the process exited when its /proc entry is gone", async () => {
  await withTempDir(async (root) => {
    const mapping = planIdMapping({ ...BASE, newuidmap: null });
    await assert.rejects(
      writeIdMaps(99, mapping, { procRoot: root }),
      /uid_map".*process 99 exited before its id maps were written/,
    );
  });
});

Deno.test("writeIdMaps() in host mode writes nothing", async () => {
  await withTempDir(async (root) => {
    await writeIdMaps(5, planIdMapping({ ...BASE, uid: 0, gid: 0 }), { procRoot: root });
    assert.deepEqual([...Deno.readDirSync(root)], []);
  });
});

Deno.test("writeIdMaps() in subordinate mode passes each range to newuidmap and newgidmap", async () => {
  await withTempDir(async (dir) => {
    for (const h of ["newuidmap", "newgidmap"]) {
      writeScript(`${dir}/${h}`, `echo "$@" > "${dir}/${h}.args"`);
    }
    const mapping = planIdMapping({
      ...BASE,
      subuidText: "alice:100000:65536\nalice:300000:10\n",
      subgidText: "alice:200000:5\n",
      newuidmap: `${dir}/newuidmap`,
      newgidmap: `${dir}/newgidmap`,
    });
    await writeIdMaps(321, mapping);
    assert.equal(
      Deno.readTextFileSync(`${dir}/newuidmap.args`),
      "321 0 1000 1 1 100000 65536 65537 300000 10\n",
    );
    assert.equal(Deno.readTextFileSync(`${dir}/newgidmap.args`), "321 0 1000 1 1 200000 5\n");
  });
});

const HELPER_FAILURES: [string, string, RegExp][] = [
  [
    "a range the user does not own",
    "newuidmap: uid range [1-65537) -> [300000-365536) not allowed",
    /not allowed: the ranges must be listed for this user in \/etc\/subuid/,
  ],
  [
    "a helper without setuid or file caps",
    "newuidmap: write to uid_map failed: Operation not permitted",
    /Operation not permitted: .*newuidmap needs the setuid bit or the cap_setuid file capability \(chmod u\+s/,
  ],
  [
    "a child that already exited",
    "newuidmap: Could not open proc directory for target 55",
    /process 55 exited before its id maps were written/,
  ],
];
for (const [what, stderr, hint] of HELPER_FAILURES) {
  Deno.test(`writeIdMaps() reports the helper's stderr and a hint for ${what}`, async () => {
    await withTempDir(async (dir) => {
      writeScript(`${dir}/newuidmap`, `echo '${stderr}' >&2; exit 1`);
      writeScript(`${dir}/newgidmap`, "true");
      const mapping = planIdMapping({
        ...BASE,
        newuidmap: `${dir}/newuidmap`,
        newgidmap: `${dir}/newgidmap`,
      });
      const err = await writeIdMaps(55, mapping).then(() => null, (e: Error) => e);
      assert.ok(err instanceof Error, "writeIdMaps must reject");
      assert.ok(
        err.message.startsWith(
          `${dir}/newuidmap 55 0 1000 1 1 100000 65536 failed (exit status 1): `,
        ),
      );
      assert.ok(err.message.includes(stderr), err.message);
      assert.match(err.message, hint);
    });
  });
}

Deno.test("writeIdMaps() says to install uidmap when the helper cannot be run", async () => {
  const mapping: IdMapping = {
    ...planIdMapping(BASE),
    helpers: { newuidmap: "/nonexistent/newuidmap", newgidmap: "/nonexistent/newgidmap" },
  };
  await assert.rejects(
    writeIdMaps(1, mapping),
    /Cannot run "\/nonexistent\/newuidmap": .*install the uidmap package/,
  );
});

Deno.test("idMapMatches() compares a /proc uid_map text with the mapping trun writes", () => {
  const m: IdMapping = {
    mode: "subordinate",
    uid: [{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 100000, count: 65536 }],
    gid: [{ inside: 0, outside: 1001, count: 1 }],
  };
  const proc = "         0       1001          1\n         1     100000      65536\n";
  assert.equal(idMapMatches(proc, m, "uid"), true);
  assert.equal(idMapMatches("0 1001 1\n", m, "uid"), false);
  assert.equal(idMapMatches("0 1001 1\n", m, "gid"), true);
  const host: IdMapping = { mode: "host", uid: [], gid: [] };
  assert.equal(idMapMatches("         0          0 4294967295\n", host, "uid"), true);
  assert.equal(idMapMatches(proc, host, "uid"), false);
});

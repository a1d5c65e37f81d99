/**
 * Where containers' cgroups go and what `run` says about limits, against
 * fake cgroupfs trees in temp dirs: pure cgroup v2 with systemd
 * delegation, hybrid, v1 only, a controller not delegated, a delegated
 * root holding processes, no delegation, root. The trees give the probed
 * user (uid 4242, not the files' owner) access through the "other" mode
 * bits: 0777 directories and 0666 `cgroup.procs` are delegated, 0755/0644
 * are not.
 */
import assert from "node:assert/strict";
import { cgroupPlacement, type CgroupReport, decideCgroup } from "../../lib/host/cgroup.ts";
import { type CgroupView, planPlacement } from "../../lib/engine/cgroup.ts";
import { FLAGS_OF_FILE } from "../../lib/spec/resources.ts";

const USER = { uid: 4242, groups: [4242] };
const PURE = { root: "/", mountPoint: "/sys/fs/cgroup" };
const SCOPE = "/user.slice/user-4242.slice/user@4242.service/app.slice/run-r1.scope";

/** A fake cgroup: its controllers, enabled controllers, processes, and whether the user may write it. */
interface FakeCgroup {
  controllers?: string;
  enabled?: string;
  procs?: string;
  delegated?: boolean;
}

/** Builds a fake tree under a temp dir: `cgroups` by hierarchy path on `mountPoint`. */
function fakeTree(mountPoint: string, cgroups: Record<string, FakeCgroup>): string {
  const root = Deno.makeTempDirSync({ prefix: "trun-cgtree-" });
  for (const [path, c] of Object.entries(cgroups)) {
    const dir = `${root}${mountPoint}${path === "/" ? "" : path}`;
    Deno.mkdirSync(dir, { recursive: true });
    Deno.chmodSync(dir, c.delegated ? 0o777 : 0o755);
    Deno.writeTextFileSync(`${dir}/cgroup.controllers`, `${c.controllers ?? ""}\n`);
    Deno.writeTextFileSync(`${dir}/cgroup.subtree_control`, `${c.enabled ?? ""}\n`);
    Deno.writeTextFileSync(`${dir}/cgroup.procs`, c.procs ?? "");
    Deno.chmodSync(`${dir}/cgroup.procs`, c.delegated ? 0o666 : 0o644);
  }
  return root;
}

/** The systemd layout: user@4242.service delegated with cpu, memory and pids, a scope holding processes. */
function systemdTree(scope: FakeCgroup = {}): string {
  const all = "cpu memory pids";
  return fakeTree("/sys/fs/cgroup", {
    "/": { controllers: `cpuset ${all} io`, enabled: `cpuset ${all} io`, procs: "1\n" },
    "/user.slice": { controllers: `${all} io`, enabled: all },
    "/user.slice/user-4242.slice": { controllers: all, enabled: all },
    "/user.slice/user-4242.slice/session-3.scope": { controllers: all, procs: "900\n" },
    "/user.slice/user-4242.slice/user@4242.service": {
      controllers: all,
      enabled: all,
      delegated: true,
    },
    "/user.slice/user-4242.slice/user@4242.service/app.slice": {
      controllers: all,
      enabled: all,
      delegated: true,
    },
    [SCOPE]: { controllers: all, procs: "1000\n1001\n", delegated: true, ...scope },
  });
}

Deno.test("cgroupPlacement() on pure v2 with systemd: the own scope is the delegated root", () => {
  const root = systemdTree();
  try {
    const p = cgroupPlacement(root, USER, PURE, SCOPE)!;
    assert.equal(p.delegated, SCOPE);
    assert.equal(p.parent, `${SCOPE}/trun`);
    assert.deepEqual(p.controllers, ["cpu", "memory", "pids"]);
    assert.equal(p.holdsProcesses, true);
    // A trun started from the leaf it moved processes to finds the same root.
    assert.equal(cgroupPlacement(root, USER, PURE, `${SCOPE}/trun-init`)?.delegated, SCOPE);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("cgroupPlacement() from a session scope that is not delegated: none", () => {
  const root = systemdTree();
  try {
    const own = "/user.slice/user-4242.slice/session-3.scope";
    assert.equal(cgroupPlacement(root, USER, PURE, own), null);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("cgroupPlacement() as root: the hierarchy's root, as Docker's /docker", () => {
  const root = systemdTree();
  try {
    const p = cgroupPlacement(root, { uid: 0, groups: [0] }, PURE, SCOPE)!;
    assert.equal(p.delegated, "/");
    assert.equal(p.parent, "/trun");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("cgroupPlacement() on a hybrid host: the delegated cgroup on /sys/fs/cgroup/unified", () => {
  const root = fakeTree("/sys/fs/cgroup/unified", {
    "/": { controllers: "hugetlb", procs: "1\n" },
    "/trun-ci.x": { procs: "77\n", delegated: true },
  });
  try {
    const mount = { root: "/", mountPoint: "/sys/fs/cgroup/unified" };
    const p = cgroupPlacement(root, USER, mount, "/trun-ci.x")!;
    assert.equal(p.delegated, "/trun-ci.x");
    assert.deepEqual(p.controllers, []);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

/** A view of a fake tree for the engine's planner. */
function view(root: string, delegated: string | null, own = SCOPE): CgroupView {
  return { root, mount: PURE, own, delegated };
}

Deno.test("planPlacement() moves a delegated root's processes to a leaf before enabling controllers", () => {
  const root = systemdTree();
  try {
    const steps = planPlacement(view(root, SCOPE), `${SCOPE}/trun/c1`, 4321, ["memory.max"]);
    assert.deepEqual(steps, [
      { op: "mkdir", path: `${SCOPE}/trun-init` },
      { op: "move", from: SCOPE, to: `${SCOPE}/trun-init`, pids: [1000, 1001] },
      { op: "enable", path: SCOPE, controllers: ["cpu", "memory", "pids"] },
      { op: "mkdir", path: `${SCOPE}/trun` },
      { op: "enable", path: `${SCOPE}/trun`, controllers: ["cpu", "memory", "pids"] },
      { op: "mkdir", path: `${SCOPE}/trun/c1` },
      { op: "join", path: `${SCOPE}/trun/c1`, pid: 4321 },
    ]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("planPlacement() with the controllers already enabled only makes the leaf and joins", () => {
  const root = systemdTree({ enabled: "cpu memory pids", procs: "" });
  try {
    Deno.mkdirSync(`${root}/sys/fs/cgroup${SCOPE}/trun`);
    Deno.writeTextFileSync(
      `${root}/sys/fs/cgroup${SCOPE}/trun/cgroup.controllers`,
      "cpu memory pids",
    );
    Deno.writeTextFileSync(
      `${root}/sys/fs/cgroup${SCOPE}/trun/cgroup.subtree_control`,
      "cpu memory pids",
    );
    const steps = planPlacement(view(root, SCOPE), `${SCOPE}/trun/c1`, 9, ["pids.max"]);
    assert.deepEqual(steps, [
      { op: "mkdir", path: `${SCOPE}/trun/c1` },
      { op: "join", path: `${SCOPE}/trun/c1`, pid: 9 },
    ]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("planPlacement() never moves processes of a cgroup that is not the delegated root", () => {
  const root = systemdTree();
  try {
    // A path given by another engine (`trun runtime`), outside trun's delegated root.
    const session = "/user.slice/user-4242.slice/session-3.scope";
    const steps = planPlacement(view(root, null, session), `${session}/ctr`, 5, ["memory.max"]);
    assert.deepEqual(steps, [
      { op: "mkdir", path: `${session}/ctr` },
      { op: "join", path: `${session}/ctr`, pid: 5 },
    ]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("planPlacement() as root enables at the hierarchy's root without moving anything", () => {
  const root = fakeTree("/sys/fs/cgroup", {
    "/": { controllers: "cpuset cpu io memory pids", enabled: "memory", procs: "1\n2\n" },
  });
  try {
    const steps = planPlacement(view(root, "/", "/"), "/trun/c2", 7, ["cpuset.cpus"]);
    assert.deepEqual(steps, [
      { op: "enable", path: "/", controllers: ["cpu", "io", "pids", "cpuset"] },
      { op: "mkdir", path: "/trun" },
      { op: "enable", path: "/trun", controllers: ["cpu", "io", "memory", "pids", "cpuset"] },
      { op: "mkdir", path: "/trun/c2" },
      { op: "join", path: "/trun/c2", pid: 7 },
    ]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

/** A probe report with the parts decideCgroup reads. */
function report(over: Partial<CgroupReport>): CgroupReport {
  return {
    version: "v2",
    v2Mount: "/sys/fs/cgroup",
    v2MountRoot: "/",
    v1Controllers: [],
    ownCgroup: SCOPE,
    controllers: [],
    subtreeControl: [],
    writable: true,
    userServiceCgroup: null,
    delegated: SCOPE,
    containerParent: `${SCOPE}/trun`,
    delegatedControllers: ["cpu", "memory", "pids"],
    ...over,
  };
}

const flagOf = (f: string) => FLAGS_OF_FILE[f] ?? f;
const decide = (r: CgroupReport, mode: "enabled" | "disabled" | "required", files: string[]) =>
  decideCgroup(r, mode, files, flagOf, "alice", 4242);

Deno.test("decideCgroup() with everything delegated: the trun sub-tree, no warning", () => {
  assert.deepEqual(decide(report({}), "enabled", ["memory.max", "cpu.max", "pids.max"]), {
    parent: `${SCOPE}/trun`,
    parentDir: `/sys/fs/cgroup${SCOPE}/trun`,
  });
});

Deno.test("decideCgroup() with a controller not delegated: one warning naming it and the drop-in", () => {
  const d = decide(report({ delegatedControllers: ["memory", "pids"] }), "enabled", [
    "memory.max",
    "cpu.max",
    "cpu.weight",
  ]);
  assert.equal(d.parent, `${SCOPE}/trun`);
  assert.match(
    d.warning!,
    /^--cpus, --cpu-shares cannot be enforced: the cgroup \/user\.slice\/.*run-r1\.scope offers no cpu controller \(it offers: memory, pids\); .*Delegate=cpu cpuset io memory pids.*; the container runs without them$/,
  );
  assert.match(
    decide(report({ delegatedControllers: [] }), "required", ["cpu.max"]).error!,
    /^--cgroups=required: --cpus cannot be enforced/,
  );
});

Deno.test("decideCgroup() on a hybrid host names the v1 controllers and the boot option", () => {
  const d = decide(
    report({
      version: "hybrid",
      v2Mount: "/sys/fs/cgroup/unified",
      delegated: "/trun-ci.x",
      containerParent: "/trun-ci.x/trun",
      delegatedControllers: [],
    }),
    "enabled",
    ["memory.max", "memory.swap.max"],
  );
  assert.equal(d.parentDir, "/sys/fs/cgroup/unified/trun-ci.x/trun");
  assert.match(
    d.warning!,
    /^--memory, --memory-swap cannot be enforced: .* offers no memory controller \(it offers: none\); this host's cgroup v2 is hybrid, .*systemd\.unified_cgroup_hierarchy=1/,
  );
});

Deno.test("decideCgroup() on a v1-only host: no cgroup, one warning, required refuses", () => {
  const v1 = report({ version: "v1", v2Mount: null, delegated: null, containerParent: null });
  assert.deepEqual(decide(v1, "enabled", []), {});
  assert.match(
    decide(v1, "enabled", ["pids.max"]).warning!,
    /^--pids-limit cannot be enforced: this host has only cgroup v1 .*; the container runs without it$/,
  );
  assert.match(
    decide(v1, "required", []).error!,
    /^--cgroups=required: the container cannot get a cgroup: this host has only cgroup v1/,
  );
});

Deno.test("decideCgroup() without delegation points at a delegated scope and enable-linger", () => {
  const none = report({ writable: false, delegated: null, containerParent: null });
  const d = decide(none, "enabled", ["memory.max"]);
  assert.equal(d.parent, undefined);
  assert.match(
    d.warning!,
    /no cgroup v2 subtree is delegated to alice .*systemd-run --user --scope -p Delegate=yes.*loginctl enable-linger alice/,
  );
});

Deno.test("decideCgroup() with --cgroups=disabled: no cgroup, and limits are refused", () => {
  assert.deepEqual(decide(report({}), "disabled", []), {});
  assert.match(
    decide(report({}), "disabled", ["memory.max"]).error!,
    /--cgroups=disabled cannot be combined with --memory/,
  );
});

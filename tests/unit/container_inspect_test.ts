/**
 * Unit tests of container inspect (lib/cli/container_inspect.ts and the
 * commands in lib/cli/inspect.ts): Docker's document for each status, what
 * the container directory adds, and `trun inspect` / `trun container
 * inspect` on a temporary store (lookup order, --type, --format, errors).
 */
import assert from "node:assert/strict";
import {
  type ContainerFacts,
  containerFacts,
  inspectContainer,
  ZERO_TIME,
} from "../../lib/cli/container_inspect.ts";
import { containerInspectCommand, inspectCommand } from "../../lib/cli/inspect.ts";
import { UsageError } from "../../lib/cli/args.ts";
import { openStore } from "../../lib/store/mod.ts";
import { hostConfigResources } from "../../lib/spec/resources.ts";
import type { ContainerStatus } from "../../lib/container/status.ts";
import { capture, cid, containerRecord, IMAGE_ID, withRecords } from "./_container_records.ts";

const DIR = "/s/containers/x";
const FACTS: ContainerFacts = {
  dir: DIR,
  lowers: ["/s/layers/top", "/s/layers/base"],
  etcFiles: [],
};

Deno.test("inspectContainer() has Docker's keys in Docker's order", () => {
  const rec = containerRecord({ id: cid("ab"), name: "web" });
  assert.deepEqual(Object.keys(inspectContainer(rec, "created", FACTS)), [
    "Id",
    "Created",
    "Path",
    "Args",
    "State",
    "Image",
    "ResolvConfPath",
    "HostnamePath",
    "HostsPath",
    "LogPath",
    "Name",
    "RestartCount",
    "Driver",
    "Platform",
    "HostConfig",
    "GraphDriver",
    "Mounts",
    "Config",
    "NetworkSettings",
  ]);
});

const STARTED = "2024-01-01T11:00:00.000Z";
const FINISHED = "2024-01-01T11:30:00.000Z";
const STATES: [ContainerStatus, Parameters<typeof containerRecord>[0], Record<string, unknown>][] =
  [
    ["created", { id: cid("a1"), name: "c" }, {
      Status: "created",
      Running: false,
      Pid: 0,
      ExitCode: 0,
      Error: "",
      StartedAt: ZERO_TIME,
      FinishedAt: ZERO_TIME,
    }],
    ["running", { id: cid("a2"), name: "r", pid: 4242, startedAt: STARTED }, {
      Status: "running",
      Running: true,
      Pid: 4242,
      ExitCode: 0,
      Error: "",
      StartedAt: STARTED,
      FinishedAt: ZERO_TIME,
    }],
    // The pid stays in the record after the exit: inspect shows 0, as Docker.
    ["exited", {
      id: cid("a3"),
      name: "e",
      pid: 4242,
      startedAt: STARTED,
      finishedAt: FINISHED,
      exitCode: 137,
    }, {
      Status: "exited",
      Running: false,
      Pid: 0,
      ExitCode: 137,
      Error: "",
      StartedAt: STARTED,
      FinishedAt: FINISHED,
    }],
    ["exited", { id: cid("a4"), name: "f", exitCode: 127, error: 'exec: "nope" not found' }, {
      Status: "exited",
      Running: false,
      Pid: 0,
      ExitCode: 127,
      Error: 'exec: "nope" not found',
      StartedAt: ZERO_TIME,
      FinishedAt: ZERO_TIME,
    }],
    ["removing", { id: cid("a5"), name: "g" }, {
      Status: "removing",
      Running: false,
      Pid: 0,
      ExitCode: 0,
      Error: "",
      StartedAt: ZERO_TIME,
      FinishedAt: ZERO_TIME,
    }],
  ];
for (const [status, over, want] of STATES) {
  Deno.test(`inspectContainer() State of a ${status} container "${over.name}"`, () => {
    const out = inspectContainer(containerRecord(over), status, FACTS);
    assert.deepEqual(out.State, {
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      ...want,
    });
    assert.deepEqual(Object.keys(out.State as object).slice(0, 6), [
      "Status",
      "Running",
      "Paused",
      "Restarting",
      "OOMKilled",
      "Dead",
    ]);
  });
}

Deno.test("inspectContainer() fills Config, HostConfig, GraphDriver from the record and facts", () => {
  const rec = containerRecord({
    id: cid("abcdef"),
    name: "web",
    image: "nginx:1.25",
    command: ["nginx", "-g", "daemon off;"],
    labels: { a: "1" },
    tty: true,
    autoRemove: true,
    stopSignal: "SIGQUIT",
    stopTimeout: 3,
  });
  const out = inspectContainer(rec, "created", FACTS);
  assert.equal(out.Id, rec.id);
  assert.equal(out.Name, "/web");
  assert.equal(out.Image, IMAGE_ID);
  assert.equal(out.Path, "nginx");
  assert.deepEqual(out.Args, ["-g", "daemon off;"]);
  assert.equal(out.RestartCount, 0);
  assert.equal(out.LogPath, `${DIR}/userdata/ctr.log`);
  assert.equal(out.HostsPath, "");
  assert.deepEqual(out.HostConfig, {
    Binds: null,
    NetworkMode: "host",
    Dns: [],
    DnsOptions: [],
    DnsSearch: [],
    ExtraHosts: null,
    AutoRemove: true,
    RestartPolicy: { Name: "no", MaximumRetryCount: 0 },
    ...hostConfigResources(undefined),
    PortBindings: {},
  });
  const joined = { ...rec, network: { mode: `container:${cid("peer")}` } };
  assert.equal(
    (inspectContainer(joined, "created", FACTS).HostConfig as Record<string, unknown>).NetworkMode,
    `container:${cid("peer")}`,
  );
  const named = {
    ...rec,
    network: {
      mode: "none",
      names: {
        dns: ["1.1.1.1"],
        dnsSearch: ["a.org"],
        dnsOptions: ["ndots:2"],
        extraHosts: ["db:10.0.0.5"],
      },
    },
  };
  const hc = inspectContainer(named, "created", FACTS).HostConfig as Record<string, unknown>;
  assert.deepEqual(
    [hc.NetworkMode, hc.Dns, hc.DnsSearch, hc.DnsOptions, hc.ExtraHosts],
    ["none", ["1.1.1.1"], ["a.org"], ["ndots:2"], ["db:10.0.0.5"]],
  );
  assert.deepEqual(out.Mounts, []);
  assert.deepEqual(out.NetworkSettings, { Ports: {} });
  assert.deepEqual(out.GraphDriver, {
    Data: {
      LowerDir: "/s/layers/top:/s/layers/base",
      MergedDir: `${DIR}/merged`,
      UpperDir: `${DIR}/upper`,
      WorkDir: `${DIR}/work`,
    },
    Name: "overlay",
  });
  assert.deepEqual(out.Config, {
    Hostname: "abcdef000000",
    Domainname: "",
    User: "",
    Tty: true,
    Env: null,
    Cmd: ["nginx", "-g", "daemon off;"],
    Image: "nginx:1.25",
    Volumes: null,
    WorkingDir: "",
    Entrypoint: null,
    OnBuild: null,
    Labels: { a: "1" },
    StopSignal: "SIGQUIT",
    StopTimeout: 3,
  });
  const sized = inspectContainer(rec, "created", { ...FACTS, size: { rw: 5, rootFs: 105 } });
  assert.equal(sized.SizeRw, 5);
  assert.equal(sized.SizeRootFs, 105);
  assert.deepEqual(Object.keys(sized).slice(15, 18), ["GraphDriver", "SizeRw", "SizeRootFs"]);
});

Deno.test("containerFacts() reads the bundle, the layer list and the etc files", async () => {
  const rec = containerRecord({ id: cid("f0"), name: "web" });
  await withRecords([rec], async (root) => {
    const store = openStore(root);
    try {
      const dir = store.containerDir(rec.id);
      // Nothing written yet: the image is not stored either, lowers stay unknown.
      const volumesDir = `${root}/volumes`;
      assert.deepEqual(containerFacts(store, rec), { dir, lowers: [], etcFiles: [], volumesDir });
      await Deno.mkdir(`${dir}/userdata/etc`, { recursive: true });
      await Deno.mkdir(`${dir}/upper`);
      await Deno.writeTextFile(`${dir}/upper/f`, "12345");
      await Deno.writeTextFile(`${dir}/userdata/etc/hosts`, "");
      await Deno.writeTextFile(
        `${dir}/userdata/rootfs.json`,
        JSON.stringify({ lowers: ["/l/top", "/l/base"], lowerdirAppend: false }),
      );
      await Deno.writeTextFile(
        `${dir}/userdata/config.json`,
        JSON.stringify({
          hostname: "f00000000000",
          process: { env: ["PATH=/bin"], cwd: "/srv", user: { uid: 1000, gid: 100 } },
        }),
      );
      const facts = containerFacts(store, rec, { size: true });
      assert.deepEqual(facts, {
        dir,
        lowers: ["/l/top", "/l/base"],
        env: ["PATH=/bin"],
        workingDir: "/srv",
        hostname: "f00000000000",
        user: "1000:100",
        etcFiles: ["hosts"],
        size: { rw: 5, rootFs: 5 },
        volumesDir,
      });
      const out = inspectContainer(rec, "created", facts);
      assert.equal(out.HostsPath, `${dir}/userdata/etc/hosts`);
      assert.equal((out.Config as { WorkingDir: string }).WorkingDir, "/srv");
      // A container in another's network shows that one's files, and its own domain name.
      await Deno.remove(`${dir}/userdata/etc/hosts`);
      await Deno.writeTextFile(
        `${dir}/userdata/config.json`,
        JSON.stringify({
          hostname: "peerhost",
          domainname: "example.org",
          mounts: [
            { destination: "/etc/hosts", type: "bind", source: "/s/peer/userdata/etc/hosts" },
            { destination: "/etc/passwd", type: "bind", source: "/elsewhere" },
          ],
        }),
      );
      const joined = { ...rec, network: { mode: `container:${cid("e0")}` } };
      const shared = inspectContainer(joined, "running", containerFacts(store, joined));
      assert.equal(shared.HostsPath, "/s/peer/userdata/etc/hosts");
      assert.equal(shared.ResolvConfPath, "");
      assert.equal((shared.Config as { Domainname: string }).Domainname, "example.org");
    } finally {
      store.close();
    }
  });
});

Deno.test("trun container inspect / trun inspect on a store", async () => {
  const records = [
    containerRecord({ id: cid("a7"), name: "web", state: "created" }),
    containerRecord({ id: cid("a8"), name: "job", state: "exited", exitCode: 3 }),
  ];
  await withRecords(records, async () => {
    const ci = (...argv: string[]) => capture(() => containerInspectCommand(argv));
    const one = await ci("web");
    assert.equal(one.result, 0);
    assert.match(one.stdout, /^\[\n {4}\{\n {8}"Id": "a70{62}",\n/);
    const [doc] = JSON.parse(one.stdout) as { Name: string; State: { Status: string } }[];
    assert.equal(doc!.Name, "/web");
    assert.equal(doc!.State.Status, "created");

    const pid = await ci("--format", "{{.State.Pid}} {{.State.ExitCode}} {{.Name}}", "a8", "web");
    assert.equal(pid.stdout, "0 3 /job\n0 0 /web\n");

    const fmtJson = await ci("-f", "{{json .Config.Labels}}", "web");
    assert.equal(fmtJson.stdout, "{}\n");

    const missing = await ci("web", "nosuch");
    assert.equal((JSON.parse(missing.stdout) as unknown[]).length, 1, "found ones are printed");
    assert.equal((missing.error as Error).message, "No such container: nosuch");
    assert.equal((missing.error as { exitCode?: number }).exitCode, 1);

    const ambiguous = await ci("a");
    assert.match((ambiguous.error as Error).message, /multiple containers match "a"/);

    const i = (...argv: string[]) => capture(() => inspectCommand(argv));
    assert.equal((await i("-f", "{{.Id}}", "job")).stdout, `${cid("a8")}\n`);
    assert.equal((await i("--type", "container", "-f", "{{.Name}}", "a7")).stdout, "/web\n");

    const none = await i("nosuch", "other");
    assert.equal(none.stdout, "[]\n");
    assert.equal((none.error as Error).message, "No such object: nosuch\nNo such object: other");
    assert.equal((none.error as { exitCode?: number }).exitCode, 1);

    const asImage = await i("--type", "image", "web");
    assert.equal((asImage.error as Error).message, 'No such image: "web"');

    const badType = await i("--type", "network", "web");
    assert.ok(badType.error instanceof UsageError);
    const badFormat = await ci("-f", "{{range .Args}}{{end}}", "web");
    assert.ok(badFormat.error instanceof UsageError);
  });
});

Deno.test("inspectContainer() shows binds, volumes and tmpfs as Docker's Mounts and HostConfig", () => {
  const anon = "a".repeat(64);
  const rec = containerRecord({
    id: cid("ab"),
    name: "m",
    volumes: [
      { name: "data", destination: "/data", anonymous: false },
      { name: anon, destination: "/anon", anonymous: true },
      { name: "v2", destination: "/v2", anonymous: false },
    ],
    mountFlags: {
      volume: ["/host:/h:ro", "data:/data", "/anon"],
      mount: [
        "type=bind,src=/src,dst=/b,bind-propagation=rshared",
        "type=volume,src=v2,dst=/v2,volume-nocopy",
        "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700",
      ],
      tmpfs: ["/run:size=64m", "/cache"],
    },
  });
  const out = inspectContainer(rec, "created", { ...FACTS, volumesDir: "/s/volumes" });
  assert.deepEqual(out.Mounts, [
    {
      Type: "bind",
      Source: "/host",
      Destination: "/h",
      Mode: "ro",
      RW: false,
      Propagation: "rprivate",
    },
    {
      Type: "volume",
      Name: "data",
      Source: "/s/volumes/data/_data",
      Destination: "/data",
      Mode: "z",
      RW: true,
      Driver: "local",
      Propagation: "",
    },
    {
      Type: "volume",
      Name: anon,
      Source: `/s/volumes/${anon}/_data`,
      Destination: "/anon",
      Mode: "",
      RW: true,
      Driver: "local",
      Propagation: "",
    },
    { Type: "bind", Source: "/src", Destination: "/b", Mode: "", RW: true, Propagation: "rshared" },
    {
      Type: "volume",
      Name: "v2",
      Source: "/s/volumes/v2/_data",
      Destination: "/v2",
      Mode: "",
      RW: true,
      Driver: "local",
      Propagation: "",
    },
    { Type: "tmpfs", Source: "", Destination: "/t", Mode: "", RW: true, Propagation: "" },
  ]);
  const host = out.HostConfig as Record<string, unknown>;
  assert.deepEqual(host.Binds, ["/host:/h:ro", "data:/data"]);
  assert.deepEqual(host.Tmpfs, { "/run": "size=64m", "/cache": "" });
  assert.deepEqual(host.Mounts, [
    { Type: "bind", Source: "/src", Target: "/b", BindOptions: { Propagation: "rshared" } },
    { Type: "volume", Source: "v2", Target: "/v2", VolumeOptions: { NoCopy: true } },
    { Type: "tmpfs", Target: "/t", TmpfsOptions: { SizeBytes: 1048576, Mode: 0o700 } },
  ]);
  assert.deepEqual((out.Config as Record<string, unknown>).Volumes, { "/anon": {} });
});

Deno.test("inspectContainer() shows a paused container and its limits as Docker does", () => {
  const rec = containerRecord({ id: cid("ef"), name: "p", state: "running", pid: 42 });
  const out = inspectContainer(rec, "running", {
    ...FACTS,
    paused: true,
    resources: {
      memory: { limit: 64 * 1024 * 1024 },
      cpu: { quota: 50000, period: 100000 },
      pids: { limit: 10 },
    },
  });
  const state = out.State as Record<string, unknown>;
  assert.equal(state.Status, "paused");
  assert.equal(state.Running, true);
  assert.equal(state.Paused, true);
  const host = out.HostConfig as Record<string, unknown>;
  assert.equal(host.Memory, 64 * 1024 * 1024);
  assert.equal(host.NanoCpus, 500_000_000);
  assert.equal(host.CpuQuota, 50000);
  assert.equal(host.PidsLimit, 10);
  assert.equal(host.MemorySwap, 0);
});

Deno.test("inspectContainer() shows the network mode, published ports and a dead network helper", () => {
  const rec = containerRecord({
    id: cid("beef"),
    name: "net",
    network: {
      mode: "pasta",
      ports: [{ hostIp: "127.0.0.1", hostPort: 8080, containerPort: 80, protocol: "tcp" }],
      exposed: ["80/tcp", "443/tcp"],
    },
  });
  const facts = { ...FACTS, networkProblem: "network helper pasta (pid 9) exited" };
  const out = inspectContainer(rec, "running", facts) as Record<string, Record<string, unknown>>;
  assert.equal(out.HostConfig!.NetworkMode, "pasta");
  assert.deepEqual(out.HostConfig!.PortBindings, {
    "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "8080" }],
  });
  assert.deepEqual(out.NetworkSettings, {
    Ports: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "8080" }], "443/tcp": null },
  });
  assert.deepEqual(out.Config!.ExposedPorts, { "80/tcp": {}, "443/tcp": {} });
  assert.equal(out.State!.Error, "network helper pasta (pid 9) exited");
  const stopped = inspectContainer(rec, "exited", facts) as Record<string, Record<string, unknown>>;
  assert.deepEqual(stopped.NetworkSettings, { Ports: {} });
  assert.equal(stopped.State!.Error, "");
});

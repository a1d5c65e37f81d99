/**
 * Container networking side by side with Debian's Podman 4.3 (rootless,
 * slirp4netns with rootlessport for published ports, conmon and runc; the
 * same busybox image from one local registry):
 *
 * - `run --rm IMAGE true` latency on the default network (hyperfine), and
 *   trun with `--network slirp4netns` and `--network host` for reference;
 * - TCP throughput through a published port both ways (iperf3 on the host
 *   as the client, in the container as the server, `-R` for container →
 *   host); the container gets the host's iperf3 bound in read-only;
 * - the memory (PSS, /proc/PID/smaps_rollup) of every process a detached
 *   container with `-p` brings besides its own: the network helper(s) and
 *   the monitor; the RSS of those whose PSS this user cannot read (pasta);
 * - pasta's own start, by hand on an `unshare -rn` namespace, to read the
 *   latencies beside.
 *
 *   deno task bench:network [--runs 15] [--seconds 5] [--latency-only]
 *
 * Run it as the unprivileged user the containers are for, with TMPDIR on
 * a fresh file system (`scripts/bench_fs.sh`): the stores live there, and
 * on a /tmp worn by many deleted files every `run` slows (Podman's more
 * than trun's: 916 against 470 ms). Numbers are reported, never asserted.
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.
import { startFixtureRegistry } from "../tests/_harness/registry.ts";
import { podmanSandbox, podmanTools, shellQuote } from "../tests/_harness/podman.ts";
import { findTool } from "../tests/_harness/host.ts";

const args = Deno.args;
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) || dflt : dflt;
};
const runs = flag("--runs", 15);
const seconds = flag("--seconds", 5);
// Only the `run --rm` latency: no throughput or memory runs.
const latencyOnly = args.includes("--latency-only");
const main = new URL("../main.ts", import.meta.url).pathname;
const deno = Deno.execPath();
const dec = new TextDecoder();

/** Runs a command; its stdout, or an error with its stderr. */
async function sh(cmd: string, env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", cmd], env, stdin: "null" }).output();
  if (!out.success) throw new Error(`${cmd}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout).trim();
}

/** PSS (kB) of `pid` from smaps_rollup; null when unreadable (pasta makes itself non-dumpable). */
function pss(pid: number): number | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    return Number(text.match(/^Pss:\s+(\d+) kB/m)?.[1] ?? 0);
  } catch {
    return null;
  }
}

/**
 * Resident memory (kB) of `pid` from /proc/PID/status, which stays
 * readable when smaps_rollup does not (a non-dumpable process's): an upper
 * bound of its PSS, close to it for a process whose memory is its own
 * (pasta's is almost all private anonymous packet buffers).
 */
function rss(pid: number): number | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = text.match(/^VmRSS:\s+(\d+) kB/m)?.[1];
    return kb === undefined ? null : Number(kb);
  } catch {
    return null;
  }
}

/**
 * pasta's own start, as Podman waits for it: from its exec to the exit of
 * its first process (it forks to the background once the namespace is
 * configured and its tables are ready), on a fresh `unshare -rn` namespace;
 * the median of `n`, in ms. It varies between machines (40 to 120 ms seen),
 * so the latencies above are read beside it. null without pasta or unshare.
 */
async function pastaStart(n: number): Promise<number | null> {
  const pasta = await findTool("pasta");
  const unshare = await findTool("unshare");
  if (!pasta || !unshare) return null;
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const holder = new Deno.Command(unshare, {
      args: ["-rn", "sleep", "30"],
      stdin: "null",
      stdout: "null",
    }).spawn();
    const own = Deno.readLinkSync("/proc/self/ns/net");
    const nsOf = () => {
      try {
        return Deno.readLinkSync(`/proc/${holder.pid}/ns/net`);
      } catch {
        return own;
      }
    };
    while (nsOf() === own) await new Promise((r) => setTimeout(r, 2));
    const pidFile = `${Deno.makeTempDirSync({ prefix: "trun-pasta-" })}/pid`;
    const t0 = performance.now();
    const out = await new Deno.Command(pasta, {
      args: ["--config-net", "-q", "-P", pidFile, String(holder.pid)],
      stdin: "null",
    }).output();
    const t = performance.now() - t0;
    try {
      Deno.kill(Number(Deno.readTextFileSync(pidFile).trim()), "SIGKILL");
    } catch {
      // It did not start.
    }
    holder.kill("SIGKILL");
    await holder.status;
    Deno.removeSync(pidFile.slice(0, pidFile.lastIndexOf("/")), { recursive: true });
    if (!out.success) throw new Error(`pasta: ${dec.decode(out.stderr)}`);
    times.push(t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(n / 2)]!;
}

/** The command line of `pid` ("" when gone). */
function cmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** This user's processes: pid → [parent, command name]. */
function processes(): Map<number, [number, string]> {
  const uid = Deno.uid();
  const out = new Map<number, [number, string]>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.statSync(`/proc/${e.name}`).uid !== uid) continue;
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      out.set(Number(e.name), [ppid, comm]);
    } catch {
      // Gone, or not ours.
    }
  }
  return out;
}

/** Whether `pid` is `root` or one of its descendants. */
function under(procs: Map<number, [number, string]>, pid: number, root: number): boolean {
  for (let p = pid, n = 0; p > 1 && n < 64; p = procs.get(p)?.[0] ?? 0, n++) {
    if (p === root) return true;
  }
  return false;
}

/** A free TCP port on 127.0.0.1. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** iperf3 from the host as client; Gbit/s received. */
async function iperf(port: number, reverse: boolean): Promise<number> {
  for (let i = 0;; i++) {
    const out = await new Deno.Command("iperf3", {
      args: [
        "-c",
        "127.0.0.1",
        "-p",
        String(port),
        "-t",
        String(seconds),
        "-J",
        ...(reverse ? ["-R"] : []),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const json = JSON.parse(dec.decode(out.stdout) || "{}");
    const bps = json.end?.sum_received?.bits_per_second;
    if (out.success && bps) return bps / 1e9;
    if (i === 20) throw new Error(`iperf3: ${json.error ?? dec.decode(out.stderr)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The host's iperf3 and its libraries, bound read-only into the busybox image (merged /usr). */
const IPERF_MOUNTS = "-v /usr:/usr:ro -v /usr/lib:/lib:ro -v /usr/lib64:/lib64:ro";

const iperf3 = await findTool("iperf3");
const hyperfine = await findTool("hyperfine");
if (!iperf3 || !hyperfine) {
  console.error("network_bench: needs iperf3 and hyperfine (scripts/setup_host.sh installs them)");
  Deno.exit(1);
}
const tmp = await Deno.makeTempDir({ prefix: "trun-netbench-" });
const reg = await startFixtureRegistry({ images: ["trun-fixtures/busybox:latest"] });
const tools = await podmanTools();
const runc = await findTool("runc");
const pod = tools.podman && tools.conmon && tools.script && runc
  ? await podmanSandbox(tools, { network: "slirp4netns" })
  : null;
const results: string[] = [];
const trunEnv = { TRUN_ROOT: `${tmp}/root`, TRUN_RUNROOT: `${tmp}/run` };
const trun =
  `env TRUN_ROOT=${trunEnv.TRUN_ROOT} TRUN_RUNROOT=${trunEnv.TRUN_RUNROOT} ${deno} run -A ${main}`;
try {
  const ref = `${reg.host}/trun-fixtures/busybox:latest`;
  await sh(`${trun} pull -q ${ref}`);
  const clis: { name: string; cli: string; net: string }[] = [
    { name: "trun (default: private through pasta)", cli: trun, net: "" },
    { name: "trun --network slirp4netns", cli: trun, net: "--network slirp4netns" },
  ];
  if (pod) {
    const flags = pod.flags.map((f) => (f === pod.runtime ? runc! : f));
    const env = Object.entries(pod.env).filter(([k]) =>
      ["CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"].includes(k)
    ).map(([k, v]) => `${k}=${v}`).join(" ");
    const cli = `env -u XDG_RUNTIME_DIR ${env} ${tools.podman} ${shellQuote(flags)}`;
    await sh(`${cli} pull -q --tls-verify=false ${ref}`);
    clis.push({ name: "podman (default: slirp4netns + rootlessport)", cli, net: "" });
  } else {
    console.log("podman, conmon, script or runc missing: trun only");
  }

  // Latency of run --rm on the default network (and trun's others).
  const hf = [
    "-N",
    "-w",
    "2",
    "-r",
    String(runs),
    "--export-json",
    `${tmp}/hf.json`,
    ...clis.flatMap((
      c,
    ) => ["-n", `${c.name}: run --rm true`, `${c.cli} run --rm ${c.net} ${ref} true`]),
    "-n",
    "trun --network host: run --rm true",
    `${trun} run --rm --network host ${ref} true`,
  ];
  // Each command once first, so a failing one is named with its error.
  for (const c of clis) await sh(`${c.cli} run --rm ${c.net} ${ref} true`);
  await new Deno.Command("hyperfine", { args: hf, stdout: "null", stderr: "inherit" }).output();
  const json = JSON.parse(await Deno.readTextFile(`${tmp}/hf.json`)) as {
    results: { command: string; mean: number; stddev: number }[];
  };
  for (const r of json.results) {
    results.push(
      `${r.command}: ${(r.mean * 1000).toFixed(1)} ms ± ${(r.stddev * 1000).toFixed(1)}`,
    );
  }

  // Throughput through a published port, and the memory beside the container.
  for (const c of latencyOnly ? [] : clis) {
    const port = freePort();
    const before = processes();
    const id = await sh(
      `${c.cli} run -d ${c.net} -p 127.0.0.1:${port}:5201 ${IPERF_MOUNTS} ${ref} sh -c 'exec /usr/bin/iperf3 -s -p 5201'`,
    );
    const pid = Number(await sh(`${c.cli} inspect --format '{{.State.Pid}}' ${id}`));
    const inbound = await iperf(port, false);
    const outbound = await iperf(port, true);
    results.push(
      `${c.name}: iperf3 -t ${seconds} through -p: host → container ${
        inbound.toFixed(2)
      } Gbit/s, container → host ${outbound.toFixed(2)} Gbit/s`,
    );
    await new Promise((r) => setTimeout(r, 500));
    const after = processes();
    // What came with this container: processes naming its id or its pid
    // (monitors, trun's helpers), the slirp4netns started meanwhile (Podman
    // names only a netns path) and Podman's rootlessport pair; not
    // the container's own, nor anything else the machine started meanwhile.
    const beside = [...after.entries()].filter(([p, [, comm]]) => {
      if (before.has(p) || under(after, p, pid)) return false;
      const words = cmdline(p).split(" ");
      return words.some((w) => w.includes(id) || w === String(pid)) ||
        ["rootlessport", "slirp4netns"].includes(comm) ||
        (comm === "exe" && after.get(after.get(p)![0])?.[1] === "rootlessport");
    });
    const parts = beside.map(([p, [, comm]]) => ({ p, comm, pss: pss(p), rss: rss(p) }));
    const total = parts.reduce((s, x) => s + (x.pss ?? 0), 0);
    const unreadable = parts.filter((x) => x.pss === null);
    const mb = (kb: number) => (kb / 1024).toFixed(1);
    results.push(
      `${c.name}: beside the container: ${mb(total)} MB PSS (${
        parts.filter((x) => x.pss !== null).map((x) => `${x.comm} ${mb(x.pss!)}`).join(", ")
      })${
        unreadable.length
          ? `; PSS not readable as this user (non-dumpable; read /proc/PID/smaps_rollup as root): ${
            unreadable.map((x) =>
              `${x.comm} pid ${x.p}, RSS ${x.rss === null ? "unknown" : `${mb(x.rss)} MB`}`
            ).join(", ")
          }; with their RSS: ${mb(total + unreadable.reduce((s, x) => s + (x.rss ?? 0), 0))} MB`
          : ""
      }`,
    );
    if (unreadable.length && Deno.args.includes("--hold")) {
      console.log(
        `holding ${id} 60 s for a root reading of ${unreadable.map((x) => x.p).join(" ")}`,
      );
      await new Promise((r) => setTimeout(r, 60_000));
    }
    await sh(`${c.cli} rm -f ${id} >/dev/null`);
  }
  console.log(`uid ${Deno.uid()}, ${runs} runs each, iperf3 ${seconds} s each way`);
  const pastaMs = await pastaStart(11);
  if (pastaMs !== null) {
    console.log(`pasta's own start on this machine (median of 11): ${pastaMs.toFixed(1)} ms`);
  }
  for (const line of results) console.log(line);
} finally {
  await pod?.cleanup();
  await reg.stop();
  await new Deno.Command("sh", {
    args: ["-c", `${trun} rm -f $(${trun} ps -a -q) >/dev/null 2>&1; ${trun} system prune -a -f`],
    stdout: "null",
    stderr: "null",
  }).output();
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}

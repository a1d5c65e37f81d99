/**
 * Docker's daily commands side by side with Debian's Podman (rootless, the
 * same busybox image from one local registry, one hyperfine run each):
 * `run --rm IMAGE true`, `run -d IMAGE sleep`, `exec ID true`, `ps`, and
 * `stop` of a container that handles SIGTERM; then the memory (RSS and
 * PSS, /proc/PID/smaps_rollup) of what stays beside a detached container.
 * trun runs with each of its monitors (its own, and conmon when installed);
 * Podman with conmon and runc (crun cannot run on this kernel).
 *
 *   deno task bench:lifecycle [--runs 15]
 *
 * Run it as the unprivileged user the containers are for. Numbers are
 * reported, never asserted.
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.
import { startFixtureRegistry } from "../tests/_harness/registry.ts";
import { podmanSandbox, podmanTools, shellQuote } from "../tests/_harness/podman.ts";
import { findTool } from "../tests/_harness/host.ts";

const args = Deno.args;
const runs = Number(args[args.indexOf("--runs") + 1] || 15) || 15;
const main = new URL("../main.ts", import.meta.url).pathname;
const deno = Deno.execPath();
const dec = new TextDecoder();

/** Runs a command; its stdout, or an error with its stderr. */
async function sh(cmd: string, env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: ["-c", cmd],
    env,
    stdin: "null",
  }).output();
  if (!out.success) throw new Error(`${cmd}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout).trim();
}

/** RSS and PSS (kB) of `pid` from smaps_rollup. */
async function memory(pid: number): Promise<{ rss: number; pss: number }> {
  const text = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`);
  const kb = (k: string) => Number(text.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0);
  return { rss: kb("Rss"), pss: kb("Pss") };
}

/** The parent of `pid` (/proc/PID/stat field 4). */
async function parentOf(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

const tmp = await Deno.makeTempDir({ prefix: "trun-lifebench-" });
const reg = await startFixtureRegistry({ images: ["trun-fixtures/busybox:latest"] });
const tools = await podmanTools();
const conmon = await findTool("conmon");
const runc = await findTool("runc");
const pod = tools.podman && tools.conmon && tools.script && runc
  ? await podmanSandbox(tools, { network: "none" })
  : null;
const results: string[] = [];
try {
  const ref = `${reg.host}/trun-fixtures/busybox:latest`;
  const trunEnv = { TRUN_ROOT: `${tmp}/root`, TRUN_RUNROOT: `${tmp}/run` };
  const envWords = (m: string) =>
    `env TRUN_ROOT=${trunEnv.TRUN_ROOT} TRUN_RUNROOT=${trunEnv.TRUN_RUNROOT} TRUN_MONITOR=${m}`;
  await sh(`${deno} run -A ${main} pull -q ${ref}`, trunEnv);
  const clis: { name: string; cli: string }[] = [];
  for (const m of conmon ? ["trun", "conmon"] : ["trun"]) {
    clis.push({ name: `trun (${m} monitor)`, cli: `${envWords(m)} ${deno} run -A ${main}` });
  }
  if (pod) {
    const flags = pod.flags.map((f) => (f === pod.runtime ? runc! : f));
    const env = Object.entries(pod.env).filter(([k]) =>
      ["CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"].includes(k)
    ).map(([k, v]) => `${k}=${v}`).join(" ");
    const cli = `env -u XDG_RUNTIME_DIR ${env} ${tools.podman} ${shellQuote(flags)}`;
    await sh(`${cli} pull -q --tls-verify=false ${ref}`);
    clis.push({ name: "podman", cli });
  } else {
    console.log("podman, conmon, script or runc missing: trun only");
  }

  const sleeper = `sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done'`;
  for (const t of clis) {
    // A long-running container for exec, ps and the memory figures.
    const id = await sh(`${t.cli} run -d ${ref} sleep 100000`);
    const pid = Number(await sh(`${t.cli} inspect --format '{{.State.Pid}}' ${id}`));
    const mon = await parentOf(pid);
    const cmdline = (await Deno.readTextFile(`/proc/${mon}/cmdline`)).split("\0")[0];
    const mem = await memory(mon);
    results.push(
      `${t.name}: beside a detached sleep, ${cmdline} (pid ${mon}): RSS ${
        (mem.rss / 1024).toFixed(1)
      } MB, PSS ${(mem.pss / 1024).toFixed(1)} MB`,
    );
    const hf = [
      "-N",
      "-w",
      "2",
      "-r",
      String(runs),
      "--export-json",
      `${tmp}/hf.json`,
      "-n",
      "run --rm true",
      `${t.cli} run --rm ${ref} true`,
      "-n",
      "run -d sleep",
      `${t.cli} run -d ${ref} sleep 1`,
      "-n",
      "exec true",
      `${t.cli} exec ${id} true`,
      "-n",
      "ps",
      `${t.cli} ps`,
    ];
    await new Deno.Command("hyperfine", { args: hf, stdout: "null", stderr: "inherit" }).output();
    const stopHf = [
      "-N",
      "-w",
      "1",
      "-r",
      String(Math.min(runs, 10)),
      "--export-json",
      `${tmp}/hf-stop.json`,
      "--prepare",
      `sh -c ${
        shellQuote([
          `${t.cli} rm -f st >/dev/null 2>&1; ${t.cli} run -d --name st ${ref} ${sleeper} >/dev/null`,
        ])
      }`,
      "-n",
      "stop (SIGTERM handled)",
      `${t.cli} stop st`,
    ];
    await new Deno.Command("hyperfine", { args: stopHf, stdout: "null", stderr: "inherit" })
      .output();
    for (const file of ["hf.json", "hf-stop.json"]) {
      const json = JSON.parse(await Deno.readTextFile(`${tmp}/${file}`)) as {
        results: { command: string; mean: number; stddev: number }[];
      };
      for (const r of json.results) {
        results.push(
          `${t.name}: ${r.command}: ${(r.mean * 1000).toFixed(1)} ms ± ${
            (r.stddev * 1000).toFixed(1)
          }`,
        );
      }
    }
    await sh(`${t.cli} rm -f $(${t.cli} ps -a -q) >/dev/null 2>&1 || true`);
  }
  console.log(`uid ${Deno.uid()}, ${runs} runs each (stop: ${Math.min(runs, 10)})`);
  for (const line of results) console.log(line);
} finally {
  await pod?.cleanup();
  await reg.stop();
  // Layers and writable layers hold files of subordinate ids: trun removes
  // them through its storage user namespace.
  const trun = `${deno} run -A ${main}`;
  await new Deno.Command("sh", {
    args: ["-c", `${trun} rm -f $(${trun} ps -a -q) >/dev/null 2>&1; ${trun} system prune -a -f`],
    env: trunEnvOf(tmp),
    stdout: "null",
  }).output();
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}

function trunEnvOf(dir: string): Record<string, string> {
  return { TRUN_ROOT: `${dir}/root`, TRUN_RUNROOT: `${dir}/run` };
}

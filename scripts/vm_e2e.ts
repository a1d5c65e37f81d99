/**
 * End-to-end tests of resource limits on pure cgroup v2 with systemd, in a
 * QEMU VM under software emulation (issue 10, layer 3): this host is hybrid,
 * users' machines are not.
 *
 *   deno task test:vm [--bench N] [--cases A,B] [--scope-property P=V]... [--timeout SECONDS]
 *                     [--smp N] [--memory MB] [--keep] [--rebuild]
 *
 * `--bench N` adds N timed `run`s with and without `--memory --cpus`;
 * `--cases` runs only the named guest cases (scripts/vm/guest_cases.sh);
 * `--scope-property` adds a `systemd-run -p` property to each case's scope
 * (which has Delegate=yes and systemd's defaults; e.g. OOMPolicy=continue);
 * `--keep` keeps the per-run disk and console log; `--rebuild` the image.
 *
 * 1. The image (a Debian 12 root filesystem, kernel and initrd) is built by
 *    scripts/vm/build_image.sh from Debian's packages and cached in
 *    $TRUN_VM_CACHE (default /var/cache/trun-vm), keyed by a hash of that
 *    script: a fresh machine builds it (about a minute), later runs reuse it.
 * 2. Each run makes a second small ext4 disk (`mkfs.ext4 -d`) holding deno,
 *    trun's source with its npm dependencies in a DENO_DIR, a busybox rootfs
 *    and the guest scripts (scripts/vm/guest_*.sh): the cloud kernel has no
 *    9p, and `deno compile` needs a denort this machine cannot download.
 * 3. QEMU boots the kernel directly; a unit in the image runs the cases as
 *    the lingering test user and powers off. Each case is one
 *    `E2E PASS|FAIL|SKIP name detail` line on the serial console.
 *
 * Exits 1 on any FAIL, or when the VM does not finish (timeout, crash);
 * prints a summary either way. Needs root (debootstrap, disk ownership).
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.
import { busyboxRootfs } from "../tests/_harness/rootfs.ts";

const repo = new URL("..", import.meta.url).pathname;
const vmDir = `${repo}scripts/vm/`;
/** The test user's uid in the image (build_image.sh). */
const GUEST_UID = 1000;

/** Command-line options of the runner. */
interface Options {
  bench: number;
  /** Guest case names to run, space-separated; empty for all of them. */
  cases: string;
  /** `systemd-run -p` properties of each case's scope. */
  scopeProperties: string[];
  timeoutSeconds: number;
  smp: number;
  memoryMb: number;
  keep: boolean;
  rebuild: boolean;
}

function parseOptions(args: string[]): Options {
  const opts: Options = {
    bench: 0,
    cases: "",
    scopeProperties: [],
    timeoutSeconds: 600,
    smp: 2,
    memoryMb: 2048,
    keep: false,
    rebuild: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const num = () => {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`vm_e2e: ${a} needs a whole number`);
      return v;
    };
    if (a === "--bench") opts.bench = num();
    else if (a === "--timeout") opts.timeoutSeconds = num();
    else if (a === "--smp") opts.smp = num();
    else if (a === "--memory") opts.memoryMb = num();
    else if (a === "--cases") {
      const v = args[++i] ?? "";
      if (!/^[a-z-]+(,[a-z-]+)*$/.test(v)) {
        throw new Error(`vm_e2e: --cases needs names like run-rootless,live`);
      }
      opts.cases = v.replaceAll(",", " ");
    } else if (a === "--scope-property") {
      const v = args[++i] ?? "";
      if (!/^[A-Za-z]+=[A-Za-z0-9._-]+$/.test(v)) {
        throw new Error(`vm_e2e: --scope-property needs NAME=VALUE, such as Delegate=yes`);
      }
      opts.scopeProperties.push(v);
    } else if (a === "--keep") opts.keep = true;
    else if (a === "--rebuild") opts.rebuild = true;
    else throw new Error(`vm_e2e: unknown option ${a}`);
  }
  return opts;
}

/** Runs a command, inheriting stdio; throws with its name when it fails. */
async function run(cmd: string[], env?: Record<string, string>): Promise<void> {
  const [program, ...args] = cmd;
  const status = await new Deno.Command(program!, {
    args,
    stdin: "null",
    ...(env ? { env } : {}),
  }).spawn().status;
  if (!status.success) throw new Error(`vm_e2e: ${cmd.join(" ")} failed (exit ${status.code})`);
}

async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The cached image directory for the current build script, built first if
 * missing; older images (other keys) are removed.
 */
async function cachedImage(rebuild: boolean): Promise<string> {
  const cacheRoot = Deno.env.get("TRUN_VM_CACHE") ?? "/var/cache/trun-vm";
  const script = `${vmDir}build_image.sh`;
  const key = (await sha256Hex(await Deno.readFile(script))).slice(0, 16);
  const dir = `${cacheRoot}/image-${key}`;
  if (rebuild) await Deno.remove(dir, { recursive: true }).catch(() => {});
  const cached = await Deno.stat(`${dir}/rootfs.img`).then(() => true, () => false);
  if (cached) {
    console.log(`vm_e2e: cached image ${dir}`);
    return dir;
  }
  await Deno.mkdir(cacheRoot, { recursive: true });
  for await (const e of Deno.readDir(cacheRoot)) {
    if (e.name.startsWith("image-") && e.name !== `image-${key}`) {
      console.log(`vm_e2e: removing the outdated image ${cacheRoot}/${e.name}`);
      await Deno.remove(`${cacheRoot}/${e.name}`, { recursive: true });
    }
  }
  const started = Date.now();
  console.log(`vm_e2e: building the image into ${dir} (debootstrap: one to three minutes)`);
  const tmp = `${dir}.tmp-${Deno.pid}`;
  try {
    await run(["bash", script, tmp]);
    await Deno.rename(tmp, dir);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  console.log(`vm_e2e: image built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return dir;
}

/** The npm packages trun imports, fetched once into a DENO_DIR kept beside the image. */
async function denoDir(): Promise<string> {
  const cacheRoot = Deno.env.get("TRUN_VM_CACHE") ?? "/var/cache/trun-vm";
  const dir = `${cacheRoot}/deno-dir`;
  await run(
    [Deno.execPath(), "cache", "--quiet", "--config", `${repo}deno.json`, `${repo}main.ts`],
    {
      DENO_DIR: dir,
    },
  );
  return dir;
}

/**
 * Writes the per-run disk: deno, trun's runtime sources, the npm cache, a
 * busybox rootfs and the guest scripts, all owned by the guest's test user.
 */
async function payloadDisk(work: string, opts: Options): Promise<string> {
  const stage = `${work}/stage`;
  await Deno.mkdir(`${stage}/bin`, { recursive: true });
  await Deno.copyFile(Deno.execPath(), `${stage}/bin/deno`);
  await Deno.chmod(`${stage}/bin/deno`, 0o755);
  await Deno.mkdir(`${stage}/trun`);
  for (const entry of ["main.ts", "deno.json", "deno.lock", "lib", "ffi"]) {
    await run(["cp", "-a", `${repo}${entry}`, `${stage}/trun/`]);
  }
  await run(["cp", "-a", await denoDir(), `${stage}/deno_dir`]);
  await busyboxRootfs(`${stage}/rootfs`);
  await Deno.copyFile(`${vmDir}guest_run.sh`, `${stage}/run.sh`);
  await Deno.copyFile(`${vmDir}guest_cases.sh`, `${stage}/guest_cases.sh`);
  await Deno.writeTextFile(
    `${stage}/config`,
    [
      `E2E_BENCH=${opts.bench}`,
      `E2E_CASES="${opts.cases}"`,
      `E2E_SCOPE_PROPERTIES="${opts.scopeProperties.map((p) => `-p ${p}`).join(" ")}"`,
      "",
    ].join("\n"),
  );
  await run(["chown", "-R", `${GUEST_UID}:${GUEST_UID}`, stage]);
  // Room for what the run writes there (deno's caches of the guest's paths).
  const du = new TextDecoder().decode(
    (await new Deno.Command("du", { args: ["-sm", stage], stdout: "piped" }).output()).stdout,
  );
  const sizeMb = Number(du.split(/\s/)[0]) + 256;
  const disk = `${work}/payload.img`;
  await run(["mkfs.ext4", "-q", "-F", "-L", "trun-e2e", "-d", stage, disk, `${sizeMb}M`]);
  await Deno.remove(stage, { recursive: true });
  return disk;
}

/** One result line of the guest. */
export interface CaseResult {
  verdict: "PASS" | "FAIL" | "SKIP";
  name: string;
  detail: string;
}

/** What the VM printed, read from its serial console. */
export interface GuestReport {
  cases: CaseResult[];
  other: string[];
  ended: boolean;
  timedOut: boolean;
  /** Stopped by SIGINT or SIGTERM (CI's step time limit): the VM was killed, not left running. */
  interrupted: boolean;
  exitCode: number;
}

/** What one serial console line says: a result, the end, another E2E line, or nothing of ours. */
export type ConsoleLine =
  | { kind: "case"; result: CaseResult }
  | { kind: "end" }
  | { kind: "other"; text: string }
  | null;

/**
 * Reads one line of the serial console: the guest's `E2E …` lines may
 * follow kernel output on the same line and end in CR (the tty's newline).
 */
export function parseConsoleLine(raw: string): ConsoleLine {
  const text = raw.replace(/\r/g, "");
  const at = text.indexOf("E2E ");
  if (at < 0) return null;
  const ours = text.slice(at).trimEnd();
  const m = /^E2E (PASS|FAIL|SKIP) (\S+) ?(.*)$/.exec(ours);
  if (m) {
    return {
      kind: "case",
      result: { verdict: m[1] as CaseResult["verdict"], name: m[2]!, detail: m[3]! },
    };
  }
  if (ours === "E2E END") return { kind: "end" };
  return { kind: "other", text: ours.slice(4) };
}

/** Why a run cannot be trusted (empty when it finished and reported cases). */
export function runProblem(report: GuestReport, timeoutSeconds: number): string {
  if (report.interrupted) return "interrupted by a signal; the VM was killed";
  if (report.timedOut) return `the VM did not finish within ${timeoutSeconds} s`;
  if (!report.ended) return `the VM stopped (exit ${report.exitCode}) before the cases ended`;
  if (report.cases.length === 0) return "the VM reported no cases";
  return "";
}

/** Boots the VM and reads the serial console until it powers off or the time is up. */
async function boot(
  image: string,
  payload: string,
  opts: Options,
  log: string,
): Promise<GuestReport> {
  const args = [
    "-accel",
    "tcg",
    // -cpu max: a model without svm breaks glibc's early start in the guest.
    "-cpu",
    "max",
    "-smp",
    String(opts.smp),
    "-m",
    String(opts.memoryMb),
    "-nographic",
    "-monitor",
    "none",
    "-serial",
    "stdio",
    "-no-reboot",
    "-nic",
    "none",
    "-kernel",
    `${image}/vmlinuz`,
    "-initrd",
    `${image}/initrd.img`,
    "-append",
    "root=/dev/vda rw console=ttyS0 quiet loglevel=3 systemd.show_status=0 panic=-1",
    // snapshot=on: the cached image is never written; the guest's writes go to a temp file.
    "-drive",
    `file=${image}/rootfs.img,format=raw,if=virtio,snapshot=on`,
    // The per-run disk, /e2e in the guest.
    "-drive",
    `file=${payload},format=raw,if=virtio`,
  ];
  console.log(`vm_e2e: qemu-system-x86_64 ${args.join(" ")}`);
  const child = new Deno.Command("qemu-system-x86_64", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const report: GuestReport = {
    cases: [],
    other: [],
    ended: false,
    timedOut: false,
    interrupted: false,
    exitCode: 0,
  };
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  };
  const timer = setTimeout(() => {
    report.timedOut = true;
    kill();
  }, opts.timeoutSeconds * 1000);
  const onSignal = () => {
    report.interrupted = true;
    kill();
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const file = await Deno.open(log, { write: true, create: true, truncate: true });
  const started = Date.now();
  const decoder = new TextDecoder();
  let pending = "";
  const line = (raw: string) => {
    const parsed = parseConsoleLine(raw);
    if (parsed === null) return;
    const seconds = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
    const text = parsed.kind === "case"
      ? `${parsed.result.verdict} ${parsed.result.name} ${parsed.result.detail}`
      : parsed.kind === "end"
      ? "END"
      : parsed.text;
    console.log(`[${seconds}s] E2E ${text}`);
    if (parsed.kind === "case") report.cases.push(parsed.result);
    else if (parsed.kind === "end") report.ended = true;
    else report.other.push(parsed.text);
  };
  for await (const chunk of child.stdout) {
    await file.write(chunk);
    pending += decoder.decode(chunk, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop()!;
    lines.forEach(line);
  }
  if (pending) line(pending);
  file.close();
  report.exitCode = (await child.status).code;
  clearTimeout(timer);
  for (const s of signals) Deno.removeSignalListener(s, onSignal);
  return report;
}

async function main(): Promise<number> {
  const opts = parseOptions(Deno.args);
  if (Deno.uid() !== 0) {
    console.error(
      "vm_e2e: must run as root (debootstrap, and the disk's files owned by the guest user)",
    );
    return 1;
  }
  const t0 = Date.now();
  const image = await cachedImage(opts.rebuild);
  const t1 = Date.now();
  const work = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "trun-vm-run." });
  try {
    const payload = await payloadDisk(work, opts);
    const t2 = Date.now();
    const log = `${work}/console.log`;
    const report = await boot(image, payload, opts, log);
    const t3 = Date.now();
    const count = (v: CaseResult["verdict"]) => report.cases.filter((c) => c.verdict === v).length;
    const failed = report.cases.filter((c) => c.verdict === "FAIL");
    console.log("\n======== VM end-to-end summary ========");
    for (const c of report.cases) console.log(`${c.verdict} ${c.name}`);
    console.log(
      `${count("PASS")} passed, ${failed.length} failed, ${count("SKIP")} skipped; ` +
        `image ${((t1 - t0) / 1000).toFixed(0)} s, disk ${((t2 - t1) / 1000).toFixed(0)} s, ` +
        `VM ${((t3 - t2) / 1000).toFixed(0)} s`,
    );
    const problem = runProblem(report, opts.timeoutSeconds);
    if (problem) {
      console.log(`vm_e2e: ${problem}; the last lines of its console (${log}):`);
      const text = await Deno.readTextFile(log).catch(() => "");
      console.log(text.replace(/\r/g, "").split("\n").slice(-40).join("\n"));
    }
    if (opts.keep) console.log(`vm_e2e: kept ${work}`);
    else if (problem) {
      // The console log stays for a look; the disk (some 400 MB) goes.
      await Deno.remove(payload);
      console.log(`vm_e2e: kept ${log}`);
    } else await Deno.remove(work, { recursive: true });
    return problem || failed.length > 0 ? 1 : 0;
  } catch (e) {
    if (!opts.keep) await Deno.remove(work, { recursive: true }).catch(() => {});
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main());

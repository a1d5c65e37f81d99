/**
 * `trun build` side by side with `podman build` (Debian's Podman 4.3 with
 * Buildah 1.28, rootless, overlay storage, runc) on the same Dockerfiles
 * and the same base image: a cold build (fresh store with only the base
 * image), a fully cached rebuild, and a rebuild after one copied file
 * changed, best and mean of `--runs` each.
 *
 *   deno task bench:build [--runs 3] [--debian ROOTFS_DIR]
 *
 * Base images: a busybox root file system (tests/_harness/rootfs.ts), and,
 * with `--debian`, a `debootstrap --variant=minbase bookworm` tree (or a
 * tar of it, made as root so that every file is in it) for the
 * Debian Dockerfile with several RUNs and COPYs. Run it as the
 * unprivileged user the images are for. Numbers are reported, never
 * asserted.
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.
import { busyboxRootfs } from "../tests/_harness/rootfs.ts";
import { findTool, removeTree } from "../tests/_harness/host.ts";

const args = Deno.args;
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const runs = Number(flag("--runs") ?? 3) || 3;
const debian = flag("--debian");
const main = new URL("../main.ts", import.meta.url).pathname;
const dec = new TextDecoder();

async function sh(cmd: string, env: Record<string, string> = {}): Promise<void> {
  const out = await new Deno.Command("sh", { args: ["-c", cmd], env, stdin: "null" }).output();
  if (!out.success) throw new Error(`${cmd}:\n${dec.decode(out.stderr)}${dec.decode(out.stdout)}`);
}

async function timed(cmd: string, env: Record<string, string> = {}): Promise<number> {
  const t = performance.now();
  await sh(cmd, env);
  return performance.now() - t;
}

const work = await Deno.makeTempDir({ prefix: "trun-build-bench-" });
await Deno.chmod(work, 0o755);
const tarOf = async (rootfs: string, name: string) => {
  const tar = `${work}/${name}.tar`;
  // A rootfs made by debootstrap as root may hold unreadable files: tar what can be read.
  await sh(`tar -C ${rootfs} --owner=0 --group=0 --numeric-owner -cf ${tar} . 2>/dev/null || true`);
  return tar;
};

const MULTI = `FROM localhost/base:1 AS builder
ARG N=200
WORKDIR /src
COPY app/ ./
RUN for i in $(seq $N); do echo "line $i" >> out.txt; done && gzip -k out.txt
RUN mkdir /out && cp out.txt.gz /out/ && wc -l out.txt > /out/count
FROM localhost/base:1
COPY --from=builder /out/ /srv/
COPY app/config.txt /etc/app.conf
USER nobody
CMD ["cat", "/srv/count"]
`;

const DEBIAN = `FROM localhost/base:1
ENV DEBIAN_FRONTEND=noninteractive
RUN mkdir -p /opt/app && echo built > /opt/app/stamp
COPY app/ /opt/app/
RUN cd /opt/app && find . -type f | sort > manifest && sha256sum config.txt > sums
RUN useradd -m builder && chown -R builder /opt/app
USER builder
WORKDIR /opt/app
RUN ls -la > listing
CMD ["cat", "manifest"]
`;

const cases: { name: string; dockerfile: string; rootfs: string }[] = [
  { name: "multi-stage (busybox)", dockerfile: MULTI, rootfs: await busyboxRootfs() },
];
if (debian) cases.push({ name: "debian, 4 RUN + COPY", dockerfile: DEBIAN, rootfs: debian });

const podman = await findTool("podman");
const roots: string[] = [];
const results: string[] = [];
for (const c of cases) {
  const ctx = `${work}/ctx-${cases.indexOf(c)}`;
  await Deno.mkdir(`${ctx}/app`, { recursive: true });
  await Deno.writeTextFile(`${ctx}/Dockerfile`, c.dockerfile);
  await Deno.writeTextFile(`${ctx}/app/config.txt`, "key=value\n");
  await Deno.writeTextFile(`${ctx}/app/main.sh`, "#!/bin/sh\necho hi\n");
  await sh(`chmod -R a+rX ${ctx}`);
  // A root file system made as root (debootstrap) is best given as a tar made as root.
  const tar = c.rootfs.endsWith(".tar")
    ? c.rootfs
    : await tarOf(c.rootfs, `base-${cases.indexOf(c)}`);

  const engines: { name: string; fresh: () => Promise<(cmd: string) => Promise<number>> }[] = [{
    name: "trun",
    fresh: async () => {
      const root = await Deno.makeTempDir({ dir: work });
      const env = { TRUN_ROOT: `${root}/store`, TRUN_RUNROOT: `${root}/run` };
      const trun = `${Deno.execPath()} run -A --quiet ${main}`;
      await sh(`${trun} import ${tar} localhost/base:1`, env);
      return (cmd) => timed(`${trun} ${cmd}`, env);
    },
  }];
  if (podman) {
    engines.push({
      name: "podman",
      fresh: async () => {
        // Podman wants a runroot under 50 characters.
        const root = await Deno.makeTempDir({ prefix: "pb" });
        roots.push(root);
        const p = `${podman} --root ${root}/s --runroot ${root}/r --tmpdir ${root}/t ` +
          `--storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime runc`;
        await sh(`${p} import ${tar} localhost/base:1 >/dev/null`);
        return (cmd) => timed(`${p} ${cmd}`);
      },
    });
  }
  for (const e of engines) {
    const cold: number[] = [];
    const cached: number[] = [];
    const changed: number[] = [];
    const build = `build -q --network none -t localhost/bench:1 ${ctx} >/dev/null`;
    for (let i = 0; i < runs; i++) {
      const run = await e.fresh();
      await Deno.writeTextFile(`${ctx}/app/config.txt`, "key=value\n");
      cold.push(await run(build));
      cached.push(await run(build));
      // One copied file changes: the steps from its COPY on run again.
      await Deno.writeTextFile(`${ctx}/app/config.txt`, `key=${i}-${e.name}\n`);
      changed.push(await run(build));
    }
    const fmt = (xs: number[]) =>
      `best ${(Math.min(...xs) / 1000).toFixed(2)} s, mean ${
        (xs.reduce((a, b) => a + b, 0) / xs.length / 1000).toFixed(2)
      } s`;
    results.push(
      `${c.name} | ${e.name} | cold ${fmt(cold)} | cached ${fmt(cached)} | ` +
        `one file changed ${fmt(changed)}`,
    );
    console.log(results.at(-1));
  }
}
console.log(`\n${results.join("\n")}`);
// The stores hold files of subordinate ids.
for (const r of [...roots, work]) await removeTree(r);

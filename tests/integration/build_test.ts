// trun build for real: multi-stage builds with COPY --from, ARG and ENV
// substitution, here-documents, .dockerignore, USER and --chown owners,
// RUN layers with whiteouts, the cache (hits, misses, --no-cache), and a
// failing RUN that names its line and leaves no container. The base image
// is a busybox root file system imported with `trun import`. Runs as the
// test user and as root.
import assert from "node:assert/strict";
import { hostCapabilities, requires, type TrunSandbox, trunSandbox } from "../_harness/host.ts";
import { busyboxRootfs, busyboxRootfsTar } from "../_harness/rootfs.ts";
import { podmanSandbox, podmanTools } from "../_harness/podman.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");

function test(name: string, fn: () => Promise<void>) {
  Deno.test({ name: `${name}${base.suffix}`, ignore: base.ignore, fn });
}

type Sandbox = TrunSandbox & { ctx: string };

/** A sandbox with `bb:base` (busybox, imported) and an empty context directory. */
async function sandbox(): Promise<Sandbox> {
  const sb = await trunSandbox();
  const tar = await busyboxRootfsTar(`${sb.dir}/rootfs.tar`);
  await ok(sb, ["import", "-c", 'CMD ["sh"]', tar, "bb:base"]);
  const ctx = `${sb.dir}/ctx`;
  await Deno.mkdir(ctx);
  return { ...sb, ctx };
}

async function ok(sb: TrunSandbox, args: string[], stdin?: string): Promise<string> {
  const r = await sb.run(args, stdin !== undefined ? { stdin } : {});
  assert.equal(r.code, 0, `trun ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** Writes files under the context (parents made). */
async function files(sb: Sandbox, tree: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(tree)) {
    const path = `${sb.ctx}/${rel}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, content);
  }
}

const MULTI = `# syntax=docker/dockerfile:1
ARG BASE=bb:base
FROM \${BASE} AS builder
ARG GREETING=hello
ENV OUT=/out NAME="two words"
WORKDIR /src
COPY app/ ./
RUN mkdir -p $OUT && cat main.txt > $OUT/result && echo "$GREETING $NAME" >> $OUT/result
RUN <<EOF
echo "heredoc sees $GREETING" > $OUT/heredoc
EOF

FROM bb:base
ARG PORT=8080
LABEL org.example.stage=final version=\${PORT}
ENV APP_HOME=/srv/app
WORKDIR $APP_HOME
COPY --from=builder /out/ ./
COPY --chown=app:app --chmod=0640 secret.txt owned.txt
COPY <<-EOT /etc/motd
\twelcome to $APP_HOME
\tEOT
USER app
RUN touch /tmp/made-by-user
EXPOSE \${PORT}/tcp
CMD ["cat", "result"]
`;

test("a multi-stage build with substitution, here-documents, .dockerignore and owners", async () => {
  await using sb = await sandbox();
  await files(sb, {
    "Dockerfile": MULTI,
    "app/main.txt": "main\n",
    "app/notes.log": "ignored\n",
    "app/keep.log": "kept\n",
    "secret.txt": "s3cret\n",
    ".dockerignore": "**/*.log\n!app/keep.log\n",
  });
  const out = await ok(sb, ["build", "-t", "app:1", "--build-arg", "GREETING=hi", sb.ctx]);
  assert.match(out, /^Step 1\/19 : FROM \$\{BASE\} AS builder$/m);
  assert.match(out, /Successfully built [0-9a-f]{12}\nSuccessfully tagged app:1\n$/);
  assert.equal(await ok(sb, ["run", "--rm", "app:1"]), "main\nhi two words\n");
  const check = [
    "cat heredoc",
    "ls /src 2>&1 | head -1",
    "stat -c '%U:%G %a' owned.txt",
    "stat -c '%U' /tmp/made-by-user",
    "cat /etc/motd",
    "id -un",
  ].join("; ");
  assert.equal(
    await ok(sb, ["run", "--rm", "app:1", "sh", "-c", check]),
    "heredoc sees hi\nls: /src: No such file or directory\napp:app 640\napp\nwelcome to /srv/app\napp\n",
  );
  const config = JSON.parse(await ok(sb, ["inspect", "-f", "{{json .Config}}", "app:1"]));
  assert.deepEqual(config.Cmd, ["cat", "result"]);
  assert.equal(config.WorkingDir, "/srv/app");
  assert.equal(config.User, "app");
  assert.deepEqual(config.ExposedPorts, { "8080/tcp": {} });
  assert.deepEqual(config.Labels, { "org.example.stage": "final", version: "8080" });
  assert.ok(config.Env.includes("APP_HOME=/srv/app"));
  assert.ok(!config.Env.some((e: string) => e.startsWith("OUT=")), "the builder's ENV stays there");

  // .dockerignore: notes.log never reached the builder stage, keep.log did.
  await files(sb, { "Dockerfile.probe": "FROM bb:base\nCOPY app/ /app/\nCMD ls /app\n" });
  await ok(sb, ["build", "-q", "-f", `${sb.ctx}/Dockerfile.probe`, "-t", "probe", sb.ctx]);
  assert.equal(await ok(sb, ["run", "--rm", "probe", "ls", "/app"]), "keep.log\nmain.txt\n");
});

test("a RUN's layer holds what it created and changed, and whiteouts for what it deleted", async () => {
  await using sb = await sandbox();
  await files(sb, {
    "Dockerfile":
      "FROM bb:base\nRUN echo new > /etc/created && echo x >> /etc/passwd && rm /bin/vi\n",
  });
  await ok(sb, ["build", "-t", "changed", sb.ctx]);
  const saved = `${sb.dir}/saved.tar`;
  await ok(sb, ["save", "-o", saved, "changed"]);
  const dir = `${sb.dir}/saved`;
  await Deno.mkdir(dir);
  await tar(["-xf", saved, "-C", dir]);
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  const layers: string[] = manifest[0].Layers;
  assert.equal(layers.length, 2);
  const listing = (await tar(["-tf", `${dir}/${layers[1]}`])).split("\n").filter((l) => l);
  for (const want of ["etc/created", "etc/passwd", "bin/.wh.vi"]) {
    assert.ok(listing.includes(want), `${want} in ${listing.join(", ")}`);
  }
  assert.ok(!listing.some((l) => l.startsWith("bin/") && l !== "bin/" && l !== "bin/.wh.vi"));
  assert.equal(
    await ok(sb, [
      "run",
      "--rm",
      "changed",
      "sh",
      "-c",
      "cat /etc/created; test -e /bin/vi || echo gone",
    ]),
    "new\ngone\n",
  );
});

async function tar(args: string[]): Promise<string> {
  const out = await new Deno.Command("tar", { args }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

test("the cache: a rebuild makes no container; a changed file rebuilds from its COPY on", async () => {
  await using sb = await sandbox();
  await files(sb, {
    "Dockerfile":
      "FROM bb:base\nRUN echo one > /one\nCOPY input.txt /input.txt\nRUN cat /input.txt /one > /both\n",
    "input.txt": "v1\n",
  });
  const first = await ok(sb, ["build", "-t", "cached", sb.ctx]);
  assert.equal(first.match(/Running in/g)?.length, 2);
  const again = await ok(sb, ["build", "-t", "cached", sb.ctx]);
  assert.equal(again.match(/Using cache/g)?.length, 3, again);
  assert.doesNotMatch(again, /Running in/);
  assert.equal(lastId(again), lastId(first));
  assert.equal(await ok(sb, ["ps", "-a", "-q"]), "", "no container stays behind");

  await Deno.writeTextFile(`${sb.ctx}/input.txt`, "v2\n");
  const changed = await ok(sb, ["build", "-t", "cached", sb.ctx]);
  assert.equal(changed.match(/Using cache/g)?.length, 1, "only the first RUN is reused");
  assert.equal(changed.match(/Running in/g)?.length, 1);
  assert.equal(await ok(sb, ["run", "--rm", "cached", "cat", "/both"]), "v2\none\n");

  const none = await ok(sb, ["build", "--no-cache", "-q", sb.ctx]);
  assert.match(none, /^sha256:[0-9a-f]{64}\n$/, "-q prints the id alone");
  assert.notEqual(none.trim().slice(7, 19), lastId(changed));
  // The steps' images are hidden without -a, as Docker's intermediate images.
  const shown = (await ok(sb, ["images", "-q"])).split("\n").filter((l) => l);
  const all = (await ok(sb, ["images", "-a", "-q"])).split("\n").filter((l) => l);
  assert.ok(all.length > shown.length + 3, `${all.length} vs ${shown.length}`);
});

function lastId(out: string): string {
  return out.match(/Successfully built ([0-9a-f]{12})/)?.[1] ?? "";
}

test("a failing RUN names its line and exit code, and leaves no container", async () => {
  await using sb = await sandbox();
  await files(sb, {
    "Dockerfile": "FROM bb:base\n\nRUN echo before\nRUN exit 3\nRUN echo after\n",
  });
  const r = await sb.run(["build", sb.ctx]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /Dockerfile:4: The command '\/bin\/sh -c exit 3' returned a non-zero code: 3/,
  );
  assert.doesNotMatch(r.stdout, /after/);
  assert.equal(await ok(sb, ["ps", "-a", "-q"]), "");

  await Deno.writeTextFile(`${sb.ctx}/Dockerfile`, "FROM bb:base\nRUNN x\n");
  const bad = await sb.run(["build", sb.ctx]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Dockerfile:2: unknown instruction: RUNN/);
  const missing = await sb.run(["build", "-f", "-", sb.ctx], {
    stdin: "FROM bb:base\nCOPY nope /x\n",
  });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Dockerfile:2: COPY: "nope" not found in the build context/);
});

test("a Dockerfile on stdin with no context, --iidfile and --target", async () => {
  await using sb = await sandbox();
  const iid = `${sb.dir}/iid`;
  const out = await ok(
    sb,
    ["build", "--iidfile", iid, "--target", "first", "-t", "t", "-"],
    "FROM bb:base AS first\nENV STAGE=first\nFROM bb:base AS second\nRUN exit 9\n",
  );
  assert.doesNotMatch(out, /exit 9/, "the second stage is not needed for --target first");
  assert.equal(
    await Deno.readTextFile(iid),
    `sha256:${(await ok(sb, ["inspect", "-f", "{{.Id}}", "t"])).trim().replace(/^sha256:/, "")}`,
  );
  assert.equal(await ok(sb, ["run", "--rm", "t", "sh", "-c", "echo $STAGE"]), "first\n");
});

// Side by side with `podman build` (Buildah): the same Dockerfile must give
// the same root file system and config. Podman 4.3 has no here-documents
// and no COPY --chmod, so this Dockerfile does without them.
const tools = await podmanTools();
const podmanGate = (() => {
  if (caps.isRoot) return " (skipped: the Podman comparison is rootless: run as the test user)";
  const missing = (["podman", "conmon", "tar", "script"] as const).filter((t) => tools[t] === null)
    .map((t) => tools.reasons[t] ?? t);
  return missing.length > 0 ? ` (skipped: ${missing.join("; ")})` : "";
})();

const COMPARED = `ARG BASE=localhost/bb:base
FROM \${BASE} AS builder
ARG GREETING=hello
ENV OUT=/out NAME="two words"
WORKDIR /src
COPY app/ ./
RUN mkdir -p $OUT && cat main.txt > $OUT/result && echo "$GREETING $NAME" >> $OUT/result

FROM \${BASE}
ARG PORT=8080
LABEL org.example.stage=final version=\${PORT}
ENV APP_HOME=/srv/app
WORKDIR $APP_HOME
COPY --from=builder /out/ ./
COPY --chown=app:app secret.txt owned.txt
COPY app/sub /opt/sub/
RUN rm /bin/vi && echo changed >> /etc/passwd && mkdir -p /var/cache/x && touch /var/cache/x/y && ln -s /srv/app/result /srv/link
USER app
EXPOSE \${PORT}/tcp
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat result"]
`;

/** Path → type, mode, owner, link target and content hash, from an exported root file system tar. */
async function rootfsEntries(tarPath: string): Promise<Map<string, string>> {
  const tarStream = (await import("tar-stream")).default;
  const { createHash } = await import("node:crypto");
  const extract = tarStream.extract();
  const out = new Map<string, string>();
  using f = await Deno.open(tarPath);
  const feed = (async () => {
    for await (const chunk of f.readable) {
      if (!extract.write(chunk)) await new Promise<void>((r) => extract.once("drain", () => r()));
    }
    (extract as unknown as { end(): void }).end();
  })();
  type Entry = { header: import("tar-stream").Header } & AsyncIterable<Uint8Array>;
  for await (const e of extract as unknown as AsyncIterable<Entry>) {
    const h = createHash("sha256");
    for await (const c of e) h.update(c);
    const name = e.header.name.replace(/^\.?\//, "").replace(/\/$/, "");
    // What each engine puts at run time, not what the build made.
    if (/^(proc|sys|dev|run)(\/|$)|^etc\/(hosts|hostname|resolv\.conf|mtab)$/.test(name)) continue;
    const hx = e.header;
    out.set(
      name,
      `${hx.type} ${((hx.mode ?? 0) & 0o7777).toString(8)} ${hx.uid}:${hx.gid} ${
        hx.linkname ?? ""
      } ${hx.type === "file" ? h.digest("hex").slice(0, 16) : ""}`,
    );
  }
  await feed;
  return out;
}

Deno.test({
  name: `the same Dockerfile built by podman build gives the same files and config${podmanGate}`,
  ignore: base.ignore || podmanGate !== "",
  fn: async () => {
    await using sb = await sandbox();
    await ok(sb, ["tag", "bb:base", "localhost/bb:base"]);
    await files(sb, {
      "Dockerfile": COMPARED,
      "app/main.txt": "main\n",
      "app/notes.log": "ignored\n",
      "app/sub/deep.txt": "deep\n",
      "secret.txt": "s3cret\n",
      ".dockerignore": "**/*.log\n",
    });
    await Deno.chmod(sb.ctx, 0o755);
    const pm = await podmanSandbox(tools, { network: "none" });
    try {
      await pm.importRootfs(await busyboxRootfs(), "localhost/bb:base");
      const built = await pm.podman(
        [
          "build",
          "--network",
          "none",
          "-t",
          "localhost/app:1",
          "--build-arg",
          "GREETING=hi",
          sb.ctx,
        ],
        { timeoutMs: 180_000 },
      );
      assert.equal(built.code, 0, `podman build: ${built.stderr}\n${built.stdout}`);
      await ok(sb, ["build", "-t", "localhost/app:1", "--build-arg", "GREETING=hi", sb.ctx]);

      const podmanTar = `${pm.dir}/podman.tar`;
      const trunTar = `${sb.dir}/trun.tar`;
      const created = await pm.podman(["create", "--name", "cmp", "localhost/app:1"]);
      assert.equal(created.code, 0, created.stderr);
      const exported = await pm.podman(["export", "-o", podmanTar, "cmp"]);
      assert.equal(exported.code, 0, exported.stderr);
      await ok(sb, ["create", "--name", "cmp", "localhost/app:1"]);
      await ok(sb, ["export", "-o", trunTar, "cmp"]);
      const [theirs, mine] = [await rootfsEntries(podmanTar), await rootfsEntries(trunTar)];
      const differences = [...new Set([...theirs.keys(), ...mine.keys()])].sort()
        .filter((p) => theirs.get(p) !== mine.get(p))
        .map((p) => `${p}: podman ${theirs.get(p) ?? "-"} | trun ${mine.get(p) ?? "-"}`);
      assert.deepEqual(differences, [], differences.join("\n"));

      const fields = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Labels"];
      const pick = (c: Record<string, unknown>) => {
        const labels = { ...(c.Labels as Record<string, string> ?? {}) };
        delete labels["io.buildah.version"];
        return Object.fromEntries(fields.map((f) => [f, f === "Labels" ? labels : c[f] ?? null]));
      };
      const podmanConfig = await pm.podman([
        "inspect",
        "--format",
        "{{json .Config}}",
        "localhost/app:1",
      ]);
      assert.equal(podmanConfig.code, 0, podmanConfig.stderr);
      const trunConfig = await ok(sb, ["inspect", "-f", "{{json .Config}}", "localhost/app:1"]);
      assert.deepEqual(pick(JSON.parse(trunConfig)), pick(JSON.parse(podmanConfig.stdout)));
    } finally {
      await pm.cleanup();
    }
  },
});

test("RUN --mount: a secret never reaches a layer; a cache persists; bind and tmpfs mounts", async () => {
  await using sb = await sandbox();
  const token = `tok-${crypto.randomUUID()}`;
  await Deno.writeTextFile(`${sb.dir}/token.txt`, token);
  await files(sb, {
    "Dockerfile": [
      "FROM bb:base",
      "RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /secret-length",
      "RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /count",
      "RUN --mount=type=bind,source=data,target=/data cp /data/x /copied",
      "RUN --mount=type=tmpfs,target=/scratch touch /scratch/t && ls /scratch > /tmpfs-listing",
      "",
    ].join("\n"),
    "data/x": "from the context\n",
  });
  const secret = ["--secret", `id=token,src=${sb.dir}/token.txt`];
  await ok(sb, ["build", ...secret, "-t", "mounts", sb.ctx]);
  const check =
    "cat /secret-length /count /copied /tmpfs-listing; ls -d /run/secrets /cache /data /scratch 2>&1; true";
  assert.equal(
    await ok(sb, ["run", "--rm", "mounts", "sh", "-c", check]),
    `${token.length}\n1\nfrom the context\nt\n` +
      "ls: /run/secrets: No such file or directory\nls: /cache: No such file or directory\n" +
      "ls: /data: No such file or directory\nls: /scratch: No such file or directory\n",
  );
  const saved = `${sb.dir}/mounts.tar`;
  await ok(sb, ["save", "-o", saved, "mounts"]);
  const bytes = await Deno.readFile(saved);
  assert.ok(!new TextDecoder("latin1").decode(bytes).includes(token), "the secret is in no layer");

  // The cache mount keeps its content for the next build.
  await ok(sb, ["build", "--no-cache", ...secret, "-t", "mounts", sb.ctx]);
  assert.equal(await ok(sb, ["run", "--rm", "mounts", "cat", "/count"]), "2\n");
  // Without --secret the mount is left out (it is not required): the RUN
  // that reads it fails on its own.
  const missing = await sb.run(["build", "--no-cache", sb.ctx]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Dockerfile:2: The command .* returned a non-zero code/);
  await Deno.writeTextFile(
    `${sb.ctx}/Dockerfile`,
    "FROM bb:base\nRUN --mount=type=secret,id=nope,required=true true\n",
  );
  const required = await sb.run(["build", sb.ctx]);
  assert.equal(required.code, 1);
  assert.match(required.stderr, /Dockerfile:2: RUN: secret "nope" not found/);
});

test("ADD from a URL (a server on loopback), COPY --from an image, and a URL that fails", async () => {
  await using sb = await sandbox();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) =>
      new URL(req.url).pathname === "/files/hello.txt"
        ? new Response("hello over http\n", {
          headers: { "last-modified": "Wed, 01 Jan 2020 00:00:00 GMT" },
        })
        : new Response("no", { status: 404 }),
  );
  try {
    const port = server.addr.port;
    await files(sb, {
      "Dockerfile": [
        "FROM bb:base",
        `ADD http://127.0.0.1:${port}/files/hello.txt /dl/`,
        "COPY --from=bb:base /bin/busybox /opt/bb/busybox",
        "",
      ].join("\n"),
    });
    await ok(sb, ["build", "-t", "urls", sb.ctx]);
    assert.equal(
      await ok(sb, [
        "run",
        "--rm",
        "urls",
        "sh",
        "-c",
        "cat /dl/hello.txt; stat -c '%a %Y' /dl/hello.txt; /opt/bb/busybox true && echo ran",
      ]),
      "hello over http\n600 1577836800\nran\n",
    );
    await Deno.writeTextFile(
      `${sb.ctx}/Dockerfile`,
      `FROM bb:base\nADD http://127.0.0.1:${port}/missing /x\n`,
    );
    const notFound = await sb.run(["build", sb.ctx]);
    assert.equal(notFound.code, 1);
    assert.match(notFound.stderr, /Dockerfile:2: ADD: downloading ".*\/missing": 404/);
    await Deno.writeTextFile(
      `${sb.ctx}/Dockerfile`,
      "FROM bb:base\nCOPY http://127.0.0.1:1/x /x\n",
    );
    const copyUrl = await sb.run(["build", sb.ctx]);
    assert.match(copyUrl.stderr, /Dockerfile:2: COPY: source can't be a URL for COPY: use ADD/);
  } finally {
    await server.shutdown();
  }
});

test("a context tar on stdin (gzip), with its Dockerfile inside", async () => {
  await using sb = await sandbox();
  await files(sb, {
    "Dockerfile": "FROM bb:base\nCOPY . /ctx/\nCMD ls /ctx\n",
    "one.txt": "1\n",
    "sub/two.txt": "2\n",
  });
  const packed = await new Deno.Command("sh", {
    args: ["-c", `tar -C ${sb.ctx} -cf - . | gzip -c`],
    stdout: "piped",
  }).output();
  assert.ok(packed.success);
  const r = await sb.run(["build", "-t", "fromtar", "-"], { stdin: packed.stdout });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await ok(sb, ["run", "--rm", "fromtar"]), "Dockerfile\none.txt\nsub\n");
});

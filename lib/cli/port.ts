/**
 * `trun port CONTAINER [PRIVATE_PORT[/PROTO]]` (`container port`): the
 * published ports of a running container, in Docker's lines
 * (`80/tcp -> 0.0.0.0:8080`, or only `0.0.0.0:8080` for one port).
 */
import { defineCommand, parseArgs } from "./args.ts";
import { printHelp, println } from "./output.ts";

/** The grammar of `trun port`. */
export const PORT = defineCommand({
  name: "port",
  usage: "CONTAINER [PRIVATE_PORT[/PROTO]]",
  summary: "List port mappings or a specific mapping for the container",
  minArgs: 1,
  maxArgs: 2,
  flags: {},
});

/** Runs `trun port` (`name`, or `container port`, names it in help and errors). */
export async function main(argv: string[], name = PORT.name): Promise<number> {
  const def = { ...PORT, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const [ref, privatePort] = p.args as [string, string | undefined];
  const { findContainer } = await import("./_container_common.ts");
  const { containerStatus } = await import("../container/status.ts");
  const { portLines } = await import("../spec/ports.ts");
  const { rec } = await findContainer(ref);
  // Docker shows the ports of a running container only.
  const ports = containerStatus(rec) === "running" ? rec.network?.ports ?? [] : [];
  try {
    for (const line of portLines(ports, ref, privatePort)) println(line);
  } catch (e) {
    throw Object.assign(e as Error, { exitCode: 1 });
  }
  return 0;
}

/**
 * trun's entry point: builds the command line from the command table
 * (lib/cli/commands.ts), runs the command it names and turns what it
 * throws into Docker's messages and exit codes. Command modules load
 * lazily so `trun run` pays only for what it uses. The only place that
 * calls `Deno.exit`.
 */
import { UsageError } from "./lib/cli/args.ts";
import { listingHelp, resolveCommand } from "./lib/cli/commands.ts";
import { printError, println } from "./lib/cli/output.ts";
import { trace } from "./lib/util/trace.ts";

/**
 * A compiled trun started through a link named `trun-runc` is the OCI
 * runtime with runc's command line, for engines that take a runtime path
 * (`podman --runtime`).
 */
function asRuntime(argv: string[]): string[] {
  const exe = Deno.execPath();
  return exe.slice(exe.lastIndexOf("/") + 1) === "trun-runc" ? ["runtime", ...argv] : argv;
}

async function main(argv: string[]): Promise<number> {
  trace(`main ${argv.slice(0, 2).join(" ")}`);
  const [first] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    println(listingHelp());
    return 0;
  }
  const found = resolveCommand(first === "--version" || first === "-v" ? ["version"] : argv);
  if (found.kind === "family") {
    println(listingHelp(found.name));
    return 0;
  }
  if (found.kind === "unknown") {
    printError(
      found.family
        ? `'${found.word}' is not a trun ${found.family} command\nSee 'trun ${found.family} --help'.`
        : `'${found.word}' is not a trun command.\nSee 'trun --help'`,
    );
    return 125;
  }
  try {
    if (found.entry.storage) {
      const { storageUsernsMapping, runTrunInUserns } = await import(
        "./lib/runtime/userns_exec.ts"
      );
      const mapping = storageUsernsMapping();
      if (mapping) return await runTrunInUserns(argv, mapping);
    }
    const command = await found.main();
    trace("command loaded");
    return await command(found.argv, found.name);
  } catch (e) {
    if (e instanceof UsageError) {
      printError(`${e.message}\nSee 'trun ${e.command.name} --help'.`);
      return 125;
    }
    const code = (e as { exitCode?: unknown }).exitCode;
    printError(e instanceof Error ? e.message : String(e));
    return typeof code === "number" ? code : 125;
  }
}

if (import.meta.main) {
  const status = await main(asRuntime(Deno.args));
  trace(`exit ${status}`);
  Deno.exit(status);
}

/**
 * `trun completion bash|zsh|fish`: prints a shell completion script made
 * from the command table and every command's grammar. Only this command
 * loads all the command modules (through each row's `grammar`); the others
 * keep loading just their own.
 */
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { COMMANDS } from "./commands.ts";
import { completionScript, type Shell, SHELLS } from "./completion_scripts.ts";
import { completionSpec, type EntryGrammar } from "./completion_spec.ts";
import { printHelp } from "./output.ts";

/** The grammar of `trun completion`; its help says how to install each script. */
export const COMPLETION = defineCommand({
  name: "completion",
  usage: "bash|zsh|fish",
  summary: `Generate the autocompletion script for the specified shell. It completes commands,
flags and the names of containers, images and volumes (asking trun for them).

bash (with or without the bash-completion package):
  this shell:   source <(trun completion bash)
  every shell:  trun completion bash > ~/.local/share/bash-completion/completions/trun
                (without bash-completion: add 'source <(trun completion bash)' to ~/.bashrc)

zsh (completion enabled with compinit):
  this shell:   source <(trun completion zsh)
  every shell:  trun completion zsh > "\${fpath[1]}/_trun"   (then start a new shell)

fish:
  this shell:   trun completion fish | source
  every shell:  trun completion fish > ~/.config/fish/completions/trun.fish`,
  minArgs: 1,
  maxArgs: 1,
  flags: {},
});

/** Every entry of the command table with its grammar loaded. */
export async function loadGrammars(): Promise<EntryGrammar[]> {
  return await Promise.all(
    COMMANDS.map(async (entry) => ({ entry, grammar: await entry.grammar?.() })),
  );
}

/** Runs `trun completion`. */
export async function main(argv: string[], name = COMPLETION.name): Promise<number> {
  const def = { ...COMPLETION, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const shell = p.args[0]!;
  if (!(SHELLS as readonly string[]).includes(shell)) {
    throw new UsageError(def, `unsupported shell "${shell}": use bash, zsh or fish`);
  }
  const script = completionScript(shell as Shell, completionSpec(await loadGrammars()));
  const bytes = new TextEncoder().encode(script);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
  return 0;
}

/**
 * The flags of every command that attaches (`run`, `start`, `attach`), in
 * a module of their own that imports nothing, so that each command's
 * grammar can take them without loading the others.
 */

/** `--detach-keys` and `--sig-proxy`, as Docker spells them. */
export const ATTACH_FLAGS = {
  "detach-keys": {
    kind: "string",
    value: "KEYS",
    help: 'Key sequence that detaches from the container (default "ctrl-p,ctrl-q")',
  },
  "sig-proxy": {
    kind: "bool",
    default: true,
    help: "Pass received signals on to the container (without a terminal)",
  },
} as const;

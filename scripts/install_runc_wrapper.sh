#!/bin/sh
# Installs `trun-runc`: trun's OCI runtime with runc's command line, as an
# executable that engines can be pointed at (`podman --runtime PATH`).
#
#   scripts/install_runc_wrapper.sh [DEST]     (default: /usr/local/bin/trun-runc)
#
# A compiled trun needs no wrapper: a symlink named trun-runc to it is the
# runtime. Under `deno run` this writes a two-line script that runs
# main.ts's `runtime` command. Engines call runtimes with a bare
# environment (Podman passes only XDG_RUNTIME_DIR to kill and delete), so
# the script names deno and its cache by absolute path.
set -eu
dest=${1:-/usr/local/bin/trun-runc}
here=$(cd "$(dirname "$0")/.." && pwd)
deno_bin=$(command -v deno)
deno_dir=${DENO_DIR:-$(deno info --json 2>/dev/null | sed -n 's/.*"denoDir": *"\([^"]*\)".*/\1/p')}
cat >"$dest" <<EOS
#!/bin/sh
DENO_DIR='${deno_dir}' NO_COLOR=1 exec '${deno_bin}' run -A --quiet --no-prompt '${here}/main.ts' runtime "\$@"
EOS
chmod 0755 "$dest"
echo "$dest"

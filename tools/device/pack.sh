#!/usr/bin/env bash
# Packs what the GPU benchmarks need on a device machine that reaches no
# registry: the Deno binary (xz), a DENO_DIR holding the npm packages the
# benchmarks import (tar.xz), and the Vulkan loader (.deb, unpacked there).
# Run here, from the repository root, after `source .ci/setup.sh`; the files go
# to .device/ (git-excluded), about 36 MB. Then, with the device tool:
#   run(command: "bash tools/device/run_bench.sh", carry: [".device"], timeout_s: 540)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.device
mkdir -p "$out" # ignored by .gitignore, so the device tool's `carry` takes it
deno_bin="$(command -v deno)"
deno_bin="$(readlink -f "$deno_bin")"
echo "deno: $("$deno_bin" --version | head -1) from $deno_bin" >&2
xz -6 -T0 -c "$deno_bin" > "$out/deno.xz"
dd="$(mktemp -d)"
trap 'rm -rf "$dd"' EXIT
DENO_DIR="$dd" "$deno_bin" cache --quiet bench/mod.ts cli.ts
tar -C "$dd" -cJf "$out/deno_dir.tar.xz" npm
rm -f "$out"/*.deb
(cd "$out" && apt-get download -qq libvulkan1 >&2)
ls -la "$out" >&2

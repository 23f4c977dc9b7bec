#!/usr/bin/env bash
# Runs the GPU benchmarks on a device machine (see pack.sh): unpacks Deno, its
# npm cache and the Vulkan loader carried in .device/, points the loader at
# the NVIDIA driver when it is there, prints the adapter, then runs
# `deno task bench` offline with `--json`. Results land in $OUT (bench.json,
# bench.log, adapter.txt), or in ./device-out when OUT is unset (a dry run
# here on lavapipe: `OUT=/tmp/out bash tools/device/run_bench.sh --quick`).
# Extra arguments go to the bench (default: the GPU benchmarks, full size).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-$PWD/device-out}"
mkdir -p "$out"
work="$(mktemp -d)"
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in .device/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
  /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES="$icd"; fi
done
xz -dc .device/deno.xz > "$work/deno" && chmod +x "$work/deno"
mkdir -p "$work/deno_dir" && tar -C "$work/deno_dir" -xJf .device/deno_dir.tar.xz
export DENO_DIR="$work/deno_dir" PATH="$work:$PATH" DENO_NO_UPDATE_CHECK=1
{
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  deno eval 'const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    const i = a?.info;
    console.log(JSON.stringify({ vendor: i?.vendor, architecture: i?.architecture, device: i?.device,
      description: i?.description, fallback: i?.isFallbackAdapter, features: a ? [...a.features] : [],
      maxStorageBufferBindingSize: a?.limits.maxStorageBufferBindingSize }));'
} 2>&1 | tee "$out/adapter.txt"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--only int4,decode,prefill,shape)
deno run --cached-only -A bench/mod.ts --json "${args[@]}" > "$out/bench.json" 2> "$out/bench.log"
rc=$?
tail -n 40 "$out/bench.log"
rm -rf "$work"
exit $rc

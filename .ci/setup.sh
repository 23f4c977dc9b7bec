#!/usr/bin/env bash
# Installs the toolchain: Deno (pinned, from the npm registry), Mesa's lavapipe
# Vulkan driver when no WebGPU adapter is found, and the npm packages Deno needs.
# Source it: it exports PATH and NPM_CONFIG_REGISTRY for the caller.
DENO_VERSION=2.9.6
TOOLS_DIR="${AWQ_EDGE_TOOLS:-$PWD/.cache/tools}"
export NPM_CONFIG_REGISTRY="${NPM_CONFIG_REGISTRY:-$(npm config get registry)}"
if [ ! -x "$TOOLS_DIR/node_modules/.bin/deno" ] || ! "$TOOLS_DIR/node_modules/.bin/deno" --version | grep -q "deno $DENO_VERSION"; then
  mkdir -p "$TOOLS_DIR"
  (cd "$TOOLS_DIR" && { [ -f package.json ] || echo '{"private":true}' > package.json; } &&
    npm install --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION" >&2)
fi
export PATH="$TOOLS_DIR/node_modules/.bin:$PATH"
deno --version | head -1 >&2
probe='const a = await navigator.gpu?.requestAdapter(); const f = a ? [...a.features] : []; console.log(a ? (f.includes("shader-f16") ? "f16" : "nof16") : "none");'
adapter=$(deno eval "$probe" 2>/dev/null | tail -1 || true)
if [ "$adapter" != "f16" ]; then
  echo "WebGPU adapter: '${adapter:-none}'; installing Mesa lavapipe (mesa-vulkan-drivers)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >&2
  adapter=$(deno eval "$probe" 2>/dev/null | tail -1 || true)
fi
echo "WebGPU adapter: $adapter" >&2
# Headless Chromium for the chat page test (driven by playwright-core).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "installing Debian's chromium for the chat page test" >&2
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } >&2 ||
    echo "chromium could not be installed; the chat page test will be skipped" >&2
fi
deno install --quiet >&2 || deno cache --quiet mod.ts cli.ts >&2
# Mesa warns on every process without a runtime dir; give it one.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/awq-edge-xdg-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi

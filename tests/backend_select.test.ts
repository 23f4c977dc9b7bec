import assert from "node:assert/strict";
import { type AdapterProbe, chooseBackend, parseBackend } from "../src/engine/backend.ts";
import { RequestError } from "../src/errors.ts";
import { assertCliError, runCli, sharedPresent, STORIES } from "./support/cli_run.ts";

const probe = (p: AdapterProbe) => () => Promise.resolve(p);

Deno.test("chooseBackend(auto) takes WebGPU on a hardware adapter", async () => {
  const d = await chooseBackend("auto", probe({ kind: "hardware", detail: "NVIDIA L4" }));
  assert.deepEqual(d, { backend: "webgpu", reason: "WebGPU adapter NVIDIA L4 is a hardware GPU" });
});

Deno.test("chooseBackend(auto) takes wasm on a software rasterizer and says so", async () => {
  const d = await chooseBackend(
    "auto",
    probe({ kind: "software", detail: "llvmpipe (LLVM 15.0.6, 256 bits)" }),
  );
  assert.equal(d.backend, "wasm");
  assert.equal(
    d.reason,
    "WebGPU adapter is llvmpipe (LLVM 15.0.6, 256 bits), a software rasterizer",
  );
  const f = await chooseBackend("auto", probe({ kind: "software", detail: "X", fallback: true }));
  assert.deepEqual(f, { backend: "wasm", reason: "WebGPU adapter X is a fallback adapter" });
});

Deno.test("chooseBackend(auto) takes wasm without an adapter; explicit choices are kept", async () => {
  const none = await chooseBackend(
    "auto",
    probe({ kind: "none", detail: "no WebGPU adapter was found" }),
  );
  assert.deepEqual(none, { backend: "wasm", reason: "no WebGPU adapter was found" });
  const hw = probe({ kind: "hardware", detail: "GPU" });
  assert.deepEqual(await chooseBackend("wasm", hw), { backend: "wasm", reason: "--backend wasm" });
  assert.equal((await chooseBackend("webgpu", hw)).backend, "webgpu");
});

Deno.test("parseBackend() accepts webgpu, wasm, auto and rejects the rest", () => {
  assert.equal(parseBackend(undefined), "auto");
  for (const b of ["webgpu", "wasm", "auto"]) assert.equal(parseBackend(b), b);
  assert.throws(
    () => parseBackend("cuda"),
    (e: unknown) =>
      e instanceof RequestError &&
      /--backend must be webgpu, wasm or auto \(got "cuda"\)/.test(e.message),
  );
});

Deno.test({
  name:
    "cli: --backend auto prints the backend and its reason first; bad values are one error line",
  ignore: !sharedPresent,
  async fn() {
    const r = await runCli([
      ...["generate", "--model", STORIES, "--prompt", "Once", "--max-tokens", "2", "--json"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderrLines[0], /^backend (webgpu|wasm) \(.+\)$/);
    assertCliError(
      await runCli(["generate", "--model", STORIES, "--prompt", "x", "--backend", "cuda"]),
      "--backend must be webgpu, wasm or auto",
    );
    assertCliError(
      await runCli(["eval", "--model", STORIES, "--text", "x", "--threads", "0"]),
      "--threads must be an integer in 1..256",
    );
    assertCliError(
      await runCli(["generate", "--model", STORIES, "--prompt", "x", "--activations", "int4"]),
      "--activations must be int8 or f32",
    );
  },
});

Deno.test({
  name: "cli --backend wasm: a context beyond the WebAssembly memory names the tokens that fit",
  ignore: !sharedPresent,
  async fn() {
    const r = await runCli([
      ...["generate", "--model", STORIES, "--prompt", "Once", "--backend", "wasm"],
      ...["--context", "5000000"],
    ]);
    const line = assertCliError(r, "a context of 5000000 tokens", /at most \d+ tokens fit/);
    const fits = Number(/at most (\d+) tokens fit/.exec(line)![1]);
    assert.ok(fits > 1_000_000 && fits < 5_000_000, line);
  },
});

Deno.test({
  name: "cli without WebGPU in the runtime: auto runs on wasm and says why; webgpu is one error",
  ignore: !sharedPresent,
  async fn() {
    const run = async (...extra: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", "tests/support/no_webgpu_cli.ts", "generate", "--model", STORIES],
          ...["--prompt", "Once upon a time", "--max-tokens", "5", "--json", ...extra],
        ],
        cwd: new URL("..", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      const stderrLines = dec.decode(out.stderr).split("\n")
        .filter((l) => l.trim() !== "" && !l.includes("XDG_RUNTIME_DIR"));
      return {
        code: out.code,
        stdout: dec.decode(out.stdout),
        stderr: stderrLines.join("\n"),
        stderrLines,
      };
    };
    const r = await run();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderrLines[0], "backend wasm (WebGPU is not available in this runtime)");
    assert.deepEqual(JSON.parse(r.stdout).token_ids, [432, 383, 286, 261, 376]);
    assertCliError(await run("--backend", "webgpu"), "WebGPU is not available in this runtime");
  },
});

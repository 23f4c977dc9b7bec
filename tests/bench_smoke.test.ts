/**
 * Smoke test of the benchmark suite: `bench/mod.ts --quick --json --only decode`
 * runs, and prints exactly one JSON object with every expected figure. No
 * timing thresholds: only that the figures exist and are sane numbers.
 */

import assert from "node:assert/strict";
import { BENCHMARKS, parseBenchArgs } from "../bench/mod.ts";
import {
  BENCH_483M_CONFIG,
  benchQuantizedWeights,
  benchWeights,
  parameterCount,
  STORIES260K_CONFIG,
} from "../bench/random_model.ts";
import { dequantizeLinear } from "../src/quant/quantizer.ts";
import { runQuickBench } from "./support/bench_run.ts";

/** Figures the decode benchmark must report as finite positive numbers. */
const DECODE_KEYS = [
  "tokens_per_s_rb1",
  "tokens_per_s_rb4",
  "tokens_per_s_rb16",
  "tokens_per_s_rb64",
  "ratio_rb4_vs_rb1",
  "ratio_rb16_vs_rb1",
  "ratio_rb64_vs_rb1",
  "total_ms_per_token_rb64",
  "readback_round_trip_ms",
  "gpu_submit_ms_k64",
  "gpu_ms_per_token",
  "readback_ms_per_token_rb64",
  "encode_ms_per_token",
  "gpu_share_rb64",
  "round_trip_vs_gpu_token",
];

Deno.test("bench --quick --json --only decode prints one JSON object with every figure", async () => {
  const { report, stderr } = await runQuickBench("decode");
  assert.equal(typeof report, "object");
  assert.equal(report.quick, true);
  assert.equal(typeof report.adapter, "string");
  assert.deepEqual(Object.keys(report.benchmarks), ["decode"]);
  const decode = report.benchmarks.decode;
  assert.equal(decode.error, undefined);
  assert.ok(Array.isArray(decode.notes) && decode.notes.length > 0);
  for (const [key, value] of Object.entries(decode.figures)) {
    assert.ok(typeof value === "number" && Number.isFinite(value), `${key} = ${value}`);
  }
  for (const key of DECODE_KEYS) {
    const v = decode.figures[key];
    assert.ok(typeof v === "number" && Number.isFinite(v) && v > 0, `${key} = ${v}`);
  }
  // Human-readable text goes to stderr under --json.
  assert.match(stderr, /tokens\/readback/);
});

Deno.test("bench args: --only validates names, flags parse", () => {
  assert.deepEqual(parseBenchArgs(["--quick", "--only", "decode,shape", "--json"]), {
    json: true,
    quick: true,
    only: ["decode", "shape"],
  });
  assert.deepEqual(parseBenchArgs(["--only=prefill"]).only, ["prefill"]);
  assert.throws(() => parseBenchArgs(["--only", "nope"]), /unknown benchmark nope/);
  assert.throws(() => parseBenchArgs(["--fast"]), /unknown argument/);
  assert.deepEqual(BENCHMARKS.map((b) => b.name), [
    "decode",
    "prefill",
    "shape",
    "awq",
    "server",
    "wasmgemv",
    "cpu",
    "int4",
  ]);
});

Deno.test("bench random model: shapes, f16 tag, deterministic, finite", () => {
  const a = benchWeights(STORIES260K_CONFIG);
  const b = benchWeights(STORIES260K_CONFIG);
  assert.equal(a.layers.length, 5);
  assert.deepEqual(a.layers[0].wGate.shape, [172, 64]);
  assert.equal(a.layers[0].wq.dtype, "F16");
  assert.equal(a.lmHead, a.embed); // tied
  assert.deepEqual(a.layers[4].wDown.data, b.layers[4].wDown.data);
  assert.ok(a.embed.data.every(Number.isFinite));
  assert.ok(parameterCount(a) > 250_000 && parameterCount(a) < 300_000);
});

Deno.test("bench random quantized model: int4 codes in range, f16-exact scales, lazy data", () => {
  const w = benchQuantizedWeights(STORIES260K_CONFIG, { groupSize: 32 });
  const q = w.layers[1].wDown.quantized!;
  assert.deepEqual(q.settings, { bits: 4, groupSize: 32, zeroPoint: true });
  assert.equal(q.outFeatures, 64);
  assert.equal(q.inFeatures, 172);
  assert.equal(q.scales.length, 64 * 6); // ceil(172 / 32) groups per row
  assert.ok(q.q.every((c) => c <= 15) && q.zeros.every((z) => z <= 15));
  assert.ok(new Set(q.q).size === 16, "every 4-bit code occurs");
  for (const s of q.scales) assert.equal(new Float32Array(new Float16Array([s]))[0], s);
  assert.deepEqual(w.layers[1].wDown.data, dequantizeLinear(q));
  assert.equal(w.embed.quantized, undefined);
  assert.equal(parameterCount(w), parameterCount(benchWeights(STORIES260K_CONFIG)));
});

Deno.test("bench 483M config has the issue's shape and parameter count", () => {
  const c = BENCH_483M_CONFIG;
  assert.deepEqual(
    [c.hiddenSize, c.intermediateSize, c.numLayers, c.numHeads, c.numKvHeads, c.vocabSize],
    [2048, 5632, 8, 32, 4, 32000],
  );
  assert.equal(c.tieWordEmbeddings, false);
  const dim = 2048, kv = 256, hidden = 5632;
  const perLayer = 2 * dim * dim + 2 * kv * dim + 3 * hidden * dim + 2 * dim;
  assert.equal(8 * perLayer + 2 * 32000 * dim + dim, 483_428_352);
});

/** Figures the int4 benchmark must report as finite positive numbers. */
const INT4_KEYS = [
  "mem_read_gb_per_s",
  "gemv_7b_qkvo_int4_gb_per_s",
  "gemv_7b_qkvo_int4_vs_mem_read",
  "gemv_7b_qkvo_speedup_int4_vs_f16",
  "gemv_7b_qkvo_speedup_int4_vs_f32",
  "fused_qkv_speedup",
  "fused_gate_up_silu_speedup",
  "model_resident_int4_vs_f16",
  "decode_tokens_per_s_int4",
  "decode_tokens_per_s_f16",
  "decode_speedup_int4_vs_f16",
  "prefill_speedup_int4_vs_f16",
  "split_gpu_ms_per_token",
  "split_readback_wait_ms_per_token",
];

Deno.test("bench --quick --json --only int4 reports GEMV, model and split figures", async () => {
  const { report } = await runQuickBench("int4");
  const int4 = report.benchmarks.int4;
  assert.equal(int4.error, undefined);
  for (const key of INT4_KEYS) {
    const v = int4.figures[key];
    assert.ok(typeof v === "number" && Number.isFinite(v) && v > 0, `${key} = ${v}`);
  }
  assert.ok(int4.figures.model_resident_int4_vs_f16 < 0.5, "int4 weights resident below half");
  assert.match(int4.notes.join("\n"), /--quick stand-in for the 483M model/);
});

/**
 * Smoke test of the GEMV benchmark: `bench/mod.ts --quick --json --only
 * wasmgemv` prints one JSON object with every figure a positive number (no
 * timing thresholds).
 */

import assert from "node:assert/strict";
import { runQuickBench } from "./support/bench_run.ts";

Deno.test("bench --quick --json --only wasmgemv reports GB/s and fractions of the read bandwidth", async () => {
  const bench = (await runQuickBench("wasmgemv")).report.benchmarks.wasmgemv;
  assert.equal(bench.error, undefined, bench.error);
  for (const t of [1, 2]) {
    for (
      const key of [
        `read_gbs_${t}t`,
        `q4_2048x2048_int8_${t}t_gbs`,
        `q4_2048x2048_int8_${t}t_of_read`,
        `q4_2048x2048_f32act_${t}t_gbs`,
        `f16_2048x2048_${t}t_gbs`,
        `f32_2048x2048_${t}t_gbs`,
        `q4_2048x2048_int8_${t}t_gb_per_cpu_s`,
      ]
    ) {
      const v = bench.figures[key];
      assert.ok(typeof v === "number" && Number.isFinite(v) && v > 0, `${key} = ${v}`);
    }
  }
  assert.ok(
    bench.notes.some((n: string) => n.startsWith("kernels: wasm simd128")),
    bench.notes.join("\n"),
  );
});

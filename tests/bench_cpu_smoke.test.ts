/**
 * Smoke test of the CPU benchmark: `bench/mod.ts --quick --json --only cpu`
 * prints one JSON object whose figures exist and are positive numbers (no
 * timing thresholds).
 */

import assert from "node:assert/strict";
import { runQuickBench } from "./support/bench_run.ts";

Deno.test("bench --quick --json --only cpu reports CPU and WebGPU decode and prefill rates", async () => {
  const { report } = await runQuickBench("cpu");
  const cpu = report.benchmarks.cpu;
  assert.equal(cpu.error, undefined, cpu.error);
  for (const key of ["int4_int8", "int4_f32", "f16"]) {
    for (const what of ["decode", "prefill"]) {
      const v = cpu.figures[`${what}_tps_${key}_t1`];
      assert.ok(Number.isFinite(v) && v > 0, `${what}_tps_${key}_t1 = ${v}`);
    }
  }
  for (const key of ["webgpu_decode_tps", "webgpu_prefill_tps", "decode_int4_int8_vs_f16_t1"]) {
    assert.ok(Number.isFinite(cpu.figures[key]) && cpu.figures[key] > 0, `${key}`);
  }
  assert.ok(cpu.notes.some((n: string) => n.includes("int4")), cpu.notes.join("\n"));
});

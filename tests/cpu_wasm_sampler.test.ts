/**
 * The WebAssembly sampler (`WasmKernels.sample`, src/cpu/wasm_sampler.ts)
 * against the reference `sampleLogits` (src/engine/host_sampler.ts), for both
 * instruction sets.
 *
 * Greedy picks must be the reference's exactly. Draws are f32 in SIMD (the
 * reference f64), so a draw may differ where it falls within float rounding
 * of a boundary: each such draw must be one the reference distribution
 * gives for a draw or a top-p moved by at most 1e-6, and at least 99% of the
 * draws must agree.
 */

import assert from "node:assert/strict";
import type { CpuKernels } from "../src/cpu/cpu_kernels.ts";
import { TsKernels } from "../src/cpu/ts_kernels.ts";
import { createWasmKernels, type WasmKernels } from "../src/cpu/wasm_kernels.ts";
import { detectWasmFeatures } from "../src/cpu/wasm/kernels_module.ts";
import type { SimdVariant } from "../src/cpu/wasm/kernels_wat.ts";
import { sampleLogits, samplerDraw } from "../src/engine/host_sampler.ts";
import {
  type ResolvedSampling,
  resolveSampling,
  type SamplingOptions,
} from "../src/engine/sampling_options.ts";
import { rng } from "./support/cpu_inputs.ts";
import { drawFrom, samplerDistribution } from "./support/reference_sampler.ts";

const VARIANTS: SimdVariant[] = detectWasmFeatures().relaxed ? ["relaxed", "plain"] : ["plain"];
const SIZES = [1, 3, 5, 4097, 32000];
/** How far a draw (or top-p) may move for a differing draw to count as a boundary case. */
const BOUNDARY = 1e-6;

/** Roughly normal logits with standard deviation `sd` (a sum of three uniforms). */
function randomLogits(r: () => number, n: number, sd = 2): Float32Array {
  return Float32Array.from({ length: n }, () => (r() + r() + r() - 1.5) * 2 * sd);
}

/** A context of `n` ids below `vocab`, plus two outside it (which the penalty ignores). */
function randomContext(r: () => number, vocab: number, n: number): number[] {
  return [...Array.from({ length: n }, () => Math.floor(r() * vocab)), -1, vocab + 2];
}

async function withKernels(variant: SimdVariant, fn: (k: WasmKernels) => void | Promise<void>) {
  const k = await createWasmKernels({ threads: 1, simd: variant });
  try {
    await fn(k);
  } finally {
    k.destroy();
  }
}

/** Whether `id` is what the f64 reference distribution picks for a draw or top-p within BOUNDARY. */
function isBoundaryCase(
  logits: Float32Array,
  context: number[],
  s: ResolvedSampling,
  id: number,
): boolean {
  const u = samplerDraw(s.seed, context.length);
  for (const dp of [0, -BOUNDARY, BOUNDARY]) {
    const topP = Math.min(1, s.topP * (1 + dp));
    const probs = samplerDistribution(logits, context, { ...s, topP });
    for (const du of [0, -BOUNDARY, BOUNDARY]) {
      if (drawFrom(probs, Math.min(Math.max(u + du, 0), 1 - 2 ** -24)) === id) return true;
    }
  }
  return false;
}

/**
 * Samples 2000 times (seeds 0..): 450 draws from each of `SIZES` logits but
 * the largest, 200 from it, with both the reference and `k`; returns how many
 * agree and the differing draws that are not boundary cases.
 */
function compareDraws(k: CpuKernels, o: SamplingOptions, seed: number) {
  let same = 0, total = 0;
  const wrong: string[] = [];
  for (const V of SIZES) {
    const r = rng(seed * 7919 + V);
    const n = V === 32000 ? 200 : 450;
    let logits = randomLogits(r, 0);
    for (let d = 0; d < n; d++) {
      if (d % 50 === 0) logits = randomLogits(r, V, 1 + 3 * r()); // a new row every 50 draws
      const context = randomContext(r, V, 1 + Math.floor(r() * 40));
      const s = resolveSampling({ ...o, seed: d });
      const want = sampleLogits(logits, context, s), got = k.sample(logits, context, s);
      total++;
      if (got === want) same++;
      else if (!isBoundaryCase(logits, context, s, got)) {
        wrong.push(`vocab ${V}, draw ${d}: ${got} (reference ${want})`);
      }
    }
  }
  return { same, total, wrong };
}

for (const variant of VARIANTS) {
  Deno.test(`sample() (${variant}) greedy is sampleLogits exactly, ties and penalties included`, async () => {
    await withKernels(variant, (k) => {
      const r = rng(1);
      for (let trial = 0; trial < 400; trial++) {
        const V = SIZES[trial % SIZES.length];
        // few distinct values: ties everywhere
        const logits = Float32Array.from({ length: V }, () => Math.round(r() * 6) - 3);
        const context = randomContext(r, V, Math.floor(r() * 30));
        for (
          const o of [
            {},
            { repetitionPenalty: 1.5 },
            {
              repetitionPenalty: 0.7,
              repetitionWindow: 4,
            },
            { presencePenalty: 1 },
            { frequencyPenalty: 0.5, repetitionWindow: 6 },
            {
              repetitionPenalty: 1.2,
              presencePenalty: -0.5,
              frequencyPenalty: 0.25,
            },
          ]
        ) {
          const s = resolveSampling(o);
          assert.equal(
            k.sample(logits, context, s),
            sampleLogits(logits, context, s),
            `trial ${trial}, ${JSON.stringify(o)}`,
          );
        }
      }
    });
  });

  Deno.test(`sample() (${variant}) greedy takes the lowest id among tied maxima across lanes`, async () => {
    await withKernels(variant, (k) => {
      const greedy = resolveSampling();
      assert.equal(k.sample(new Float32Array([1, 5, 2, 5, 5, 0, 5, 5, 5]), [], greedy), 1);
      const l = new Float32Array(4097).fill(-2);
      l[4096] = 7;
      l[4095] = 7;
      assert.equal(k.sample(l, [], greedy), 4095);
      l[6] = 7;
      assert.equal(k.sample(l, [], greedy), 6);
      // a penalised token tied with an unpenalised one: still the lowest id
      assert.equal(
        k.sample(new Float32Array([1, 2, 4]), [2], resolveSampling({ repetitionPenalty: 2 })),
        1,
      );
      assert.equal(
        k.sample(new Float32Array([4, 2, 1]), [0], resolveSampling({ repetitionPenalty: 2 })),
        0,
      );
    });
  });

  Deno.test(`sample() (${variant}) greedy compares penalised logits in f64, as the reference does`, async () => {
    await withKernels(variant, (k) => {
      // a penalised logit just above an unpenalised one that equals its f32 rounding
      let a = 2.5;
      while (a / 1.1 <= Math.fround(a / 1.1)) a = Math.fround(a + 0.001);
      const l = new Float32Array([Math.fround(a / 1.1), 0, a]);
      const s = resolveSampling({ repetitionPenalty: 1.1 });
      assert.equal(sampleLogits(l, [2], s), 2);
      assert.equal(k.sample(l, [2], s), 2);
    });
  });

  Deno.test(`sample() (${variant}) greedy handles -Infinity, huge values and NaN like the reference`, async () => {
    await withKernels(variant, (k) => {
      const greedy = resolveSampling();
      const pen = resolveSampling({ repetitionPenalty: 1.3 });
      const cases: number[][] = [
        [-Infinity, -Infinity, -Infinity],
        [-Infinity, -Infinity, -3e38, -Infinity, -3e38],
        [1, 3e38, -3e38, 3e38, 2],
        [1, Infinity, 2, Infinity, 3],
        [NaN, 5, 6],
        [1, NaN, 0, NaN, 3, NaN],
        [NaN, NaN, NaN, NaN, NaN],
        [-Infinity, NaN, -Infinity],
      ];
      for (const c of cases) {
        const l = new Float32Array(c);
        for (const ctx of [[], [1], [0, 3], [4, 4]]) {
          for (const s of [greedy, pen]) {
            assert.equal(k.sample(l, ctx, s), sampleLogits(l, ctx, s), `${c} ${ctx}`);
          }
        }
      }
    });
  });

  Deno.test(`sample() (${variant}) draws agree with sampleLogits outside float rounding of a boundary`, async () => {
    await withKernels(variant, (k) => {
      const settings: SamplingOptions[] = [
        { temperature: 1 },
        { temperature: 0.6, repetitionPenalty: 1.3 },
        { temperature: 0.8, topK: 1 },
        { temperature: 0.8, topK: 40 },
        { temperature: 1.2, topK: 40000 },
        { temperature: 0.9, topP: 0.01 },
        { temperature: 0.9, topP: 0.9 },
        { temperature: 0.9, topP: 1 },
        { temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.2, repetitionWindow: 8 },
        { temperature: 1.5, topK: 200, topP: 0.5, repetitionPenalty: 0.8 },
        { temperature: 0.8, topP: 0.9, presencePenalty: 0.6, frequencyPenalty: 0.3 },
      ];
      for (const [i, o] of settings.entries()) {
        const { same, total, wrong } = compareDraws(k, o, i);
        assert.equal(total, 2000);
        assert.deepEqual(wrong, [], JSON.stringify(o));
        assert.ok(same >= 0.99 * total, `${JSON.stringify(o)}: ${same} of ${total} agree`);
      }
    });
  });

  Deno.test(`sample() (${variant}) with top-k 3 only ever picks the 3 largest logits`, async () => {
    await withKernels(variant, (k) => {
      const r = rng(5);
      const l = randomLogits(r, 4097, 0.5);
      const top = [...l.keys()].sort((a, b) => l[b] - l[a]).slice(0, 3);
      const seen = new Map<number, number>();
      for (let seed = 0; seed < 600; seed++) {
        const id = k.sample(l, [], resolveSampling({ temperature: 1, topK: 3, seed }));
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      assert.deepEqual([...seen.keys()].sort((a, b) => a - b), top.sort((a, b) => a - b));
      for (const [id, n] of seen) assert.ok(n > 100, `id ${id} drawn ${n} times of 600`);
    });
  });

  Deno.test(`sample() (${variant}) top-k and top-p keep every logit tied at the threshold`, async () => {
    await withKernels(variant, (k) => {
      const l = new Float32Array(37).fill(-4);
      l.set([3, 2, 2, 2], 10); // ids 11-13 tie for second place
      for (const o of [{ topK: 2 }, { topP: 0.75 }]) {
        const seen = new Set<number>();
        for (let seed = 0; seed < 300; seed++) {
          const s = resolveSampling({ ...o, temperature: 1, seed });
          const id = k.sample(l, [], s);
          assert.equal(id, sampleLogits(l, [], s), `${JSON.stringify(o)}, seed ${seed}`);
          seen.add(id);
        }
        assert.deepEqual([...seen].sort(), [10, 11, 12, 13], JSON.stringify(o));
      }
    });
  });

  Deno.test(`sample() (${variant}) finds thresholds among logits spread over many magnitudes`, async () => {
    await withKernels(variant, (k) => {
      // -1.01^i for i < 4097 (-1 down to -5e17), shuffled: halving the value range
      // this takes more steps than halving the f32 bit patterns
      const l = Float32Array.from({ length: 4097 }, (_, i) => -(1.01 ** ((i * 1237) % 4097)));
      for (const o of [{ topK: 100 }, { topP: 0.5 }, { topK: 300, topP: 0.9 }]) {
        let same = 0;
        for (let seed = 0; seed < 300; seed++) {
          const s = resolveSampling({ ...o, temperature: 1, seed });
          const got = k.sample(l, [], s);
          if (got === sampleLogits(l, [], s)) same++;
          else assert.ok(isBoundaryCase(l, [], s, got), `${JSON.stringify(o)}, seed ${seed}`);
        }
        assert.ok(same >= 297, `${JSON.stringify(o)}: ${same} of 300 agree`);
      }
    });
  });

  Deno.test(`sample() (${variant}) draws with NaN or infinite logits are the reference's`, async () => {
    await withKernels(variant, (k) => {
      const r = rng(9);
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const at of [0, 1, 4096]) {
          const l = randomLogits(r, 4097);
          l[at] = bad;
          l[(at + 17) % 4097] = -Infinity;
          for (const o of [{}, { topK: 5 }, { topP: 0.5 }, { topK: 9, topP: 0.9 }]) {
            for (let seed = 0; seed < 20; seed++) {
              const s = resolveSampling({ ...o, temperature: 0.8, seed });
              assert.equal(k.sample(l, [3], s), sampleLogits(l, [3], s), `${bad} at ${at} ${seed}`);
            }
          }
        }
      }
    });
  });
}

Deno.test("TsKernels.sample() is sampleLogits", () => {
  const k = new TsKernels();
  const l = randomLogits(rng(3), 101);
  for (let seed = 0; seed < 50; seed++) {
    const s = resolveSampling({ temperature: 1, topP: 0.9, seed });
    assert.equal(k.sample(l, [1, 2], s), sampleLogits(l, [1, 2], s));
  }
  k.destroy();
});

// shaders/sample.wgsl over rows of several slots, against tests/support/reference_sampler.ts, row
// by row: each row samples from its own logits row with its slot's settings,
// context (repetition penalty) and (seed, position) draw, and the bookkeeping
// (out[slot·stride + step], ctx, tokens[row], state, EOS/done) is per slot.

import assert from "node:assert/strict";
import {
  resolveSampling,
  samplerUniform,
  type SamplingOptions,
} from "../src/engine/sampling_options.ts";
import { packUniform } from "../src/gpu/uniforms.ts";
import { drawFrom, samplerDistribution, samplerUniformDraw } from "./support/reference_sampler.ts";
import { type KernelHarness, mulberry32, randomFloats, withKernels } from "./support/seeded.ts";

const NONE = 0xffffffff;
const STRIDE = 8;

interface Slot {
  options: SamplingOptions;
  /** ctx[0..end) of the slot; state.pos = end - 1, nTok = 1. */
  ctx: number[];
  done?: number;
  eos?: number[];
}

/** Runs `steps` sampleBatched dispatches over `rows` (slot per row) and reads everything back. */
async function run(
  h: KernelHarness,
  slots: Slot[],
  rows: number[],
  logits: Float32Array,
  V: number,
  maxSeq: number,
  steps = 1,
) {
  const S = slots.length;
  const params = new Uint8Array(S * 64);
  slots.forEach((s, i) => {
    const fields = samplerUniform(resolveSampling(s.options), V, maxSeq, s.eos ?? []);
    params.set(new Uint8Array(packUniform(fields)), i * 64);
  });
  const ctx0 = new Uint32Array(S * maxSeq).fill(0xabcdef);
  slots.forEach((s, i) => ctx0.set(s.ctx, i * maxSeq));
  const ctx = h.u32(ctx0);
  const tokens = h.u32(new Uint32Array(rows.length).fill(0xdead));
  const states = h.u32(slots.flatMap((s) => [s.ctx.length - 1, 1, 0, s.done ?? 0]));
  const out = h.u32(new Uint32Array(S * STRIDE).fill(0x5eed));
  const paramsBuf = h.pool.upload(params, "params");
  const d = await h.kernels.sampleBatched(
    h.f32(logits),
    h.pool.acquire(rows.length * V * 4, "work"),
    ctx,
    tokens,
    states,
    out,
    paramsBuf,
    h.u32(rows.flatMap((s) => [s, 0])),
    rows.length,
    STRIDE,
  );
  h.run(...Array.from({ length: steps }, () => d));
  const st = await h.readU32(states, S * 4);
  const ctxOut = await h.readU32(ctx, S * maxSeq);
  const outAll = await h.readU32(out, S * STRIDE);
  return {
    out: slots.map((_, i) => [...outAll.subarray(i * STRIDE, (i + 1) * STRIDE)]),
    ctx: slots.map((_, i) => [...ctxOut.subarray(i * maxSeq, (i + 1) * maxSeq)]),
    states: slots.map((_, i) => [...st.subarray(i * 4, i * 4 + 4)]),
    tokens: [...await h.readU32(tokens, rows.length)],
  };
}

Deno.test("sampleBatched picks each row's greedy id with its own slot's repetition penalty", () =>
  withKernels(async (h) => {
    const V = 300;
    const rng = mulberry32(11);
    const slots: Slot[] = [
      { options: {}, ctx: [1, 2, 3] },
      { options: { repetitionPenalty: 3 }, ctx: [4, 5] },
      { options: { repetitionPenalty: 3, repetitionWindow: 1 }, ctx: [6, 7] },
    ];
    const rows = [2, 0, 1];
    const logits = randomFloats(rng, rows.length * V, -3, 3);
    // Make each row's top id a context token of its slot, so the penalty matters.
    rows.forEach((s, r) => {
      for (const tok of slots[s].ctx) logits[r * V + tok] = 5 + tok * 0.01;
    });
    const r = await run(h, slots, rows, logits, V, 32);
    rows.forEach((s, row) => {
      const want = drawFrom(
        samplerDistribution(
          logits.subarray(row * V, (row + 1) * V),
          slots[s].ctx,
          resolveSampling(slots[s].options),
        ),
        0,
      );
      assert.equal(r.out[s][0], want, `row ${row} (slot ${s})`);
      assert.equal(r.tokens[row], want, `tokens[${row}]`);
    });
    // slot 0 has no penalty: its top context token wins; slot 2 only penalises token 7
    assert.equal(r.out[0][0], 3);
    assert.equal(r.out[2][0], 6);
  }));

Deno.test("sampleBatched draws each row with its slot's seed at its slot's position, like the reference", () =>
  withKernels(async (h) => {
    const V = 40;
    const S = 24;
    const rng = mulberry32(12);
    const slots: Slot[] = Array.from({ length: S }, (_, i) => ({
      options: { temperature: 0.9, topK: 12, topP: 0.9, seed: 100 + i },
      ctx: Array.from({ length: 1 + (i % 7) }, (_, j) => (j * 13 + i) % V),
    }));
    const rows = Array.from({ length: S }, (_, i) => (i * 5) % S); // a permutation
    const logits = randomFloats(rng, S * V, -3, 3);
    const r = await run(h, slots, rows, logits, V, 16);
    let checked = 0;
    rows.forEach((s, row) => {
      const probs = samplerDistribution(
        logits.subarray(row * V, (row + 1) * V),
        slots[s].ctx,
        resolveSampling(slots[s].options),
      );
      const u = samplerUniformDraw(100 + s, slots[s].ctx.length);
      let run = 0;
      let near = false;
      for (const p of probs) {
        run += p;
        if (p > 0 && Math.abs(u - run) < 1e-4) near = true;
      }
      if (near) return;
      checked++;
      assert.equal(r.out[s][0], drawFrom(probs, u), `row ${row}, slot ${s}`);
    });
    assert.ok(checked >= S - 3, `only ${checked} draws checked`);
  }));

Deno.test("sampleBatched keeps per-slot bookkeeping: out, ctx, tokens, state, EOS and done", () =>
  withKernels(async (h) => {
    const V = 50;
    const logits = new Float32Array(3 * V).fill(0);
    logits[0 * V + 17] = 3; // row 0 → slot 1: 17, three times
    logits[1 * V + 42] = 3; // row 1 → slot 0: EOS 42, then done
    logits[2 * V + 8] = 3; // row 2 → slot 2: already done
    const slots: Slot[] = [
      { options: {}, ctx: [1, 2, 3], eos: [42] },
      { options: {}, ctx: [5, 6], eos: [42] },
      { options: {}, ctx: [9], done: 1 },
    ];
    const r = await run(h, slots, [1, 0, 2], logits, V, 16, 3);
    assert.deepEqual(r.out[0].slice(0, 4), [42, NONE, NONE, 0x5eed]);
    assert.deepEqual(r.out[1].slice(0, 4), [17, 17, 17, 0x5eed]);
    assert.deepEqual(r.out[2].slice(0, 4), [NONE, NONE, NONE, 0x5eed]);
    assert.deepEqual(r.ctx[0].slice(0, 5), [1, 2, 3, 42, 0xabcdef]);
    assert.deepEqual(r.ctx[1].slice(0, 6), [5, 6, 17, 17, 17, 0xabcdef]);
    assert.deepEqual(r.ctx[2].slice(0, 2), [9, 0xabcdef]);
    assert.deepEqual(r.tokens, [17, 42, 0xdead]);
    assert.deepEqual(r.states, [[3, 1, 3, 1], [4, 1, 3, 0], [0, 1, 3, 1]]);
  }));

Deno.test("sampleBatched sets done for a slot whose context is full, and only that slot", () =>
  withKernels(async (h) => {
    const V = 20;
    const logits = new Float32Array(2 * V).fill(0);
    logits[4] = 3;
    logits[V + 5] = 3;
    const slots: Slot[] = [{ options: {}, ctx: [1, 2, 3] }, { options: {}, ctx: [1] }];
    const r = await run(h, slots, [0, 1], logits, V, 4, 3);
    // slot 0: end 3 < 4 stores ctx[3]; end 4 emits without storing, then done
    assert.deepEqual(r.out[0].slice(0, 3), [4, 4, NONE]);
    assert.deepEqual(r.states[0], [3, 1, 3, 1]);
    assert.deepEqual(r.out[1].slice(0, 3), [5, 5, 5]);
    assert.deepEqual(r.ctx[1], [1, 5, 5, 5]);
    assert.deepEqual(r.states[1], [3, 1, 3, 0]);
  }));

// shaders/sample.wgsl against tests/support/reference_sampler.ts: greedy and
// ties, top-k 1, seeds, the kept set and its empirical distribution,
// repetition, presence and frequency penalties, and the state/ctx/tokens/out
// bookkeeping.

import assert from "node:assert/strict";
import {
  resolveSampling,
  samplerUniform,
  type SamplingOptions,
} from "../src/engine/sampling_options.ts";
import { createUniform } from "../src/gpu/uniforms.ts";
import {
  argmax,
  drawFrom,
  penalised,
  samplerDistribution,
  samplerUniformDraw,
} from "./support/reference_sampler.ts";
import { type KernelHarness, mulberry32, randomFloats, withKernels } from "./support/seeded.ts";

const NONE = 0xffffffff;

interface Setup {
  logits: ArrayLike<number>;
  /** Context tokens ctx[0..end); state.pos + state.nTok = end. */
  ctx?: number[];
  /** state.nTok (default 1, the rest of the context counted in state.pos). */
  nTok?: number;
  step?: number;
  done?: number;
  maxSeq?: number;
  eos?: number[];
}

/**
 * Runs one sample dispatch per entry of `runs` (in one batch, sharing the
 * buffers, so each sees the state the previous one left) and reads everything back.
 */
async function sample(h: KernelHarness, setup: Setup, runs: SamplingOptions[]) {
  const V = setup.logits.length;
  const maxSeq = setup.maxSeq ?? 64;
  const ctx0 = setup.ctx ?? [1];
  const nTok = setup.nTok ?? 1;
  const ctxInit = new Uint32Array(maxSeq).fill(0xabcdef);
  ctxInit.set(ctx0);
  const outLen = (setup.step ?? 0) + runs.length + 2;
  const logits = h.f32(setup.logits);
  const work = h.pool.acquire(V * 4, "work");
  const ctx = h.u32(ctxInit);
  const tokens = h.u32([0xdead, 0xdead, 0xdead, 0xdead]);
  const state = h.u32([ctx0.length - nTok, nTok, setup.step ?? 0, setup.done ?? 0]);
  const out = h.u32(new Uint32Array(outLen).fill(0x5eed));
  const cache = new Map<string, Awaited<ReturnType<typeof h.kernels.sample>>>();
  const dispatches = [];
  for (const o of runs) {
    const key = JSON.stringify(o);
    let d = cache.get(key);
    if (!d) {
      const fields = samplerUniform(resolveSampling(o), V, maxSeq, setup.eos ?? []);
      const params = createUniform(h.gpu, fields, { storage: true });
      d = await h.kernels.sample(logits, work, ctx, tokens, state, out, params);
      cache.set(key, d);
    }
    dispatches.push(d);
  }
  h.run(...dispatches);
  const st = await h.readU32(state, 4);
  return {
    out: [...await h.readU32(out, outLen)],
    state: { pos: st[0], nTok: st[1], step: st[2], done: st[3] },
    ctx: [...await h.readU32(ctx, maxSeq)],
    tokens: [...await h.readU32(tokens, 4)],
  };
}

/** Distinct, well separated logits: a shuffled ramp from lo with steps of `step`. */
function rampLogits(rng: () => number, V: number, lo: number, step: number): Float32Array {
  const ids = Array.from({ length: V }, (_, i) => i);
  for (let i = V - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const out = new Float32Array(V);
  ids.forEach((id, rank) => (out[id] = lo + rank * step));
  return out;
}

Deno.test("sample with temperature 0 picks the argmax of random logits", () =>
  withKernels(async (h) => {
    const rng = mulberry32(1);
    for (const V of [7, 256, 1000]) {
      const logits = randomFloats(rng, V, -5, 5);
      const r = await sample(h, { logits }, [{}]);
      assert.equal(r.out[0], argmax(logits), `V ${V}`);
    }
  }));

Deno.test("sample with temperature 0 breaks ties by the lowest id, within and across invocations", () =>
  withKernels(async (h) => {
    const cases: [number[], number][] = [
      [[300, 44, 813], 44], // 44 and 300 share an invocation (stride 256)
      [[999, 257], 257],
      [[256, 255], 255], // 255 is the last invocation's first element, 256 the first's second
      [[0, 999], 0],
    ];
    for (const [ids, want] of cases) {
      const logits = randomFloats(mulberry32(2), 1000, -5, 5);
      for (const id of ids) logits[id] = 9;
      const r = await sample(h, { logits }, [{}]);
      assert.equal(r.out[0], want, `ties at ${ids}`);
    }
  }));

Deno.test("sample with topK 1 equals greedy at any temperature and seed", () =>
  withKernels(async (h) => {
    const logits = randomFloats(mulberry32(3), 500, -3, 3);
    const want = argmax(logits);
    const runs = [0.1, 1, 10, 1000].flatMap((temperature) =>
      [0, 1, 2, 3].map((seed) => ({ temperature, topK: 1, seed }))
    );
    const r = await sample(h, { logits, maxSeq: 128 }, runs);
    assert.deepEqual(r.out.slice(0, runs.length), runs.map(() => want));
  }));

Deno.test("sample with the same seed and context draws the same id", () =>
  withKernels(async (h) => {
    const logits = randomFloats(mulberry32(4), 300, -1, 1);
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const r = await sample(h, { logits, ctx: [5, 6, 7] }, [{ temperature: 1, seed: 1234 }]);
      ids.push(r.out[0]);
    }
    assert.equal(new Set(ids).size, 1, `draws ${ids}`);
  }));

Deno.test("sample with different seeds eventually draws different ids", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(100); // uniform: any id is as likely as any other
    const ids = new Set<number>();
    for (let seed = 0; seed < 16; seed++) {
      const r = await sample(h, { logits, ctx: [5, 6, 7] }, [{ temperature: 1, seed }]);
      ids.add(r.out[0]);
    }
    assert.ok(ids.size >= 8, `16 seeds drew only ${ids.size} distinct ids`);
  }));

Deno.test("sample draws the reference's id for the same (seed, position) uniform", () =>
  withKernels(async (h) => {
    const logits = rampLogits(mulberry32(5), 40, -3, 0.1);
    const runs = Array.from(
      { length: 200 },
      (_, seed) => ({ temperature: 0.8, topK: 12, topP: 0.9, seed }),
    );
    const r = await sample(h, { logits, maxSeq: 256 }, runs);
    const probs = samplerDistribution(logits, [], resolveSampling(runs[0]));
    let checked = 0;
    runs.forEach((o, i) => {
      const u = samplerUniformDraw(o.seed, 1 + i); // the context holds 1 + i tokens at step i
      // skip draws within 1e-4 of a cumulative boundary (f32 vs f64 sums)
      let run = 0;
      let near = false;
      for (const p of probs) {
        run += p;
        if (p > 0 && Math.abs(u - run) < 1e-4) near = true;
      }
      if (near) return;
      checked++;
      assert.equal(r.out[i], drawFrom(probs, u), `seed ${o.seed}, u ${u}`);
    });
    assert.ok(checked > 180, `only ${checked} draws checked`);
  }));

for (
  const [label, o] of [
    ["top-k 8", { topK: 8 }],
    ["top-p 0.7", { topP: 0.7 }],
    ["top-k 10 then top-p 0.6", { topK: 10, topP: 0.6 }],
    ["temperature 2 with top-k 6", { temperature: 2, topK: 6 }],
  ] as [string, SamplingOptions][]
) {
  Deno.test(`sample with ${label} draws only the reference's kept set, in proportion`, () =>
    withKernels(async (h) => {
      const logits = rampLogits(mulberry32(6), 40, -3, 0.15);
      const s = { temperature: 1, ...o };
      const probs = samplerDistribution(logits, [], resolveSampling(s));
      const kept = probs.filter((p) => p > 0).length;
      assert.ok(kept >= 3 && kept < 40, `the kept set has ${kept} ids`);
      const N = 2000;
      const runs = Array.from({ length: N }, (_, i) => ({ ...s, seed: i % 4 }));
      const r = await sample(h, { logits, maxSeq: N + 8 }, runs);
      const counts = new Array(40).fill(0);
      for (const id of r.out.slice(0, N)) {
        assert.ok(id < 40 && probs[id] > 0, `drew ${id}, outside the kept set`);
        counts[id]++;
      }
      probs.forEach((p, id) => {
        if (p === 0) return;
        const sd = Math.sqrt(N * p * (1 - p));
        assert.ok(
          Math.abs(counts[id] - N * p) <= 5 * sd + 2,
          `id ${id}: drawn ${counts[id]} times, expected ${(N * p).toFixed(1)} ± ${sd.toFixed(1)}`,
        );
      });
    }));
}

Deno.test("sample's repetition penalty divides positive logits of context tokens and can change the greedy pick", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(20).fill(-2);
    logits[3] = 5;
    logits[7] = 4;
    const ctx = [3, 11];
    const strong = await sample(h, { logits, ctx }, [{ repetitionPenalty: 1.5 }]);
    assert.equal(strong.out[0], 7, "5 / 1.5 < 4");
    const mild = await sample(h, { logits, ctx }, [{ repetitionPenalty: 1.2 }]);
    assert.equal(mild.out[0], 3, "5 / 1.2 > 4");
    assert.equal(argmax(penalised(logits, ctx, 1.5)), 7);
  }));

Deno.test("sample's repetition penalty multiplies negative logits of context tokens", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(20).fill(-5);
    logits[2] = -1;
    logits[5] = -1.1;
    const r = await sample(h, { logits, ctx: [2] }, [{ repetitionPenalty: 1.2 }]);
    assert.equal(r.out[0], 5, "-1 · 1.2 < -1.1");
    assert.equal(argmax(penalised(logits, [2], 1.2)), 5);
  }));

Deno.test("sample's repetition penalty applies once per distinct context token", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(20).fill(-2);
    logits[3] = 5;
    logits[7] = 3.5;
    // once: 5 / 1.3 = 3.85 > 3.5; three times it would be 2.28
    const r = await sample(h, { logits, ctx: [3, 3, 3] }, [{ repetitionPenalty: 1.3 }]);
    assert.equal(r.out[0], 3);
  }));

Deno.test("sample's repetition window only penalises the last repetitionWindow context tokens", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(20).fill(-2);
    logits[3] = 5;
    logits[7] = 4;
    const ctx = [3, 1, 2];
    const windowed = await sample(h, { logits, ctx }, [{
      repetitionPenalty: 2,
      repetitionWindow: 2,
    }]);
    assert.equal(windowed.out[0], 3, "3 is outside the window of 2");
    const all = await sample(h, { logits, ctx }, [{ repetitionPenalty: 2, repetitionWindow: 3 }]);
    assert.equal(all.out[0], 7, "3 is inside the window of 3");
  }));

Deno.test("sample's presence penalty subtracts once per distinct context token", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(20).fill(-2);
    logits[3] = 5;
    logits[7] = 4.6;
    // once: 5 - 0.5 = 4.5 < 4.6, however often 3 occurs; 0.3 keeps 3 ahead (4.7)
    for (const ctx of [[3], [3, 3, 3]]) {
      const r = await sample(h, { logits, ctx }, [{ presencePenalty: 0.5 }]);
      assert.equal(r.out[0], 7, `context ${ctx}`);
      assert.equal(argmax(penalised(logits, ctx, 1, 0, 0.5)), 7);
    }
    const mild = await sample(h, { logits, ctx: [3, 3, 3] }, [{ presencePenalty: 0.3 }]);
    assert.equal(mild.out[0], 3);
  }));

Deno.test("sample's frequency penalty subtracts per occurrence, after the repetition penalty, within the window", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(20).fill(-2);
    logits[3] = 5;
    logits[7] = 4.25;
    // 5 - 3 · 0.3 = 4.1 < 4.25; twice: 4.4 > 4.25
    const three = await sample(h, { logits, ctx: [3, 1, 3, 3] }, [{ frequencyPenalty: 0.3 }]);
    assert.equal(three.out[0], 7);
    const two = await sample(h, { logits, ctx: [3, 1, 3, 3] }, [{
      frequencyPenalty: 0.3,
      repetitionWindow: 3,
    }]);
    assert.equal(two.out[0], 3, "the window of 3 holds two 3s");
    // repetition 1.1 then presence and frequency: 5 / 1.1 - 0.2 - 2 · 0.05 = 4.245 < 4.25
    const all = await sample(h, { logits, ctx: [3, 3] }, [{
      repetitionPenalty: 1.1,
      presencePenalty: 0.2,
      frequencyPenalty: 0.05,
    }]);
    assert.equal(all.out[0], 7);
    // a negative frequency penalty favours repeated tokens
    const neg = await sample(h, { logits: logits.map((v, i) => i === 7 ? 5.5 : v), ctx: [3, 3] }, [{
      frequencyPenalty: -0.5,
    }]);
    assert.equal(neg.out[0], 3, "5 + 2 · 0.5 = 6 > 5.5");
  }));

Deno.test("sample with presence and frequency penalties draws the reference's id for the same uniform", () =>
  withKernels(async (h) => {
    const r = mulberry32(99);
    const logits = rampLogits(r, 64, -2, 0.07);
    const ctx = Array.from({ length: 30 }, () => Math.floor(r() * 16));
    const o = {
      temperature: 0.9,
      topK: 20,
      topP: 0.9,
      presencePenalty: 0.7,
      frequencyPenalty: 0.4,
    };
    const probs = samplerDistribution(logits, ctx, resolveSampling(o));
    let checked = 0;
    for (let seed = 0; seed < 24; seed++) {
      const u = samplerUniformDraw(seed, ctx.length);
      let run = 0;
      let near = false;
      for (const p of probs) {
        run += p;
        if (p > 0 && Math.abs(u - run) < 1e-4) near = true;
      }
      if (near) continue;
      checked++;
      const got = await sample(h, { logits, ctx, maxSeq: 64 }, [{ ...o, seed }]);
      assert.equal(got.out[0], drawFrom(probs, u), `seed ${seed}, u ${u}`);
    }
    assert.ok(checked > 20, `only ${checked} draws checked`);
  }));

Deno.test("sample writes out[step], appends to ctx, feeds the id as the next token and advances the state", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(50).fill(0);
    logits[17] = 3;
    const ctx = [5, 6, 7, 8, 9];
    const r = await sample(h, { logits, ctx, nTok: 3, step: 4, maxSeq: 16 }, [{}, {}]);
    assert.deepEqual(r.out.slice(0, 8), [0x5eed, 0x5eed, 0x5eed, 0x5eed, 17, 17, 0x5eed, 0x5eed]);
    assert.deepEqual(r.ctx.slice(0, 8), [5, 6, 7, 8, 9, 17, 17, 0xabcdef]);
    assert.deepEqual(r.tokens, [17, 0xdead, 0xdead, 0xdead]);
    assert.deepEqual(r.state, { pos: 6, nTok: 1, step: 6, done: 0 });
  }));

Deno.test("sample sets state.done on an EOS id, and later steps write 0xffffffff and leave the context alone", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(50).fill(0);
    logits[42] = 3;
    const ctx = [1, 2, 3];
    const r = await sample(h, { logits, ctx, eos: [9, 42], maxSeq: 16 }, [{}, {}, {}]);
    assert.deepEqual(r.out.slice(0, 4), [42, NONE, NONE, 0x5eed]);
    assert.deepEqual(r.ctx.slice(0, 5), [1, 2, 3, 42, 0xabcdef]);
    assert.deepEqual(r.state, { pos: 3, nTok: 1, step: 3, done: 1 });
  }));

Deno.test("sample sets state.done when the context is full", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(50).fill(0);
    logits[8] = 3;
    const ctx = [1, 2, 3];
    const r = await sample(h, { logits, ctx, maxSeq: 4 }, [{}, {}, {}]);
    // end 3 < 4: stored at ctx[3]; end 4: emitted but not stored, then done
    assert.deepEqual(r.out.slice(0, 3), [8, 8, NONE]);
    assert.deepEqual(r.ctx.slice(0, 4), [1, 2, 3, 8]);
    assert.deepEqual(r.state, { pos: 3, nTok: 1, step: 3, done: 1 });
  }));

Deno.test("sample with done already set writes 0xffffffff and only advances step", () =>
  withKernels(async (h) => {
    const logits = new Float32Array(50).fill(0);
    logits[8] = 3;
    const r = await sample(h, { logits, ctx: [1, 2], done: 1, step: 2 }, [{}]);
    assert.deepEqual(r.out.slice(0, 4), [0x5eed, 0x5eed, NONE, 0x5eed]);
    assert.deepEqual(r.ctx.slice(0, 3), [1, 2, 0xabcdef]);
    assert.deepEqual(r.tokens, [0xdead, 0xdead, 0xdead, 0xdead]);
    assert.deepEqual(r.state, { pos: 1, nTok: 1, step: 3, done: 1 });
  }));

// The AWQ pipeline (src/quant/awq_layer.ts, src/quant/quantize_model.ts):
// weightMean / candidateScales on hand-checked inputs, the GPU layer forward
// against a plain TypeScript layer, RTN against quantizeLinear, and AWQ on
// tiny random models: one scaling entry per group, finite losses, scale
// folding preserves the full-precision function (1e-4), determinism, resume
// from a work dir, and NaN weights rejected with a QuantizationError naming
// the layer.

import assert from "node:assert/strict";
import { acquireGpu, type GpuContext } from "../src/gpu/device.ts";
import type { LlamaConfig } from "../src/model/config.ts";
import { ReferenceLlama } from "../src/model/reference_llama.ts";
import { referenceLayer } from "../src/model/reference_layer.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import {
  awqLayer,
  candidateScales,
  QuantizationError,
  weightMean,
} from "../src/quant/awq_layer.ts";
import { LINEARS, quantizeModel, type QuantizeResult } from "../src/quant/quantize_model.ts";
import { quantizeLinear } from "../src/quant/quantizer.ts";
import type { QuantSettings } from "../src/quant/types.ts";
import { randomLlamaWeights, tinyConfig } from "./support/random_llama.ts";
import { assertClose, mulberry32, randomInts } from "./support/seeded.ts";

const SETTINGS: QuantSettings = { bits: 4, groupSize: 32, zeroPoint: true };
const f32 = (xs: number[]) => new Float32Array(xs);

async function withGpu(fn: (gpu: GpuContext) => Promise<void>): Promise<void> {
  const gpu = await acquireGpu();
  try {
    await fn(gpu);
    gpu.check();
  } finally {
    gpu.destroy();
  }
}

/** `n` calibration sequences of `len` random ids, each starting with BOS. */
function calibration(config: LlamaConfig, n: number, len: number, seed: number): Int32Array[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const ids = Int32Array.from(randomInts(rng, len, config.vocabSize));
    ids[0] = config.bosTokenId ?? 1;
    return ids;
  });
}

function embed(w: LlamaWeights, cal: Int32Array[]): Float32Array {
  const dim = w.config.hiddenSize;
  const ids = cal.flatMap((s) => Array.from(s));
  const x = new Float32Array(ids.length * dim);
  ids.forEach((id, t) => x.set(w.embed.data.subarray(id * dim, (id + 1) * dim), t * dim));
  return x;
}

function assertSameQuantized(a: QuantizeResult, b: QuantizeResult, what: string): void {
  assert.deepEqual([...a.quantized.keys()], [...b.quantized.keys()], `${what}: names`);
  for (const [name, qa] of a.quantized) {
    const qb = b.quantized.get(name)!;
    assert.deepEqual(qb.q, qa.q, `${what}: ${name} codes`);
    assert.deepEqual(qb.scales, qa.scales, `${what}: ${name} scales`);
    assert.deepEqual(qb.zeros, qa.zeros, `${what}: ${name} zeros`);
  }
}

// ---------------------------------------------------------------- host math

Deno.test("weightMean: |w| over its group's max |w|, averaged over the rows of all linears", () => {
  const w1 = { data: f32([1, -2, 3, 4, 0, 0, 2, -1]), shape: [2, 4], dtype: "F32" as const };
  const w2 = { data: f32([2, 2, 2, 2]), shape: [1, 4], dtype: "F32" as const };
  // g 2: row 0 -> [1/2, 2/2, 3/4, 4/4]; row 1 (zero group -> 0) -> [0, 0, 2/2, 1/2]
  assertClose(weightMean([w1], 2), [0.25, 0.5, 0.875, 0.75], { abs: 1e-7, rel: 0 }, "g2");
  // with a second linear of one row [1, 1, 1, 1]: means over 3 rows
  assertClose(
    weightMean([w1, w2], 2),
    [1.5 / 3, 2 / 3, 2.75 / 3, 2.5 / 3],
    { abs: 1e-7, rel: 0 },
    "two linears",
  );
  // per-channel: row maxima 4 and 2
  assertClose(weightMean([w1], 0), [0.125, 0.25, 0.875, 0.75], { abs: 1e-7, rel: 0 }, "g0");
  // short last group: cols 4, g 3 -> groups [0..3), [3]
  assertClose(
    weightMean([w1], 3),
    [(1 / 3 + 0) / 2, (2 / 3 + 0) / 2, (1 + 1) / 2, (1 + 1) / 2],
    { abs: 1e-7, rel: 0 },
    "g3",
  );
});

Deno.test("candidateScales: r = 0, the x^r / (w^(1-r) + 1e-4) rule, clamp, normalisation, inf/NaN -> 1", () => {
  const tol = { abs: 0, rel: 1e-6 };
  // r = 0: 1 / (w + 1e-4), normalised by sqrt(max * min) (x = 0 is fine: 0^0 = 1)
  const w = f32([1, 0.5, 0.25]);
  const norm0 = Math.sqrt(1 / 0.2501 / 1.0001);
  assertClose(
    candidateScales(f32([0, 3, 7]), w, 0),
    [1 / 1.0001 / norm0, 1 / 0.5001 / norm0, 1 / 0.2501 / norm0],
    tol,
    "r = 0",
  );
  // r = 0.5, w = 1: sqrt(x) / 1.0001, then normalised so max * min = 1
  assertClose(candidateScales(f32([1, 4, 0.25]), f32([1, 1, 1]), 0.5), [1, 2, 0.5], tol, "r = 0.5");
  // x = 0 at r > 0 clamps to 1e-4 before normalising
  const a = 1 / 1.0001;
  assertClose(
    candidateScales(f32([0, 1]), f32([1, 1]), 0.5),
    [1e-4 / Math.sqrt(1e-4 * a), a / Math.sqrt(1e-4 * a)],
    tol,
    "clamp",
  );
  // a channel whose scale overflows f32 becomes 1; the rest are normalised by the f64 value
  const big = Math.pow(3e38, 0.95) / 1e-4;
  const s = candidateScales(f32([3e38, 1, 1]), f32([0, 0, 0]), 0.95);
  assert.equal(s[0], 1, "inf -> 1");
  assertClose(s.subarray(1), [1e4 / Math.sqrt(big * 1e4), 1e4 / Math.sqrt(big * 1e4)], tol, "rest");
  // NaN anywhere makes the normaliser NaN: every channel becomes 1
  assert.deepEqual(Array.from(candidateScales(f32([NaN, 1, 2]), f32([1, 1, 1]), 0.5)), [1, 1, 1]);
  assert.deepEqual(Array.from(candidateScales(f32([1, 1, 2]), f32([1, NaN, 1]), 0.5)), [1, 1, 1]);
});

// ---------------------------------------------------------------- RTN

Deno.test("quantizeModel RTN equals quantizeLinear of every linear and leaves the FP weights alone", async () => {
  const w = randomLlamaWeights(tinyConfig("llama"), 3);
  const r = await quantizeModel(w, { method: "rtn", settings: SETTINGS });
  assert.equal(r.quantized.size, 7 * w.config.numLayers);
  w.layers.forEach((layer, i) => {
    for (const [name, field] of LINEARS) {
      const t = layer[field]!;
      const exp = quantizeLinear(t.data, t.shape[0], t.shape[1], SETTINGS);
      assert.deepEqual(r.quantized.get(`model.layers.${i}.${name}`), exp, `layer ${i} ${name}`);
    }
    assert.deepEqual(r.weights.layers[i], layer, `layer ${i} FP weights`);
    assert.deepEqual(r.layers[i].scaling, []);
  });
});

// ---------------------------------------------------------------- AWQ

Deno.test("awqLayer's full-precision forward (next) matches a TypeScript layer over sequences", () =>
  withGpu(async (gpu) => {
    for (const numKvHeads of [2, 6]) {
      const config = tinyConfig("qwen2", { numKvHeads, numLayers: 1 });
      const w = randomLlamaWeights(config, 5);
      const cal = calibration(config, 3, 7, 9);
      const x = embed(w, cal);
      const r = await awqLayer(gpu, config, w.layers[0], x, 7, SETTINGS, { clip: false });
      const exp = referenceLayer(config, w.layers[0], x, 7).out;
      assertClose(r.next, exp, { abs: 1e-4, rel: 1e-4 }, `kv ${numKvHeads} next`);
      assert.equal(r.clip.size, 0, "clip: false runs no clip search");
    }
  }));

Deno.test("awqLayer with both scale rules takes, per group, the better of the duo and x-only searches", () =>
  withGpu(async (gpu) => {
    const config = tinyConfig("llama", { numLayers: 1, numKvHeads: 6 });
    const w = randomLlamaWeights(config, 11);
    const x = embed(w, calibration(config, 3, 7, 4));
    const run = (duoScaling: boolean | "both") =>
      awqLayer(gpu, config, w.layers[0], x, 7, SETTINGS, { clip: false, duoScaling });
    const [duo, xOnly, both] = [await run(true), await run(false), await run("both")];
    assert.ok(duo.scaling.every((d) => d.rule === "duo"), "true searches the duo rule only");
    assert.ok(xOnly.scaling.every((d) => d.rule === "x"), "false searches x^r only");
    for (const [i, d] of both.scaling.entries()) {
      const best = Math.min(duo.scaling[i].lossAfter, xOnly.scaling[i].lossAfter);
      assertClose([d.lossAfter], [best], { abs: 1e-9, rel: 1e-4 }, `${d.group} loss`);
      const from = d.rule === "duo" ? duo.scaling[i] : xOnly.scaling[i];
      if (d.scaled) assert.equal(d.ratio, from.ratio, `${d.group}: ratio of the chosen rule`);
    }
  }));

const VARIANTS: Array<[string, LlamaConfig]> = [
  ["llama GQA", tinyConfig("llama", { numLayers: 2 })],
  ["llama no GQA", tinyConfig("llama", { numLayers: 2, numKvHeads: 6 })],
  ["qwen2 no GQA (v bias folded)", tinyConfig("qwen2", { numLayers: 2, numKvHeads: 6 })],
];

for (const [label, config] of VARIANTS) {
  Deno.test(`quantizeModel AWQ (${label}): groups, losses, FP function preserved, deterministic`, () =>
    withGpu(async (gpu) => {
      const w = randomLlamaWeights(config, 13);
      const cal = calibration(config, 3, 8, 17);
      const opts = { method: "awq" as const, settings: SETTINGS, calibration: cal, gpu };
      const r = await quantizeModel(w, opts);
      const gqa = config.numKvHeads !== config.numHeads;
      const groups = [
        "input_layernorm -> q_proj,k_proj,v_proj",
        ...(gqa ? [] : ["v_proj -> o_proj"]),
        "post_attention_layernorm -> gate_proj,up_proj",
        "up_proj -> down_proj",
      ];
      assert.equal(r.layers.length, config.numLayers);
      for (const rep of r.layers) {
        assert.deepEqual(rep.scaling.map((s) => s.group), groups, `layer ${rep.layer} groups`);
        for (const s of rep.scaling) {
          const what = `layer ${rep.layer} ${s.group}`;
          assert.ok(Number.isFinite(s.lossBefore) && s.lossBefore > 0, `${what}: lossBefore`);
          assert.ok(Number.isFinite(s.lossAfter) && s.lossAfter >= 0, `${what}: lossAfter`);
          assert.ok(s.ratio >= 0 && s.ratio <= 0.95, `${what}: ratio ${s.ratio}`);
          assert.ok(Number.isInteger(Math.round(s.ratio * 20)), `${what}: ratio on the grid`);
        }
        assert.equal(rep.linears.length, 7);
        for (const l of rep.linears) {
          assert.ok(l.clipShrinkMean > 0.5 && l.clipShrinkMean <= 1, `${l.name} clip shrink`);
          assert.ok(Number.isFinite(l.quantError), `${l.name} quant error`);
        }
        const shrink = Object.fromEntries(rep.linears.map((l) => [l.name, l.clipShrinkMean]));
        assert.equal(shrink["self_attn.q_proj"], 1, "q is never clipped");
        assert.equal(shrink["self_attn.k_proj"], 1, "k is never clipped");
      }

      // Folding preserves the FP function: each scaled layer on its calibration
      // inputs, and the whole model's logits.
      const dim = config.hiddenSize;
      let h = embed(w, cal);
      let changed = false;
      for (let i = 0; i < config.numLayers; i++) {
        const orig = referenceLayer(config, w.layers[i], h, 8).out;
        const scaled = referenceLayer(config, r.weights.layers[i], h, 8).out;
        assertClose(scaled, orig, { abs: 1e-4, rel: 0 }, `${label} layer ${i} FP output`);
        changed ||= r.weights.layers[i].attnNorm.data.some((v, c) =>
          v !== w.layers[i].attnNorm.data[c]
        );
        h = orig;
      }
      assert.ok(changed, "the folded norms differ from the original (scales were applied)");
      assert.equal(h.length, cal.length * 8 * dim);
      const a = new ReferenceLlama(w, 8);
      const b = new ReferenceLlama(r.weights, 8);
      for (const seq of cal) {
        a.reset();
        b.reset();
        assertClose(
          b.forward([...seq], 0),
          a.forward([...seq], 0),
          { abs: 1e-4, rel: 0 },
          "logits",
        );
      }
      // q and k (never clipped) are quantizeLinear of the scaled (folded) weights.
      for (const [name, field] of LINEARS.slice(0, 2)) {
        const t = r.weights.layers[1][field]!;
        assert.deepEqual(
          r.quantized.get(`model.layers.1.${name}`),
          quantizeLinear(t.data, t.shape[0], t.shape[1], SETTINGS),
          `layer 1 ${name} = quantizeLinear of the scaled weight`,
        );
      }

      // Deterministic: a second run gives the same codes, scales and decisions.
      const r2 = await quantizeModel(w, opts);
      assertSameQuantized(r, r2, "second run");
      assert.deepEqual(
        r2.layers.map((l) => l.scaling),
        r.layers.map((l) => l.scaling),
        "second run decisions",
      );
    }));
}

Deno.test("quantizeModel AWQ resumes from a work dir after its last layers' checkpoints are deleted", () =>
  withGpu(async (gpu) => {
    const config = tinyConfig("llama", { numLayers: 3 });
    const w = randomLlamaWeights(config, 21);
    const cal = calibration(config, 2, 6, 23);
    const dir = await Deno.makeTempDir({ prefix: "awq_resume_" });
    try {
      const opts = {
        method: "awq" as const,
        settings: SETTINGS,
        calibration: cal,
        gpu,
        workDir: dir,
      };
      const first = await quantizeModel(w, opts);
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.deepEqual(names, [
        "done.json",
        "layer-0000.safetensors",
        "layer-0001.safetensors",
        "layer-0002.safetensors",
      ]);
      await Deno.remove(`${dir}/layer-0001.safetensors`);
      await Deno.remove(`${dir}/layer-0002.safetensors`);
      const phases: Array<[number, string]> = [];
      const second = await quantizeModel(w, {
        ...opts,
        onProgress: (p) => phases.push([p.layer, p.phase]),
      });
      assertSameQuantized(first, second, "resumed");
      assert.deepEqual(
        second.layers.map((l) => l.scaling),
        first.layers.map((l) => l.scaling),
        "resumed decisions",
      );
      for (let i = 0; i < 3; i++) {
        for (const [k, t] of Object.entries(first.weights.layers[i])) {
          assert.deepEqual(
            (second.weights.layers[i] as unknown as Record<string, typeof t>)[k].data,
            t.data,
            `layer ${i} ${k}`,
          );
        }
      }
      // layer 0 came from its checkpoint; layers 1 and 2 were searched again
      assert.ok(!phases.some(([l, p]) => l === 0 && p === "scale"), "layer 0 was not recomputed");
      assert.ok(phases.some(([l, p]) => l === 1 && p === "scale"), "layer 1 was recomputed");
      assert.ok(phases.some(([l, p]) => l === 2 && p === "scale"), "layer 2 was recomputed");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));

const NAN_CASES = [[1, "wDown"], [0, "wq"], [1, "wGate"]] as const;

Deno.test("AWQ: a NaN weight is a QuantizationError naming the layer", () =>
  withGpu(async (gpu) => {
    const config = tinyConfig("llama", { numLayers: 2 });
    const cal = calibration(config, 2, 6, 29);
    for (const [layer, field] of NAN_CASES) {
      const w = randomLlamaWeights(config, 31);
      w.layers[layer][field].data[7] = NaN;
      await assert.rejects(
        quantizeModel(w, { method: "awq", settings: SETTINGS, calibration: cal, gpu }),
        (e: unknown) => {
          assert.ok(e instanceof QuantizationError, `${field}: ${e}`);
          assert.match(e.message, new RegExp(`layer ${layer}\\b`), field);
          return true;
        },
      );
    }
  }));

Deno.test({
  name: "RTN: a NaN weight is a QuantizationError naming the layer",
  fn: async () => {
    const config = tinyConfig("llama", { numLayers: 2 });
    for (const [layer, field] of NAN_CASES) {
      const w = randomLlamaWeights(config, 31);
      w.layers[layer][field].data[7] = NaN;
      await assert.rejects(
        quantizeModel(w, { method: "rtn", settings: SETTINGS }),
        (e: unknown) => {
          assert.ok(e instanceof QuantizationError, `${field}: ${e}`);
          assert.match(e.message, new RegExp(`layer ${layer}\\b`), field);
          return true;
        },
      );
    }
  },
});

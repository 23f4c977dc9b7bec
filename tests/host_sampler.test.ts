import assert from "node:assert/strict";
import { penalisedWindow, sampleLogits, samplerDraw } from "../src/engine/host_sampler.ts";
import { RequestError } from "../src/errors.ts";
import { resolveSampling, type SamplingOptions } from "../src/engine/sampling_options.ts";
import { TextModel } from "../mod.ts";
import {
  argmax,
  drawFrom,
  samplerDistribution,
  samplerUniformDraw,
} from "./support/reference_sampler.ts";
import { sharedPresent, STORIES } from "./support/cli_run.ts";

/** Deterministic logits (ties are unlikely; the GPU keeps a top-p tie group whole). */
function logits(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s >>> 8) / 16777216) * 8 - 4;
  });
}

const SETTINGS: SamplingOptions[] = [
  {},
  { temperature: 1 },
  { temperature: 0.7, topK: 5 },
  { temperature: 1.3, topP: 0.8 },
  { temperature: 0.9, topK: 40, topP: 0.5 },
  { temperature: 1, repetitionPenalty: 1.3 },
  { temperature: 0.8, repetitionPenalty: 1.2, repetitionWindow: 3, topP: 0.9 },
];

Deno.test("samplerDraw() is the GPU sampler's counter-based draw", () => {
  for (const [seed, end] of [[0, 1], [42, 5], [7, 4000], [123456, 99]]) {
    assert.equal(samplerDraw(seed, end), samplerUniformDraw(seed, end));
  }
});

Deno.test("sampleLogits() picks what the reference sampler's distribution and draw pick", () => {
  for (const [i, o] of SETTINGS.entries()) {
    for (let trial = 0; trial < 20; trial++) {
      const l = logits(97, 31 * i + trial);
      const context = [3, 5, 5, 60, trial % 97];
      const s = resolveSampling({ ...o, seed: trial });
      const probs = samplerDistribution(l, context, s);
      const want = s.temperature > 0
        ? drawFrom(probs, samplerUniformDraw(s.seed, context.length))
        : argmax(probs);
      assert.equal(sampleLogits(l, context, s), want, `settings ${i}, trial ${trial}`);
    }
  }
});

Deno.test("sampleLogits() greedy takes the lowest id on ties and honours the penalty", () => {
  const l = new Float32Array([1, 3, 3, 2]);
  assert.equal(sampleLogits(l, [], resolveSampling()), 1);
  assert.equal(sampleLogits(l, [1], resolveSampling({ repetitionPenalty: 2 })), 2);
});

Deno.test({
  name: "the same seed gives the same ids on the webgpu and wasm backends (stories260K)",
  ignore: !sharedPresent,
  async fn() {
    const ids: number[][] = [];
    for (const backend of ["webgpu", "wasm"] as const) {
      const m = await TextModel.open(STORIES, { backend, activations: "f32" });
      try {
        for (const seed of [1, 2]) {
          const r = await m.complete("Once upon a time", {
            maxTokens: 24,
            temperature: 0.8,
            topP: 0.9,
            seed,
          });
          ids.push(r.tokenIds);
        }
      } finally {
        m.close();
      }
    }
    assert.deepEqual(ids[2], ids[0]);
    assert.deepEqual(ids[3], ids[1]);
    assert.notDeepEqual(ids[0], ids[1]);
  },
});

Deno.test("penalisedWindow subtracts presence once and frequency per occurrence, after the repetition penalty", () => {
  const logits = new Float32Array([2, -1, 0.5, 3]);
  const s = resolveSampling({
    repetitionPenalty: 2,
    presencePenalty: 0.5,
    frequencyPenalty: 0.25,
    repetitionWindow: 4,
  });
  // window: the last 4 ids [1, 0, 0, 7]; 7 is outside the vocabulary, 3 outside the window
  const p = penalisedWindow(logits, [3, 1, 0, 0, 7], s);
  assert.deepEqual([...p.entries()].sort(), [[0, 2 / 2 - 0.5 - 0.5], [1, -1 * 2 - 0.5 - 0.25]]);
  assert.equal(penalisedWindow(logits, [0, 1], resolveSampling()).size, 0);
});

Deno.test("sampleLogits() greedy honours presence and frequency penalties", () => {
  const logits = new Float32Array([3, 2.9, 0]);
  const greedy = (o: Parameters<typeof resolveSampling>[0], ctx: number[]) =>
    sampleLogits(logits, ctx, resolveSampling(o));
  assert.equal(greedy({}, [0, 0, 0]), 0);
  assert.equal(greedy({ presencePenalty: 0.2 }, [0]), 1);
  assert.equal(greedy({ presencePenalty: 0.05 }, [0, 0, 0]), 0, "presence counts once");
  assert.equal(greedy({ frequencyPenalty: 0.05 }, [0, 0, 0]), 1, "3 - 3 · 0.05 < 2.9");
  assert.equal(greedy({ frequencyPenalty: 0.05 }, [0]), 0);
  assert.equal(greedy({ frequencyPenalty: -1 }, [1]), 1, "a negative penalty favours the token");
});

Deno.test("resolveSampling rejects presence and frequency penalties outside [-2, 2], naming them", () => {
  for (
    const [o, field] of [
      [{ presencePenalty: 2.5 }, "presence_penalty"],
      [{ frequencyPenalty: -3 }, "frequency_penalty"],
      [{ frequencyPenalty: NaN }, "frequency_penalty"],
    ] as const
  ) {
    assert.throws(
      () => resolveSampling(o),
      (e: unknown) => e instanceof RequestError && e.message.includes(field),
    );
  }
});

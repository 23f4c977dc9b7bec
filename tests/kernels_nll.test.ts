// shaders/nll.wgsl against reference_ops.logSoftmaxNll (f64).
// Tolerance: |gpu - ref| <= 1e-5 + 1e-5·|ref| (f32 logsumexp over <= 1000 terms).

import assert from "node:assert/strict";
import { logSoftmaxNll } from "../src/model/reference_ops.ts";
import {
  assertClose,
  mulberry32,
  randomFloats,
  randomInts,
  withKernels,
} from "./support/seeded.ts";

const TOL = { abs: 1e-5, rel: 1e-5 };

Deno.test("nll of uniform logits is ln(vocab) for every row", () =>
  withKernels(async (h) => {
    const vocab = 1000;
    const rows = 3;
    const logits = new Float32Array(rows * vocab).fill(3.25);
    const out = h.pool.acquire(rows * 4, "out");
    h.run(await h.kernels.nll(h.f32(logits), h.u32([0, 5, 999, 17]), out, rows, vocab));
    assertClose(
      await h.readF32(out, rows),
      new Float64Array(rows).fill(Math.log(vocab)),
      TOL,
      "ln V",
    );
  }));

Deno.test("nll matches logSoftmaxNll on random logits, scoring token r + 1 in row r", () =>
  withKernels(async (h) => {
    const rng = mulberry32(1);
    for (const vocab of [97, 1000]) {
      const rows = 5;
      const logits = randomFloats(rng, rows * vocab, -10, 10);
      const tokens = randomInts(rng, rows + 1, vocab);
      const out = h.pool.acquire(rows * 4, "out");
      h.run(await h.kernels.nll(h.f32(logits), h.u32(tokens), out, rows, vocab));
      const ref = logSoftmaxNll(logits, tokens.slice(1), vocab);
      assertClose(await h.readF32(out, rows), ref, TOL, `vocab ${vocab}`);
    }
  }));

Deno.test("nll is stable for large logits (max subtracted before exp)", () =>
  withKernels(async (h) => {
    const rng = mulberry32(2);
    const vocab = 130;
    const logits = randomFloats(rng, vocab, 1e4 - 5, 1e4 + 5);
    const out = h.pool.acquire(4, "out");
    h.run(await h.kernels.nll(h.f32(logits), h.u32([0, 77]), out, 1, vocab));
    const got = (await h.readF32(out, 1))[0];
    assert.ok(Number.isFinite(got), `nll ${got}`);
    // logits near 1e4 carry f32 spacing ~1e-3, so the tolerance is absolute 2e-3
    assertClose([got], logSoftmaxNll(logits, [77], vocab), { abs: 2e-3, rel: 0 }, "large logits");
  }));

Deno.test("nll clamps an out-of-range next token to the last vocabulary id", () =>
  withKernels(async (h) => {
    const rng = mulberry32(3);
    const vocab = 70;
    const logits = randomFloats(rng, vocab, -4, 4);
    const out = h.pool.acquire(4, "out");
    h.run(await h.kernels.nll(h.f32(logits), h.u32([0, vocab + 3]), out, 1, vocab));
    assertClose(await h.readF32(out, 1), logSoftmaxNll(logits, [vocab - 1], vocab), TOL, "clamped");
  }));

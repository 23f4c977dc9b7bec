// shaders/silu_mul.wgsl against reference_ops.siluMul.
// Tolerance: |gpu - ref| <= 1e-6 + 1e-5·|ref| (one exp and a division in f32).

import { siluMul } from "../src/model/reference_ops.ts";
import { assertClose, mulberry32, randomFloats, withKernels } from "./support/seeded.ts";

const TOL = { abs: 1e-6, rel: 1e-5 };

Deno.test("siluMul matches the reference on random inputs of a length that is not a multiple of 64", () =>
  withKernels(async (h) => {
    const rng = mulberry32(1);
    const n = 1003;
    const g = randomFloats(rng, n, -8, 8);
    const u = randomFloats(rng, n, -2, 2);
    const gb = h.f32(g);
    h.run(await h.kernels.siluMul(gb, h.f32(u), n));
    assertClose(await h.readF32(gb, n), siluMul(g, u), TOL, "silu(g)·u");
  }));

Deno.test("siluMul is finite and exact-limit for large |gate| (no exp overflow to NaN)", () =>
  withKernels(async (h) => {
    const g = new Float32Array([-200, -89, -20, 0, 20, 89, 200, 1e-7]);
    const u = new Float32Array([1, 2, 3, 4, 0.5, -1, 1.5, 1]);
    const gb = h.f32(g);
    h.run(await h.kernels.siluMul(gb, h.f32(u), g.length));
    assertClose(await h.readF32(gb, g.length), siluMul(g, u), TOL, "extremes");
  }));

Deno.test("siluMul leaves elements past n untouched", () =>
  withKernels(async (h) => {
    const rng = mulberry32(2);
    const g = randomFloats(rng, 70, -3, 3);
    const u = randomFloats(rng, 70);
    const gb = h.f32(g);
    h.run(await h.kernels.siluMul(gb, h.f32(u), 65));
    const out = await h.readF32(gb, 70);
    assertClose(
      out.subarray(0, 65),
      siluMul(g.subarray(0, 65), u.subarray(0, 65)),
      TOL,
      "first 65",
    );
    assertClose(out.subarray(65), g.subarray(65), { abs: 0, rel: 0 }, "tail");
  }));

// shaders/rmsnorm.wgsl against reference_ops.rmsnorm.
// Tolerance: |gpu - ref| <= 1e-6 + 1e-4·|ref| (f32 sum of squares over <= 200 terms).

import { rmsnorm } from "../src/model/reference_ops.ts";
import { assertClose, mulberry32, randomFloats, withKernels } from "./support/seeded.ts";

const TOL = { abs: 1e-6, rel: 1e-4 };

Deno.test("rmsnorm matches the reference for widths below, at and above the workgroup size", () =>
  withKernels(async (h) => {
    const rng = mulberry32(1);
    for (const dim of [7, 60, 64, 200]) {
      const rows = 3;
      const x = randomFloats(rng, rows * dim, -3, 3);
      const w = randomFloats(rng, dim, 0.5, 1.5);
      const y = h.pool.acquire(rows * dim * 4, "y");
      h.run(await h.kernels.rmsnorm(h.f32(x), h.f32(w), y, rows, dim, 1e-5));
      assertClose(await h.readF32(y, rows * dim), rmsnorm(x, w, 1e-5), TOL, `dim ${dim}`);
    }
  }));

Deno.test("rmsnorm with rowStart normalises rows rowStart.. into y from row 0 and writes nothing else", () =>
  withKernels(async (h) => {
    const rng = mulberry32(2);
    const dim = 60;
    const x = randomFloats(rng, 5 * dim, -2, 2);
    const w = randomFloats(rng, dim, 0.5, 1.5);
    const sentinel = -777.25;
    const y = h.f32(new Float32Array(3 * dim).fill(sentinel));
    h.run(await h.kernels.rmsnorm(h.f32(x), h.f32(w), y, 2, dim, 1e-6, 3));
    const out = await h.readF32(y, 3 * dim);
    assertClose(out.subarray(0, 2 * dim), rmsnorm(x.subarray(3 * dim), w, 1e-6), TOL, "rows 3..4");
    assertClose(
      out.subarray(2 * dim),
      new Float32Array(dim).fill(sentinel),
      { abs: 0, rel: 0 },
      "row 2",
    );
  }));

Deno.test("rmsnorm adds eps inside the square root (tiny inputs are not blown up)", () =>
  withKernels(async (h) => {
    const dim = 64;
    const x = new Float32Array(dim).map((_, i) => (i % 2 ? 1e-4 : -2e-4));
    const w = new Float32Array(dim).fill(1);
    const y = h.pool.acquire(dim * 4, "y");
    h.run(await h.kernels.rmsnorm(h.f32(x), h.f32(w), y, 1, dim, 1e-5));
    // with eps 1e-5 the scale is ~316, not 1/rms(x) ~ 6300
    assertClose(await h.readF32(y, dim), rmsnorm(x, w, 1e-5), TOL, "eps");
  }));

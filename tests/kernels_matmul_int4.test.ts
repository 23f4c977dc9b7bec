// shaders/matmul_int4*.wgsl (every int4 entry point, the fused gate/up with
// SiLU and the split outputs of a fused q/k/v) against the TypeScript
// reference: dequantizePacked (what the repacked weight stands for, checked
// against the loader's dequantizeLinear) then reference_ops.matmul.
// Tolerance: |gpu - ref| <= 1e-5 + 1e-4·|ref| + 1e-6·M, M = sum_k s·(|q| + |z|)·|x_k|,
// the usual bound of an f32 dot product over its terms' magnitude: gemv_u4_ux
// computes s·(sum q·x - z·sum x), which cancels when codes sit at the zero.

import assert from "node:assert/strict";
import { GpuError } from "../src/errors.ts";
import { roundToF16 } from "../src/formats/half.ts";
import { dequantizePacked, int4Unsupported, packInt4, uploadInt4 } from "../src/gpu/int4_weight.ts";
import {
  INT4_KERNELS,
  INT4_UNIFORM_X_BYTES,
  type Int4Entry,
  sliceConstants,
  sliceFits,
  slicesOf,
  uniformInputFits,
} from "../src/gpu/kernels.ts";
import { loadShaderSource } from "../src/gpu/shader_source.ts";
import { matmul, siluMul } from "../src/model/reference_ops.ts";
import { dequantizeLinear } from "../src/quant/quantizer.ts";
import type { QuantizedLinear } from "../src/quant/types.ts";
import {
  assertClose,
  type KernelHarness,
  mulberry32,
  randomFloats,
  withKernels,
} from "./support/seeded.ts";

/** [T, K, N, groupSize]: one row, one group, short last group, K < 8, K not a multiple of 32. */
const SHAPES: [number, number, number, number][] = [
  [1, 32, 1, 32],
  [1, 100, 65, 32],
  [1, 7, 3, 0],
  [3, 96, 67, 0],
  [5, 172, 65, 64],
  [5, 256, 130, 128],
  [67, 172, 65, 64],
  [67, 40, 3, 32],
  [6, 36, 5, 0],
  // several 512-column slices: a 1-chunk tail slice and rows past one
  // workgroup's 512 (gemv_u4_slice), a short last group, groups straddling
  // slices (per channel, g1024), 8- and 16-chunk groups
  [1, 544, 600, 32],
  [2, 1056, 70, 64],
  [1, 1024, 9, 0],
  [3, 2048, 20, 1024],
  [4, 768, 513, 256],
  [1, 1536, 17, 512],
  [9, 320, 70, 64], // gemm_u4_slice: a 1-token last token group and a 2-chunk tail slice
];

/** A random 4-bit linear with f16-exact scales (some groups with zero scale or extreme codes). */
function randomQl(rng: () => number, N: number, K: number, groupSize: number): QuantizedLinear {
  const nGroups = groupSize === 0 ? 1 : Math.ceil(K / groupSize);
  const q = Uint8Array.from({ length: N * K }, () => Math.floor(rng() * 16));
  const scales = Float32Array.from({ length: N * nGroups }, () => roundToF16(0.01 + rng() * 0.2));
  const zeros = Uint8Array.from({ length: N * nGroups }, () => Math.floor(rng() * 16));
  if (scales.length > 2) {
    scales[1] = 0; // a zero scale
    zeros[2] = 0; // codes up to 15 above the zero
    q.fill(15, 0, Math.min(K, q.length));
  }
  return {
    outFeatures: N,
    inFeatures: K,
    settings: { bits: 4, groupSize, zeroPoint: true },
    q,
    scales,
    zeros,
  };
}

/** x in a buffer the uniform-input entry can bind (>= 64 KiB). */
function xBuffer(h: KernelHarness, x: Float32Array): GPUBuffer {
  const padded = new Float32Array(Math.max(x.length, INT4_UNIFORM_X_BYTES / 4));
  padded.set(x);
  return h.f32(padded);
}

/** M[t, n] = sum_k s[n, g]·(q[n, k] + z[n, g])·|x[t, k]| (see the tolerance above). */
function magnitude(ql: QuantizedLinear, x: Float32Array, T: number): Float32Array {
  const { outFeatures: N, inFeatures: K } = ql;
  const G = ql.settings.groupSize || K;
  const nG = Math.ceil(K / G);
  const m = new Float32Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) {
        const g = n * nG + Math.floor(k / G);
        acc += ql.scales[g] * (ql.q[n * K + k] + ql.zeros[g]) * Math.abs(x[t * K + k]);
      }
      m[t * N + n] = acc;
    }
  }
  return m;
}

/** Elementwise |got - ref| <= 1e-5 + 1e-4·|ref| + 1e-6·mag. */
function assertDotClose(got: Float32Array, ref: Float32Array, mag: Float32Array, what: string) {
  assert.equal(got.length, ref.length, what);
  for (let i = 0; i < ref.length; i++) {
    const tol = 1e-5 + 1e-4 * Math.abs(ref[i]) + 1e-6 * mag[i];
    assert.ok(
      Math.abs(got[i] - ref[i]) <= tol,
      `${what}: element ${i} is ${got[i]}, expected ${ref[i]} (tolerance ${tol})`,
    );
  }
}

function entriesHere(h: KernelHarness): Int4Entry[] {
  return INT4_KERNELS.filter((k) => k.shader !== "matmul_int4_sg" || h.gpu.hasSubgroups)
    .map((k) => k.entry);
}

function usable(entry: Int4Entry, T: number, K: number, x: GPUBuffer, G: number): boolean {
  if (entry === "gemm_u4_reg4") return K % 4 === 0;
  if (entry === "gemv_u4_slice") return sliceFits(K, G === 0 ? K : G);
  if (entry === "gemm_u4_slice") return sliceFits(K, G === 0 ? K : G, 8);
  return entry !== "gemv_u4_ux" || uniformInputFits(T, K, x);
}

interface Case {
  T: number;
  K: number;
  N: number;
  G: number;
  bias?: boolean;
  accumulate?: boolean;
}

async function runCase(
  h: KernelHarness,
  entry: Int4Entry,
  c: Case,
  seed: number,
): Promise<boolean> {
  const rng = mulberry32(seed);
  const ql = randomQl(rng, c.N, c.K, c.G);
  const packed = packInt4([ql], "W");
  const w = dequantizePacked(packed);
  const x = randomFloats(rng, c.T * c.K);
  const xb = xBuffer(h, x);
  if (!usable(entry, c.T, c.K, xb, c.G)) return false;
  const bias = c.bias ? randomFloats(rng, c.N, -2, 2) : undefined;
  const y0 = c.accumulate ? randomFloats(rng, c.T * c.N, -3, 3) : new Float32Array(c.T * c.N);
  const expected = matmul(x, w, c.K, bias);
  if (c.accumulate) { for (let i = 0; i < expected.length; i++) expected[i] += y0[i]; }
  const sentinel = 12345.5;
  const yInit = new Float32Array(c.T * c.N + 5).fill(sentinel);
  yInit.set(y0);
  const y = h.f32(yInit);
  const W = uploadInt4(h.pool, packed, "W");
  h.run(
    ...await h.kernels.matmulInt4(W, xb, y, c.T, {
      entry,
      bias: bias && h.f32(bias),
      accumulate: c.accumulate,
    }),
  );
  const out = await h.readF32(y, yInit.length);
  const what = `${entry} T=${c.T} K=${c.K} N=${c.N} g${c.G}` +
    `${c.bias ? " +bias" : ""}${c.accumulate ? " +accumulate" : ""}`;
  assertDotClose(out.subarray(0, c.T * c.N), expected, magnitude(ql, x, c.T), what);
  assertClose(
    out.subarray(c.T * c.N),
    new Float32Array(5).fill(sentinel),
    { abs: 0, rel: 0 },
    `${what} tail`,
  );
  return true;
}

Deno.test("int4 repack: dequantizePacked equals the loader's dequantizeLinear (groups 32/64/128, per channel, short last group)", () => {
  const rng = mulberry32(3);
  for (const [K, G] of [[32, 32], [172, 64], [300, 128], [7, 0], [100, 0], [256, 32]]) {
    const ql = randomQl(rng, 5, K, G);
    const p = packInt4([ql], "W");
    assert.equal(p.codes.length, 5 * Math.ceil(K / 32) * 4);
    assert.deepEqual(dequantizePacked(p), dequantizeLinear(ql), `K=${K} g${G}`);
  }
});

Deno.test("int4 repack: several linears pack as one weight whose rows are theirs in order", () => {
  const rng = mulberry32(4);
  const a = randomQl(rng, 3, 64, 32);
  const b = randomQl(rng, 2, 64, 32);
  const p = packInt4([a, b], "qkv");
  assert.deepEqual(p.parts, [3, 2]);
  const w = dequantizePacked(p);
  assert.deepEqual(w.subarray(0, 3 * 64), dequantizeLinear(a));
  assert.deepEqual(w.subarray(3 * 64), dequantizeLinear(b));
});

Deno.test("int4 repack rejects 3/8-bit, odd group sizes and inconsistent arrays, naming the tensor", () => {
  const ql = randomQl(mulberry32(5), 2, 64, 32);
  assert.match(int4Unsupported({ ...ql, settings: { ...ql.settings, bits: 8 } })!, /8-bit/);
  assert.match(int4Unsupported({ ...ql, settings: { ...ql.settings, bits: 3 } })!, /3-bit/);
  assert.match(
    int4Unsupported({ ...ql, settings: { ...ql.settings, groupSize: 16 } })!,
    /group size 16/,
  );
  assert.equal(int4Unsupported(ql), undefined);
  assert.throws(
    () =>
      packInt4([{ ...ql, settings: { ...ql.settings, bits: 3 } }], "model.layers.0.mlp.up_proj"),
    (e: Error) => e instanceof GpuError && /model\.layers\.0\.mlp\.up_proj.*3-bit/.test(e.message),
  );
  assert.throws(
    () => packInt4([{ ...ql, scales: ql.scales.subarray(1) }], "model.layers.1.self_attn.q_proj"),
    /model\.layers\.1\.self_attn\.q_proj: inconsistent quantized tensor: scales have 3 values, expected 2 x 2/,
  );
  assert.throws(
    () => packInt4([ql, randomQl(mulberry32(6), 2, 32, 32)], "qkv"),
    /qkv: parts packed together need the same input size/,
  );
});

for (const kernel of INT4_KERNELS) {
  const entry = kernel.entry;
  Deno.test(`int4 ${entry} matches the reference on awkward shapes and edge values`, () =>
    withKernels(async (h) => {
      if (!entriesHere(h).includes(entry)) return; // subgroups absent on this adapter
      let seed = 100;
      let ran = 0;
      for (const [T, K, N, G] of SHAPES) {
        if (await runCase(h, entry, { T, K, N, G }, seed++)) ran++;
      }
      assert.ok(ran >= 4, `${entry} ran on ${ran} shapes`);
    }));

  Deno.test(`int4 ${entry} adds the bias and accumulates into y`, () =>
    withKernels(async (h) => {
      if (!entriesHere(h).includes(entry)) return;
      await runCase(h, entry, { T: 3, K: 96, N: 65, G: 32, bias: true }, 201);
      await runCase(h, entry, { T: 5, K: 172, N: 9, G: 64, accumulate: true }, 202);
      await runCase(h, entry, { T: 1, K: 64, N: 33, G: 0, bias: true, accumulate: true }, 203);
    }));
}

Deno.test("int4 kernel table: lavapipe runs the slice kernels where groups tile a slice, else x through the uniform binding (decode) or the register tile (prefill)", () =>
  withKernels((h) => {
    const big = xBuffer(h, new Float32Array(8));
    const small = h.f32(new Float32Array(64));
    const pick = (T: number, K: number, x: GPUBuffer, G = 128) =>
      INT4_KERNELS.find((k) => k.when(T, K, h.gpu, x, G))!.entry;
    if (h.gpu.isSoftware) {
      assert.equal(pick(1, 4096, big), "gemv_u4_slice");
      assert.equal(pick(4, 11008, big), "gemv_u4_slice");
      assert.equal(pick(1, 5632, big, 5632), "gemv_u4_slice"); // per channel: 11 whole slices
      assert.equal(pick(1, 4096, small, 4096), "gemv_u4_slice"); // x read from storage
      assert.equal(pick(1, 4096, big, 96), "gemv_u4_ux"); // 3-chunk groups do not tile a slice
      assert.equal(pick(1, 11008, big, 160), "gemv_u4_ux");
      assert.equal(pick(1, 4096, small, 96), "gemv_u4");
      assert.equal(pick(1, 20000, big, 160), "gemv_u4"); // 80 KB of x: over the uniform binding
      assert.equal(pick(67, 4096, big), "gemm_u4_slice");
      assert.equal(pick(5, 4096, small, 4096), "gemm_u4_slice");
      assert.equal(pick(67, 4096, big, 96), "gemm_u4_reg4");
      assert.equal(pick(67, 4094, big), "gemm_u4_reg");
    } else {
      assert.equal(pick(1, 4096, big), h.gpu.hasSubgroups ? "gemv_u4_sg" : "gemv_u4_wg");
      assert.equal(pick(67, 4096, big), "gemm_u4");
    }
    return Promise.resolve();
  }));

Deno.test("int4 gemv_u4_ux refuses an input that does not fit the uniform binding", () =>
  withKernels(async (h) => {
    const W = uploadInt4(h.pool, packInt4([randomQl(mulberry32(7), 2, 64, 32)], "W"), "W");
    const y = h.pool.acquire(64, "y");
    await assert.rejects(
      () => h.kernels.matmulInt4(W, h.f32(new Float32Array(64)), y, 1, { entry: "gemv_u4_ux" }),
      /uniform binding/,
    );
  }));

Deno.test("int4 slice kernels: groups must tile the slices; slice counts and constants follow K and G", () => {
  assert.equal(sliceFits(4096, 128), true);
  assert.equal(sliceFits(5632, 5632), true); // per channel: 11 whole 16-chunk slices
  assert.equal(sliceFits(11008, 11008), false); // 344 chunks: the group ends inside a slice
  assert.equal(sliceFits(11008, 11008, 8), true); // 43 whole 8-chunk slices
  assert.equal(sliceFits(4096, 96), false); // pieces of 3 chunks
  assert.equal(sliceFits(4080, 48), false); // K and G not multiples of 32
  assert.equal(sliceFits(4096, 768), false); // 24 chunks: neither divides nor is a multiple of 16
  assert.equal(sliceFits(4096, 768, 8), true); // 3 slices of 8
  assert.equal(slicesOf(11008), 22);
  assert.equal(slicesOf(11008, 8), 43);
  assert.equal(slicesOf(32), 1);
  assert.deepEqual(sliceConstants(4096, 128), { WG: 8, R: 64, GC: 4, P: 4, WHOLE: 1 });
  assert.deepEqual(sliceConstants(4096, 4096, 8), { WG: 8, R: 64, GC: 128, P: 8, WHOLE: 1 });
  assert.deepEqual(sliceConstants(11008, 128), { WG: 8, R: 64, GC: 4, P: 4, WHOLE: 0 });
  assert.deepEqual(sliceConstants(11008, 128, 8), { WG: 8, R: 64, GC: 4, P: 4, WHOLE: 1 });
});

Deno.test("int4 gemv_u4_slice refuses groups that do not tile its slices, naming the sizes", () =>
  withKernels(async (h) => {
    const W = uploadInt4(h.pool, packInt4([randomQl(mulberry32(7), 2, 96, 96)], "W"), "W");
    const y = h.pool.acquire(64, "y");
    await assert.rejects(
      () =>
        h.kernels.matmulInt4(W, xBuffer(h, new Float32Array(96)), y, 1, { entry: "gemv_u4_slice" }),
      /gemv_u4_slice needs .* \(got K 96, groups of 96\)/,
    );
  }));

Deno.test("int4 fused q/k/v writes each part to its own output", () =>
  withKernels(async (h) => {
    const rng = mulberry32(8);
    const K = 96;
    const parts = [randomQl(rng, 16, K, 32), randomQl(rng, 8, K, 32), randomQl(rng, 8, K, 32)];
    const packed = packInt4(parts, "qkv");
    const W = uploadInt4(h.pool, packed, "qkv");
    const bias = randomFloats(rng, 32, -1, 1);
    for (const entry of entriesHere(h)) {
      for (const T of [1, 5]) {
        const x = randomFloats(rng, T * K);
        const xb = xBuffer(h, x);
        if (!usable(entry, T, K, xb, 32)) continue;
        const outs = parts.map((p) => h.f32(new Float32Array(T * p.outFeatures)));
        h.run(...await h.kernels.matmulInt4(W, xb, outs, T, { entry, bias: h.f32(bias) }));
        let b0 = 0;
        for (const [i, p] of parts.entries()) {
          const expected = matmul(x, dequantizeLinear(p), K, bias.subarray(b0, b0 + p.outFeatures));
          b0 += p.outFeatures;
          assertDotClose(
            await h.readF32(outs[i], expected.length),
            expected,
            magnitude(p, x, T),
            `${entry} T=${T} part ${i}`,
          );
        }
      }
    }
  }));

Deno.test("int4 fused gate/up with SiLU equals silu(gate) * up, fused and unfused", () =>
  withKernels(async (h) => {
    const rng = mulberry32(9);
    for (const [K, hidden, G] of [[64, 65, 32], [172, 9, 0]]) {
      const gate = randomQl(rng, hidden, K, G);
      const upQl = randomQl(rng, hidden, K, G);
      const W = uploadInt4(h.pool, packInt4([gate, upQl], "gate_up"), "gate_up");
      for (const entry of entriesHere(h)) {
        for (const T of [1, 3, 67]) {
          const x = randomFloats(rng, T * K);
          const xb = xBuffer(h, x);
          if (!usable(entry, T, K, xb, G)) continue;
          for (const fused of [true, false]) {
            const g = h.f32(new Float32Array(T * hidden));
            const u = h.f32(new Float32Array(T * hidden));
            h.run(...await h.kernels.gateUpInt4(W, xb, g, u, T, { entry, fused }));
            const gRef = matmul(x, dequantizeLinear(gate), K);
            const uRef = matmul(x, dequantizeLinear(upQl), K);
            const expected = siluMul(gRef, uRef);
            // d(silu(g)·u) <= 1.1·|u|·dg + |silu(g)|·du
            const mg = magnitude(gate, x, T);
            const mu = magnitude(upQl, x, T);
            const silu = siluMul(gRef, new Float32Array(gRef.length).fill(1));
            const mag = mg.map((v, i) => 1.1 * Math.abs(uRef[i]) * v + Math.abs(silu[i]) * mu[i]);
            assertDotClose(
              await h.readF32(g, T * hidden),
              expected,
              mag,
              `${entry} K=${K} T=${T}${fused ? " fused" : ""}`,
            );
          }
        }
      }
    }
  }));

Deno.test("matmul_int4_sg.wgsl validates and builds both pipelines with subgroupAdd stubbed (any adapter)", () =>
  withKernels(async (h) => {
    const code = (await loadShaderSource("matmul_int4_sg"))
      .replaceAll("subgroupAdd(v)", "v")
      .replaceAll(
        "@builtin(subgroup_invocation_id) lane: u32",
        "@builtin(local_invocation_id) lane3: vec3<u32>",
      )
      .replaceAll("@builtin(subgroup_size) size: u32,", "")
      .replaceAll(
        "let s = wg_sum(",
        "let lane = lane3.x;\n    let size = 8u;\n    let s = wg_sum(",
      );
    assert.ok(!/subgroupAdd\(|@builtin\(subgroup/.test(code), "every subgroup construct stubbed");
    const module = h.gpu.device.createShaderModule({ code });
    const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === "error");
    assert.deepEqual(errors.map((e) => e.message), []);
    for (const entryPoint of ["gemv_u4_sg", "gemv_u4_sg_swiglu"]) {
      await h.gpu.device.createComputePipelineAsync({
        layout: "auto",
        compute: { module, entryPoint, constants: { WG: 64 } },
      });
    }
  }));

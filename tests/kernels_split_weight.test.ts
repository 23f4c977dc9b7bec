// Weights larger than the storage binding limit are split into row chunks
// (src/gpu/gpu_weight.ts) and read one dispatch per chunk by embedRows and
// matmulRows (shaders/embedding.wgsl, shaders/matmul*.wgsl with a y row
// stride). A tiny artificial binding limit forces the split; results must
// equal the reference gather / matmul and the unsplit model.

import assert from "node:assert/strict";
import { roundToF16 } from "../src/formats/half.ts";
import { BufferPool } from "../src/gpu/buffer_pool.ts";
import { CommandBatch } from "../src/gpu/command_batch.ts";
import { acquireGpu, type GpuContext } from "../src/gpu/device.ts";
import { uploadWeight } from "../src/gpu/gpu_weight.ts";
import { WebGpuKernels } from "../src/gpu/kernels.ts";
import { readBuffer } from "../src/gpu/readback.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import { matmul } from "../src/model/reference_ops.ts";
import { randomLlamaWeights, tinyConfig } from "./support/random_llama.ts";
import { assertClose, mulberry32, randomFloats } from "./support/seeded.ts";

/** `gpu` with its storage binding limit reported as `limit` (the device keeps its own). */
function withBindingLimit(gpu: GpuContext, limit: number): GpuContext {
  const limits = new Proxy(gpu.limits, {
    get: (target, key) =>
      key === "maxStorageBufferBindingSize" ? limit : Reflect.get(target, key, target),
  });
  return {
    device: gpu.device,
    adapterDescription: gpu.adapterDescription,
    isSoftware: gpu.isSoftware,
    hasF16: gpu.hasF16,
    hasSubgroups: gpu.hasSubgroups,
    limits,
    lost: gpu.lost,
    check: () => gpu.check(),
    destroy: () => gpu.destroy(),
  };
}

const TOL = { abs: 1e-5, rel: 1e-4 };

Deno.test("a weight over the binding limit uploads as row chunks of 64-row multiples", async () => {
  const real = await acquireGpu();
  const gpu = withBindingLimit(real, 200_000);
  const pool = new BufferPool(gpu);
  try {
    const data = new Float32Array(2000 * 64).fill(1);
    const W = uploadWeight(gpu, pool, { data, shape: [2000, 64], dtype: "F32" }, "f32", "lm_head");
    assert.deepEqual(W.chunks?.map((c) => [c.row0, c.rows]), [[0, 768], [768, 768], [1536, 464]]);
    const W16 = uploadWeight(gpu, pool, { data, shape: [2000, 64], dtype: "F32" }, "f16", "e");
    assert.deepEqual(W16.chunks?.map((c) => c.rows), [1536, 464]);
    const small = uploadWeight(
      gpu,
      pool,
      {
        data: data.subarray(0, 6400),
        shape: [100, 64],
        dtype: "F32",
      },
      "f32",
      "s",
    );
    assert.equal(small.chunks, undefined);
    assert.throws(
      () =>
        uploadWeight(
          withBindingLimit(real, 1000),
          pool,
          {
            data,
            shape: [2000, 64],
            dtype: "F32",
          },
          "f32",
          "model.embed_tokens.weight",
        ),
      /model\.embed_tokens\.weight: 64 rows of 64 f32 values exceed/,
    );
  } finally {
    pool.destroy();
    real.destroy();
  }
});

Deno.test("embedRows and matmulRows over a split weight equal the reference (T = 1 and 5, f32 and f16)", async () => {
  const real = await acquireGpu();
  const gpu = withBindingLimit(real, 100_000);
  const pool = new BufferPool(real);
  const kernels = new WebGpuKernels(real);
  try {
    const rng = mulberry32(1);
    const [N, K] = [1000, 60];
    const w = randomFloats(rng, N * K);
    for (const dtype of ["f32", "f16"] as const) {
      const W = uploadWeight(gpu, pool, { data: w, shape: [N, K], dtype: "F32" }, dtype, "W");
      assert.ok(W.chunks && W.chunks.length > 1);
      const wRef = dtype === "f16" ? w.map(roundToF16) : w;
      for (const T of [1, 5]) {
        const x = randomFloats(rng, T * K);
        const y = pool.upload(new Float32Array(T * N).fill(NaN), "y");
        const ds = await kernels.matmulRows(W, pool.upload(x, "x"), y, T);
        new CommandBatch(real).runAll(ds).submit();
        const got = new Float32Array(await readBuffer(real, y, 0, T * N * 4));
        assertClose(got, matmul(x, wRef, K), TOL, `matmulRows ${dtype} T=${T}`);
      }
      const ids = [0, 767, 768, 999, 5000, 512]; // 5000: past the table, clamped to the last row
      const x = pool.upload(new Float32Array(ids.length * K).fill(NaN), "x");
      const ds = await kernels.embedRows(
        W,
        pool.upload(Uint32Array.from(ids), "ids"),
        x,
        ids.length,
      );
      new CommandBatch(real).runAll(ds).submit();
      const got = new Float32Array(await readBuffer(real, x, 0, ids.length * K * 4));
      const want = new Float32Array(ids.length * K);
      ids.forEach((id, t) => {
        const r = Math.min(id, N - 1);
        want.set(wRef.subarray(r * K, (r + 1) * K), t * K);
      });
      assert.deepEqual(got, want, `embedRows ${dtype}`);
    }
    real.check();
  } finally {
    kernels.destroy();
    pool.destroy();
    real.destroy();
  }
});

Deno.test("GpuLlama with its embedding and lm_head split across bindings gives the unsplit logits", async () => {
  const w = randomLlamaWeights(
    tinyConfig("llama", { vocabSize: 2000, tieWordEmbeddings: false }),
    3,
  );
  const ids = [1, 1999, 800, 5, 1500];
  const run = async (limit?: number) => {
    const real = await acquireGpu();
    const gpu = limit ? withBindingLimit(real, limit) : real;
    try {
      const m = await GpuLlama.load(gpu, w, { maxSeq: 32, maxBatch: 8, weightDType: "f32" });
      const out = [await m.logits(ids, 0), await m.logits([1234], ids.length)];
      m.destroy();
      return out;
    } finally {
      real.destroy();
    }
  };
  const whole = await run();
  const split = await run(300_000); // the 2000 x 60 f32 tables (480 KB) split in two
  for (let i = 0; i < whole.length; i++) assertClose(split[i], whole[i], TOL, `call ${i}`);
});

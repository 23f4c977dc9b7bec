/**
 * AWQ scale-search kernels on a Llama-2-7B-shaped projection (4096 x 4096):
 * 21 candidates, each fake-quantized, run over the calibration tokens and
 * scored, in one submit — reported as GFLOP/s against a plain matmul of the
 * same size in the same run. Then a whole `awqLayer` on a TinyLlama-shaped
 * layer (random weights) with its time per phase.
 *
 * The 7B MLP matrices (11008 x 4096 f32 = 180 MB) exceed lavapipe's 128 MiB
 * storage binding, so the projection stands in for the layer here.
 *
 * @module
 */

import { BufferPool } from "../src/gpu/buffer_pool.ts";
import { CommandBatch } from "../src/gpu/command_batch.ts";
import { WebGpuKernels } from "../src/gpu/kernels.ts";
import { readBuffer } from "../src/gpu/readback.ts";
import { AwqKernels } from "../src/quant/awq_kernels.ts";
import { AWQ_GRID, awqLayer } from "../src/quant/awq_layer.ts";
import type { QuantSettings } from "../src/quant/types.ts";
import { type BenchContext, type Benchmark, type BenchResult, fmt } from "./common.ts";
import { benchWeights, TINYLLAMA_CONFIG } from "./random_model.ts";

function pseudoRandom(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 16777216 - 0.5) * 2 * scale;
  }
  return out;
}

/** The AWQ benchmark. */
export const awqBench: Benchmark = {
  name: "awq",
  description:
    "AWQ scale-search GFLOP/s on a 7B-shaped projection vs plain matmul; awqLayer phases",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { gpu, quick, log } = ctx;
    const settings: QuantSettings = { bits: 4, groupSize: 128, zeroPoint: true };
    const N = quick ? 64 : 256;
    const D = 4096;
    const figures: Record<string, number> = {};
    const notes = [
      `scale search: W 4096x4096 f32, ${N} calibration tokens (128 x 512 on a real GPU; fewer on CPU), ` +
      `${AWQ_GRID + 1} candidates per submit`,
    ];
    const pool = new BufferPool(gpu);
    const kernels = new WebGpuKernels(gpu);
    const awq = new AwqKernels(gpu);
    try {
      const w = {
        buffer: pool.upload(pseudoRandom(D * D, 1, 1 / 64), "w"),
        dtype: "f32" as const,
        rows: D,
        cols: D,
      };
      const x = pool.upload(pseudoRandom(N * D, 2, 1), "x");
      const fq = { ...w, buffer: pool.acquire(D * D * 4, "w fake-quantized") };
      const y = pool.acquire(N * D * 4, "y");
      const ref = pool.acquire(N * D * 4, "ref");
      const scratch = pool.acquire(N * 4, "rows");
      const loss = pool.acquire((AWQ_GRID + 1) * 4, "loss");
      const nCand = AWQ_GRID + 1;
      const s = pool.upload(pseudoRandom(nCand * D, 3, 0.5).map((v) => 1 + v), "scales");
      const search = new CommandBatch(gpu);
      const matmul = new CommandBatch(gpu);
      search.run(await kernels.matmul(w, x, ref, N));
      for (let c = 0; c < nCand; c++) {
        search.run(await awq.fakeQuant(w.buffer, s, null, fq.buffer, D, D, settings, c * D));
        search.run(await kernels.matmul(fq, x, y, N));
        search.runAll(await awq.squaredError(y, ref, scratch, loss, c, N, D));
      }
      const plain = await kernels.matmul(w, x, y, N);
      for (let c = 0; c < nCand + 1; c++) matmul.run(plain);
      // warm-up (pipeline compilation)
      new CommandBatch(gpu).run(plain).submit();
      await readBuffer(gpu, loss, 0, 4);
      let t0 = performance.now();
      matmul.submit();
      await readBuffer(gpu, y, 0, 4);
      const matmulS = (performance.now() - t0) / 1000;
      t0 = performance.now();
      search.submit();
      await readBuffer(gpu, loss);
      const searchS = (performance.now() - t0) / 1000;
      const flop = (nCand + 1) * 2 * N * D * D;
      figures.matmul_gflops = flop / matmulS / 1e9;
      figures.scale_search_gflops = flop / searchS / 1e9;
      figures.scale_search_vs_matmul = figures.scale_search_gflops / figures.matmul_gflops;
      figures.scale_search_seconds = searchS;
      log(
        `  plain matmul ${N}x4096 . 4096x4096, ${nCand + 1} times: ${
          fmt(figures.matmul_gflops)
        } GFLOP/s`,
      );
      log(
        `  scale search (${nCand} x fake-quant + matmul + error): ${
          fmt(figures.scale_search_gflops)
        } GFLOP/s ` +
          `= ${fmt(figures.scale_search_vs_matmul)}x the plain matmul (${fmt(searchS)} s)`,
      );
    } finally {
      awq.destroy();
      kernels.destroy();
      pool.destroy();
    }
    // A whole layer of TinyLlama shape (full runs only: minutes on lavapipe).
    if (quick) return { figures, notes };
    const seqLen = 32;
    const seqs = 2;
    const weights = benchWeights({ ...TINYLLAMA_CONFIG, numLayers: 1, vocabSize: 256 }, {
      dtype: "F32",
    });
    const dim = weights.config.hiddenSize;
    const x = pseudoRandom(seqs * seqLen * dim, 4, 1);
    const t0 = performance.now();
    const r = await awqLayer(gpu, weights.config, weights.layers[0], x, seqLen, settings, {});
    figures.layer_seconds = (performance.now() - t0) / 1000;
    for (const [k, v] of Object.entries(r.seconds)) figures[`layer_${k}_seconds`] = v;
    notes.push(
      `awqLayer: TinyLlama-1.1B layer shape (2048, 5632, 32/4 heads), ${seqs} x ${seqLen} tokens, w4 g128`,
    );
    log(
      `  awqLayer TinyLlama-shaped, ${seqs}x${seqLen} tokens: ${fmt(figures.layer_seconds)} s (` +
        Object.entries(r.seconds).map(([k, v]) => `${k} ${fmt(v)} s`).join(", ") + ")",
    );
    return { figures, notes };
  },
};

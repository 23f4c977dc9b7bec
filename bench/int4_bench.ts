/**
 * int4 inference on WebGPU (issue 6), every ratio measured in the same run:
 *
 * (a) GEMV (one token) on Llama-2-7B layer shapes (4096x4096, 11008x4096,
 *     4096x11008, out x in) and TinyLlama-1.1B shapes, random weights: the
 *     int4 kernel the table picks against the f16 and f32 GEMV of the same
 *     shape, as weight GB/s, and against this adapter's memory-read bandwidth
 *     measured by the same harness (shaders/read_rows.wgsl over 64 MB, the
 *     GEMV's access pattern) and, for scale, a host TypedArray sum.
 * (b) end-to-end decode and prefill tokens/s on the 483M random-weight Llama
 *     (BENCH_483M_CONFIG) with int4 linears (g128) against fp16 of the same
 *     model (the same codes dequantized), plus resident weight bytes.
 * (c) per-token time of int4 decode split into GPU work, recording, and
 *     host waits (readback round trip, the rest).
 *
 * Dispatch timing: R copies of one dispatch in one submit, then a 4-byte
 * readback; time per dispatch = (wall - readback round trip) / R.
 *
 * @module
 */

import { CommandBatch, type Dispatch, makeDispatch } from "../src/gpu/command_batch.ts";
import type { GpuContext } from "../src/gpu/device.ts";
import { type GpuWeight, uploadWeight } from "../src/gpu/gpu_weight.ts";
import { packInt4, uploadInt4 } from "../src/gpu/int4_weight.ts";
import { BufferPool } from "../src/gpu/buffer_pool.ts";
import {
  INT4_KERNELS,
  INT4_UNIFORM_X_BYTES,
  sliceConstants,
  slicesOf,
  WebGpuKernels,
} from "../src/gpu/kernels.ts";
import { readBuffer } from "../src/gpu/readback.ts";
import { loadShaderSource } from "../src/gpu/shader_source.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import type { LlamaConfig } from "../src/model/config.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchResult,
  fixedPrompt,
  fmt,
  generationRate,
  gpuStepTime,
  median,
  readbackRoundTripMs,
} from "./common.ts";
import {
  BENCH_483M_CONFIG,
  benchQuantizedWeights,
  parameterCount,
  randomQuantizedLinear,
} from "./random_model.ts";

/** GEMV shapes [out, in, label]. */
export const GEMV_SHAPES: readonly [number, number, string][] = [
  [4096, 4096, "7b_qkvo"],
  [11008, 4096, "7b_gate_up"],
  [4096, 11008, "7b_down"],
  [2048, 2048, "tiny_qo"],
  [5632, 2048, "tiny_gate_up"],
  [2048, 5632, "tiny_down"],
];

/** The shapes run with --quick (a smoke run: the full run has every shape). */
const QUICK_SHAPES = new Set(["7b_qkvo", "tiny_qo"]);

/**
 * The model of part (b): the 483M model, or with --quick (a smoke run, said
 * in the notes) its layer shapes with 2 layers and a 4096-token vocabulary.
 *
 * @example
 * ```ts
 * import { int4BenchConfig } from "./int4_bench.ts";
 * int4BenchConfig(false).numLayers; // 8
 * ```
 */
export function int4BenchConfig(quick: boolean): LlamaConfig {
  return quick ? { ...BENCH_483M_CONFIG, numLayers: 2, vocabSize: 4096 } : BENCH_483M_CONFIG;
}

/**
 * Bytes of weight copies a GEMV measurement cycles through: 3x this
 * machine's 32 MiB L3, so every dispatch streams its weights from memory
 * (one 8 MB int4 4096x4096 weight read again and again would stay in cache).
 */
export const STREAM_BYTES = 96 << 20;

/**
 * Median ms per dispatch: `reps` dispatches per submit cycling through `ds`
 * (copies of one GEMV on different weight buffers), `rounds` submits.
 */
async function dispatchMs(
  gpu: GpuContext,
  d: Dispatch | readonly Dispatch[],
  probe: GPUBuffer,
  reps: number,
  rounds: number,
  rtMs: number,
): Promise<number> {
  const ds = Array.isArray(d) ? d : [d as Dispatch];
  const times: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    const batch = new CommandBatch(gpu);
    for (let i = 0; i < reps; i++) batch.run(ds[i % ds.length]);
    const t0 = performance.now();
    batch.submit();
    await readBuffer(gpu, probe, 0, 4);
    if (r > 0) times.push((performance.now() - t0 - rtMs) / reps); // round 0 warms up
  }
  return Math.max(median(times), 1e-6);
}

/** One timed GEMV of {@link interleavedMs}: dispatches to cycle through, and how many per submit. */
interface TimedSet {
  ds: readonly Dispatch[];
  reps: number;
}

/**
 * Median ms per dispatch of each set, measured in interleaved rounds (each
 * round times every set once, starting from a different one), so load from
 * other processes drifting over time hits all sets alike. Round 0 warms up.
 */
async function interleavedMs(
  gpu: GpuContext,
  sets: Record<string, TimedSet>,
  probe: GPUBuffer,
  rounds: number,
  rtMs: number,
): Promise<Record<string, number>> {
  const names = Object.keys(sets);
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r <= rounds; r++) {
    for (let j = 0; j < names.length; j++) {
      const name = names[(r + j) % names.length];
      const { ds, reps } = sets[name];
      const batch = new CommandBatch(gpu);
      for (let i = 0; i < reps; i++) batch.run(ds[i % ds.length]);
      const t0 = performance.now();
      batch.submit();
      await readBuffer(gpu, probe, 0, 4);
      if (r > 0) times[name].push((performance.now() - t0 - rtMs) / reps);
    }
  }
  return Object.fromEntries(names.map((n) => [n, Math.max(median(times[n]), 1e-6)]));
}

/** Host read bandwidth (GB/s): summing a 64 MB Float64Array view, best of 3. */
function hostReadGbps(): number {
  const a = new Float64Array(8 << 20).fill(1);
  let best = Infinity;
  let sink = 0;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i];
    sink += s;
    best = Math.min(best, performance.now() - t0);
  }
  if (sink < 0) console.log(sink);
  return a.byteLength / (best / 1000) / 1e9;
}

interface GemvFigures {
  memGbps: number;
}

async function gemvPart(
  ctx: BenchContext,
  figures: Record<string, number>,
  notes: string[],
  rtMs: number,
): Promise<GemvFigures> {
  const { gpu, quick, log } = ctx;
  const pool = new BufferPool(gpu);
  const kernels = new WebGpuKernels(gpu);
  const limit = gpu.limits.maxStorageBufferBindingSize;
  const rounds = quick ? 1 : 5;
  try {
    const probe = pool.acquire(16, "probe");
    // (a0) the memory-read baseline: 64 MB (twice the L3) as 4096 rows of 16 KB.
    const rows = 4096;
    const words4 = 1024;
    const src = pool.upload(new Uint32Array(rows * words4 * 4).fill(1), "read baseline");
    const sums = pool.acquire(rows * 4, "sums");
    const readMs = await dispatchMs(
      gpu,
      await kernels.readRows(src, sums, rows, words4),
      probe,
      quick ? 4 : 8,
      rounds,
      rtMs,
    );
    const memGbps = (rows * words4 * 16) / (readMs / 1000) / 1e9;
    pool.release(src);
    const hostGbps = hostReadGbps();
    figures.mem_read_gb_per_s = memGbps;
    figures.host_typedarray_read_gb_per_s = hostGbps;
    log(
      `  memory read (read_rows, ${(rows * words4 * 16) >> 20} MB, row per invocation): ` +
        `${fmt(memGbps)} GB/s; ` +
        `host Float64Array sum: ${fmt(hostGbps)} GB/s`,
    );
    log(
      "  GEMV out x in      kernel        int4 GB/s  ms     f16 ms   f32 ms   int4 vs f16  int4/mem",
    );
    const x = pool.upload(
      new Float32Array(Math.max(11008, INT4_UNIFORM_X_BYTES / 4)).fill(0.01),
      "x",
    );
    const y = pool.acquire(11008 * 4, "y");
    let seed = 1;
    for (const [N, K, label] of GEMV_SHAPES) {
      if (quick && !QUICK_SHAPES.has(label)) continue;
      const copies = (bytes: number) => Math.max(1, Math.ceil(STREAM_BYTES / bytes));
      const packed = packInt4([randomQuantizedLinear(N, K, seed++, { groupSize: 128 })], label);
      const W4s = Array.from(
        { length: copies(packed.codes.byteLength) },
        () => uploadInt4(pool, packed, label),
      );
      const W4 = W4s[0];
      const reps = Math.max(W4s.length, Math.round((quick ? 5e7 : 6e8) / (N * K * 4)));
      const entry = INT4_KERNELS.find((k) => k.when(1, K, gpu, x, 128))!.entry;
      // A two-pass kernel is two dispatches per GEMV: time them as a pair.
      const int4Ds = (await Promise.all(W4s.map((w) => kernels.matmulInt4(w, x, y, 1)))).flat();
      const perOp = int4Ds.length / W4s.length;
      const sets: Record<string, TimedSet> = { int4: { ds: int4Ds, reps: reps * perOp } };
      const dense: Record<string, number> = { f16: NaN, f32: NaN };
      const denseWeights: GpuWeight[] = [];
      for (const dtype of ["f16", "f32"] as const) {
        const bytes = N * K * (dtype === "f16" ? 2 : 4);
        if (bytes > limit) continue;
        const data = new Float32Array(N * K).fill(0.001);
        const Ws: GpuWeight[] = Array.from(
          { length: copies(bytes) },
          () => uploadWeight(gpu, pool, { data, shape: [N, K], dtype: "F32" }, dtype, label),
        );
        denseWeights.push(...Ws);
        sets[dtype] = {
          ds: await Promise.all(Ws.map((w) => kernels.matmul(w, x, y, 1))),
          reps: Math.max(reps, Ws.length),
        };
      }
      const ms = await interleavedMs(gpu, sets, probe, rounds, rtMs);
      const ms4 = ms.int4 * perOp;
      const gbps4 = W4.bytes / (ms4 / 1000) / 1e9;
      for (const dtype of ["f16", "f32"]) if (ms[dtype] !== undefined) dense[dtype] = ms[dtype];
      for (const w of denseWeights) pool.release(w.buffer);
      for (const w of W4s) {
        pool.release(w.codes);
        pool.release(w.sz);
      }
      Object.assign(figures, {
        [`gemv_${label}_int4_gb_per_s`]: gbps4,
        [`gemv_${label}_int4_ms`]: ms4,
        [`gemv_${label}_int4_vs_mem_read`]: gbps4 / memGbps,
        [`gemv_${label}_int4_bytes`]: W4.bytes,
      });
      if (Number.isFinite(dense.f16)) {
        figures[`gemv_${label}_f16_ms`] = dense.f16;
        figures[`gemv_${label}_f16_gb_per_s`] = (N * K * 2) / (dense.f16 / 1000) / 1e9;
        figures[`gemv_${label}_speedup_int4_vs_f16`] = dense.f16 / ms4;
      }
      if (Number.isFinite(dense.f32)) {
        figures[`gemv_${label}_f32_ms`] = dense.f32;
        figures[`gemv_${label}_speedup_int4_vs_f32`] = dense.f32 / ms4;
      }
      log(
        `  ${`${N}x${K}`.padEnd(12)} ${entry.padEnd(12)} ${fmt(gbps4).padStart(9)}  ` +
          `${fmt(ms4).padStart(6)} ${fmt(dense.f16).padStart(7)}  ${fmt(dense.f32).padStart(7)}  ` +
          `${fmt(dense.f16 / ms4).padStart(10)}x  ${fmt(gbps4 / memGbps)}`,
      );
    }
    await fusionPart(ctx, kernels, pool, x, probe, figures, rtMs);
    if (gpu.isSoftware) await ablationPart(ctx, kernels, probe, figures, rtMs);
    notes.push(
      "GEMV: one token, random g128 int4 codes; int4 GB/s counts the resident int4 bytes " +
        "(codes + f16 scale/zero); each measurement cycles through copies of the weight " +
        `totalling >= ${STREAM_BYTES >> 20} MB so weights stream from memory, not L3; ` +
        "f32 shapes over the storage binding limit are skipped (NaN)",
    );
    return { memGbps };
  } finally {
    kernels.destroy();
    pool.destroy();
  }
}

/**
 * The gain of the fused int4 layer forms on TinyLlama shapes: q/k/v as one
 * dispatch against three, and gate/up with SiLU as one dispatch against two
 * GEMVs and silu_mul.
 */
async function fusionPart(
  ctx: BenchContext,
  kernels: WebGpuKernels,
  pool: BufferPool,
  x: GPUBuffer,
  probe: GPUBuffer,
  figures: Record<string, number>,
  rtMs: number,
): Promise<void> {
  const { gpu, quick, log } = ctx;
  const dim = 2048;
  const kv = 256;
  const hidden = 5632;
  const reps = quick ? 2 : 8;
  const rounds = quick ? 1 : 6;
  const ql = (n: number, seed: number) => randomQuantizedLinear(n, dim, seed, { groupSize: 128 });
  const q = ql(dim, 101),
    k = ql(kv, 102),
    v = ql(kv, 103),
    g = ql(hidden, 104),
    u = ql(hidden, 105);
  const out = (n: number) => pool.acquire(n * 4, "out");
  const [yq, yk, yv, yg, yu] = [out(dim), out(kv), out(kv), out(hidden), out(hidden)];
  const up = (parts: typeof q[], label: string) => uploadInt4(pool, packInt4(parts, label), label);
  const qkv = up([q, k, v], "qkv");
  const gu = up([g, u], "gate_up");
  const fusedQkvDs = await kernels.matmulInt4(qkv, x, [yq, yk, yv], 1);
  const sepQkvDs = [
    ...await kernels.matmulInt4(up([q], "q"), x, yq, 1),
    ...await kernels.matmulInt4(up([k], "k"), x, yk, 1),
    ...await kernels.matmulInt4(up([v], "v"), x, yv, 1),
  ];
  const fusedGuDs = await kernels.gateUpInt4(gu, x, yg, yu, 1);
  const sepGuDs = await kernels.gateUpInt4(gu, x, yg, yu, 1, { fused: false });
  // Each set's reps are whole operations (all of its dispatches), so ms x dispatches = ms per op.
  const set = (ds: Dispatch[]): TimedSet => ({ ds, reps: reps * ds.length });
  const ms = await interleavedMs(
    gpu,
    {
      fusedQkv: set(fusedQkvDs),
      sepQkv: set(sepQkvDs),
      fusedGu: set(fusedGuDs),
      sepGu: set(sepGuDs),
    },
    probe,
    rounds,
    rtMs,
  );
  const fusedQkv = ms.fusedQkv * fusedQkvDs.length;
  const sepQkv = ms.sepQkv * sepQkvDs.length;
  const fusedGu = ms.fusedGu * fusedGuDs.length;
  const sepGu = ms.sepGu * sepGuDs.length;
  Object.assign(figures, {
    fused_qkv_ms: fusedQkv,
    separate_qkv_ms: sepQkv,
    fused_qkv_speedup: sepQkv / fusedQkv,
    fused_gate_up_silu_ms: fusedGu,
    separate_gate_up_silu_ms: sepGu,
    fused_gate_up_silu_speedup: sepGu / fusedGu,
  });
  log(
    `  fused q/k/v (2048 -> 2048+256+256): ${fmt(fusedQkv)} ms vs 3 dispatches ${fmt(sepQkv)} ms ` +
      `(${fmt(sepQkv / fusedQkv)}x); fused gate/up+SiLU (2048 -> 2x5632): ${fmt(fusedGu)} ms vs ` +
      `2-output GEMV + silu_mul ${fmt(sepGu)} ms (${fmt(sepGu / fusedGu)}x)`,
  );
}

/**
 * What limits the decode GEMV on this adapter: the production two-pass
 * gemv_u4_slice against the one-pass gemv_u4_ux it replaced, its first pass
 * alone, and variants of that pass with one ingredient removed (text
 * substitutions of shaders/matmul_int4_slice.wgsl), 4096x4096 g128. Each
 * variant's speed-up over the first pass says how much of its time that
 * ingredient costs.
 */
async function ablationPart(
  ctx: BenchContext,
  kernels: WebGpuKernels,
  probe: GPUBuffer,
  figures: Record<string, number>,
  rtMs: number,
): Promise<void> {
  const { gpu, quick, log } = ctx;
  const device = gpu.device;
  const [N, K, G] = [4096, 4096, 128];
  const base = await loadShaderSource("matmul_int4_slice");
  const sub = (a: string, b: string) => {
    if (!base.includes(a)) throw new Error(`ablation: "${a}" not in matmul_int4_slice.wgsl`);
    return base.split(a).join(b);
  };
  const variants: Record<string, string> = {
    no_code_loads: sub(
      "let w = codes[cb + c];",
      "let w = vec4<u32>(cb * 0x9E3779B1u + c, cb ^ c, c + 77u * cb, cb);",
    ),
    no_x_gather: sub(
      "let v = x4[(t * p.K) / 4u + 8u * (c0 + c) + j];",
      "let v = f32(t * p.K + 32u * (c0 + c) + j) * vec4<f32>(1.0, 0.5, 0.25, 0.125);",
    ),
    no_arithmetic: sub(
      "acc += in_place4(w.x) * xp[b]",
      "acc += bitcast<vec4<f32>>(w) * xp[b]; if (false) { acc += in_place4(w.x) * xp[b]",
    ).replace("in_place4(w.w >> 16u) * xp[b + 7u];", "in_place4(w.w >> 16u) * xp[b + 7u]; }"),
  };
  const pool = new BufferPool(gpu);
  try {
    const ql = randomQuantizedLinear(N, K, 7, { groupSize: G });
    const W = uploadInt4(pool, packInt4([ql], "ablation"), "ablation");
    const x = pool.upload(new Float32Array(INT4_UNIFORM_X_BYTES / 4).fill(0.01), "x");
    const y = pool.acquire(N * 4, "y");
    const [slice, sum] = await kernels.matmulInt4(W, x, y, 1);
    const [ux] = await kernels.matmulInt4(W, x, y, 1, { entry: "gemv_u4_ux" });
    const reps = quick ? 3 : 6;
    const sets: Record<string, TimedSet> = {
      production: { ds: [slice, sum], reps: 2 * reps },
      gemv_u4_ux: { ds: [ux], reps },
      first_pass: { ds: [slice], reps },
    };
    const params = device.createBuffer({
      size: 32,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(params, 0, new Uint32Array([1, K, N, G, N, N, 0, 0]));
    const part = pool.acquire(4 * slicesOf(K) * N, "partials");
    for (const [name, code] of Object.entries(variants)) {
      const module = device.createShaderModule({ label: `ablation ${name}`, code });
      const pipeline = await device.createComputePipelineAsync({
        layout: "auto",
        compute: { module, entryPoint: "gemv_u4_slice", constants: sliceConstants(K, G) },
      });
      // A variant that no longer reads codes or x has no binding for it.
      const codes = name === "no_code_loads" ? null : W.codes;
      const xb = name === "no_x_gather" ? null : x;
      const d = makeDispatch(
        gpu,
        pipeline,
        [codes, xb, null, null, params, W.sz, null, null, part],
        [slice.workgroups[0], slice.workgroups[1]],
      );
      sets[name] = { ds: [d], reps };
    }
    const ms = await interleavedMs(gpu, sets, probe, quick ? 1 : 8, rtMs);
    ms.production *= 2;
    const line = Object.entries(ms).map(([name, t]) => {
      const gbps = W.bytes / (t / 1000) / 1e9;
      figures[`ablation_${name}_gb_per_s`] = gbps;
      const vs = name === "production"
        ? undefined
        : name === "gemv_u4_ux" || name === "first_pass"
        ? ms.production / t
        : ms.first_pass / t;
      if (vs !== undefined) figures[`ablation_${name}_speedup`] = vs;
      return `${name} ${fmt(gbps)} GB/s${vs === undefined ? "" : ` (${fmt(vs)}x)`}`;
    });
    log(`  gemv_u4_slice 4096x4096 ablation: ${line.join(", ")}`);
    params.destroy();
  } finally {
    pool.destroy();
  }
}

/** Weight bytes a decode step reads from `model` (all of them but the embedding, plus one row). */
function stepBytes(model: GpuLlama): number {
  const c = model.config;
  const embed = c.vocabSize * c.hiddenSize * 2;
  return model.residency.residentBytes - embed + c.hiddenSize * 2;
}

async function modelPart(
  ctx: BenchContext,
  figures: Record<string, number>,
  notes: string[],
  rtMs: number,
  memGbps: number,
): Promise<void> {
  const { gpu, quick, log } = ctx;
  const config = int4BenchConfig(quick);
  const t0 = performance.now();
  const weights: LlamaWeights = benchQuantizedWeights(config, { groupSize: 128 });
  const genSeconds = (performance.now() - t0) / 1000;
  const opts = { maxSeq: 128, maxBatch: 64 };
  const models = new Map<"int4" | "f16", GpuLlama>();
  try {
    const t1 = performance.now();
    models.set("int4", await GpuLlama.load(gpu, weights, opts));
    const loadInt4 = (performance.now() - t1) / 1000;
    const t2 = performance.now();
    models.set("f16", await GpuLlama.load(gpu, weights, { ...opts, weightDType: "f16" }));
    const loadF16 = (performance.now() - t2) / 1000;
    const int4 = models.get("int4")!;
    const f16 = models.get("f16")!;
    figures.model_resident_bytes_int4 = int4.residency.residentBytes;
    figures.model_resident_bytes_f16 = f16.residency.residentBytes;
    figures.model_resident_int4_vs_f16 = int4.residency.residentBytes / f16.residency.residentBytes;
    figures.model_load_s_int4 = loadInt4;
    figures.model_load_s_f16 = loadF16;
    const params = parameterCount(weights) / 1e6;
    notes.push(
      `model: random Llama (dim 2048, FFN 5632, ${config.numLayers} layers, 32/4 heads, ` +
        `vocab ${config.vocabSize}, untied; ${params.toFixed(0)}M parameters` +
        `${quick ? ", the --quick stand-in for the 483M model" : ""}), ` +
        `int4 g128 linears, fp16 embedding/lm_head; fp16 run = the same codes dequantized; ` +
        `weights generated in ${genSeconds.toFixed(1)} s`,
    );
    log(
      `  483M model resident: int4 ${fmt(int4.residency.residentBytes / 1e6)} MB, ` +
        `f16 ${fmt(f16.residency.residentBytes / 1e6)} MB ` +
        `(${fmt(100 * figures.model_resident_int4_vs_f16)}%); load int4 ${fmt(loadInt4)} s, ` +
        `f16 ${fmt(loadF16)} s`,
    );
    // (b) decode: K steps in one submit; rounds alternate int4 / f16.
    const steps = quick ? 2 : 16;
    const reps = quick ? 1 : 5;
    const prompt = fixedPrompt(8, config.vocabSize);
    const submit: Record<string, number[]> = { int4: [], f16: [] };
    const encode: Record<string, number[]> = { int4: [], f16: [] };
    for (let r = 0; r < reps; r++) {
      for (const [name, m] of models) {
        const t = await gpuStepTime(m, prompt, steps, 1, rtMs);
        submit[name].push(t.submitMs);
        encode[name].push(t.encodeMsPerToken);
      }
    }
    const tps: Record<string, number> = {};
    for (const name of ["int4", "f16"]) {
      const s = median(submit[name]);
      const gpuMs = (s - rtMs) / steps;
      tps[name] = steps / (s / 1000);
      const bytes = stepBytes(models.get(name as "int4" | "f16")!);
      Object.assign(figures, {
        [`decode_tokens_per_s_${name}`]: tps[name],
        [`decode_gpu_ms_per_token_${name}`]: gpuMs,
        [`decode_weight_gb_per_s_${name}`]: bytes / (gpuMs / 1000) / 1e9,
      });
    }
    // Each round's pair ran back to back under the same load: the ratio is
    // the median of the per-round ratios.
    figures.decode_speedup_int4_vs_f16 = median(submit.f16.map((f, r) => f / submit.int4[r]));
    figures.decode_weight_gb_per_s_int4_vs_mem_read = figures.decode_weight_gb_per_s_int4 /
      memGbps;
    log(`  decode (${steps} steps per submit, median of ${reps}):`);
    for (const name of ["int4", "f16"]) {
      log(
        `    ${name.padEnd(5)} ${fmt(tps[name]).padStart(7)} tokens/s  ` +
          `GPU ${fmt(figures[`decode_gpu_ms_per_token_${name}`])} ms/token  ` +
          `${fmt(figures[`decode_weight_gb_per_s_${name}`])} GB/s of weights`,
      );
    }
    log(
      `    int4 vs f16: ${
        fmt(figures.decode_speedup_int4_vs_f16)
      }x (median of the per-round ratios)`,
    );

    // (b) prefill: forward(T, last) + a 4-byte readback.
    const T = quick ? 8 : 64;
    const window = fixedPrompt(T, config.vocabSize);
    const prefill: Record<string, number[]> = { int4: [], f16: [] };
    for (let r = 0; r <= reps; r++) {
      for (const [name, m] of models) {
        const plan = await m.forward(T, "last");
        m.setInput(window, 0);
        const t = performance.now();
        new CommandBatch(gpu).runAll(plan).submit();
        await readBuffer(gpu, m.logitsBuffer, 0, 4);
        if (r > 0) prefill[name].push(T / ((performance.now() - t) / 1000));
      }
    }
    figures.prefill_tokens_per_s_int4 = median(prefill.int4);
    figures.prefill_tokens_per_s_f16 = median(prefill.f16);
    figures.prefill_speedup_int4_vs_f16 = figures.prefill_tokens_per_s_int4 /
      figures.prefill_tokens_per_s_f16;
    log(
      `  prefill ${T} tokens: int4 ${fmt(figures.prefill_tokens_per_s_int4)} tokens/s, ` +
        `f16 ${fmt(figures.prefill_tokens_per_s_f16)} tokens/s ` +
        `(${fmt(figures.prefill_speedup_int4_vs_f16)}x)`,
    );

    // (c) per-token split of int4 decode through the Generator: each round
    // times the Generator (total per token) and, right after, the same
    // number of steps in one submit (GPU work), so both see the same load.
    const perReadback = quick ? 2 : 16;
    const totals: number[] = [];
    const gpus: number[] = [];
    const encodes: number[] = [];
    for (let r = 0; r < reps; r++) {
      totals.push((await generationRate(int4, prompt, perReadback, perReadback)).msPerToken);
      const t = await gpuStepTime(int4, prompt, perReadback, 1, rtMs);
      gpus.push(t.gpuMsPerToken);
      encodes.push(t.encodeMsPerToken);
    }
    const total = median(totals);
    const gpuMs = median(gpus);
    const encodeMs = median(encodes);
    const readbackMs = rtMs / perReadback;
    figures.split_total_ms_per_token = total;
    figures.split_gpu_ms_per_token = gpuMs;
    figures.split_encode_ms_per_token = encodeMs;
    figures.split_readback_wait_ms_per_token = readbackMs;
    figures.split_host_other_ms_per_token = total - gpuMs - encodeMs - readbackMs;
    figures.split_gpu_share = gpuMs / total;
    figures.split_tokens_per_readback = perReadback;
    log(
      `  int4 per-token split (Generator, ${perReadback} tokens per readback, median of ${reps}):`,
    );
    log(`    total             ${fmt(total)} ms`);
    log(`    GPU work          ${fmt(gpuMs)} ms (${fmt(100 * figures.split_gpu_share)}%)`);
    log(`    recording         ${fmt(encodeMs)} ms`);
    log(
      `    readback wait     ${fmt(readbackMs)} ms (round trip ${fmt(rtMs)} ms / ${perReadback})`,
    );
    log(`    other host work   ${fmt(figures.split_host_other_ms_per_token)} ms (residual; noise)`);
    await kernelSplit(ctx, int4, figures, rtMs);
    gpu.check();
  } finally {
    for (const m of models.values()) m.destroy();
  }
}

/**
 * (c) continued: the GPU work of one int4 decode step by kernel, each
 * dispatch of the step timed alone (repeated in one submit; median of
 * interleaved rounds) and summed per pipeline, so the table shows which
 * kernels the token time goes to. Dispatches timed alone overlap nothing, so
 * the sum can exceed the step's own GPU time a little.
 */
async function kernelSplit(
  ctx: BenchContext,
  model: GpuLlama,
  figures: Record<string, number>,
  rtMs: number,
): Promise<void> {
  const { gpu, quick, log } = ctx;
  const ds = await model.forward(1, "last");
  const sets = Object.fromEntries(ds.map((d, i) => [i, { ds: [d], reps: quick ? 2 : 8 }]));
  const ms = await interleavedMs(gpu, sets, model.logitsBuffer, quick ? 1 : 3, rtMs);
  const byKernel = new Map<string, { ms: number; count: number }>();
  for (const [i, d] of ds.entries()) {
    const name = d.pipeline.label || "?";
    const e = byKernel.get(name) ?? { ms: 0, count: 0 };
    e.ms += ms[i];
    e.count++;
    byKernel.set(name, e);
  }
  const total = [...byKernel.values()].reduce((a, e) => a + e.ms, 0);
  log(`  int4 decode step by kernel (each dispatch timed alone; sum ${fmt(total)} ms):`);
  for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms)) {
    figures[`kernel_${name.replace(/\W+/g, "_")}_ms_per_token`] = e.ms;
    log(
      `    ${name.padEnd(44)} ${fmt(e.ms).padStart(6)} ms  ${
        fmt(100 * e.ms / total).padStart(5)
      }%  ${e.count} dispatches`,
    );
  }
}

/** The int4 benchmark. */
export const int4Bench: Benchmark = {
  name: "int4",
  description:
    "int4 GEMV GB/s vs f16/f32 and memory read; 483M int4 vs fp16 decode/prefill; per-token split",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const figures: Record<string, number> = {};
    const notes: string[] = [];
    const rtMs = await readbackRoundTripMs(ctx.gpu, ctx.quick ? 5 : 15);
    figures.readback_round_trip_ms = rtMs;
    const { memGbps } = await gemvPart(ctx, figures, notes, rtMs);
    await modelPart(ctx, figures, notes, rtMs, memGbps);
    return { figures, notes };
  },
};

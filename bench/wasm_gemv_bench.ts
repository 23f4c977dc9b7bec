/**
 * The WebAssembly CPU kernels' GEMV speed as a fraction of the memory read
 * bandwidth measured by the same harness in the same run: a SIMD sum over a
 * 256 MiB buffer (64 MiB with --quick) on 1 and 2 threads, handed out in
 * chunks exactly like matmul rows. Then int4 GEMV (AWQ g128, int8 and exact
 * f32 activations) on 4096x4096, 11008x4096, 4096x11008, the f16 lm_head of
 * the 483M model (32000x2048), and f16 / f32 GEMV of 4096x4096, each on 1
 * and 2 threads. GB/s counts the bytes of the weight as stored (codes plus
 * per-block scales for int4); int4 GEMVs cycle through copies of the weight
 * totalling 64 MB or more, so they read memory, not the cache. --quick runs
 * 2048x2048 shapes only.
 *
 * @module
 */

import process from "node:process";
import { createWasmKernels, type WasmKernels } from "../src/cpu/wasm_kernels.ts";
import type { CpuLinear } from "../src/cpu/cpu_kernels.ts";
import { quantizedTensor } from "../src/model/weights.ts";
import type { HostTensor } from "../src/model/weights.ts";
import { dequantizeLinear } from "../src/quant/quantizer.ts";
import { type BenchContext, type Benchmark, type BenchResult, fmt, median } from "./common.ts";
import { randomQuantizedLinear } from "./random_model.ts";

interface Shape {
  name: string;
  rows: number;
  cols: number;
  kind: "int4" | "f16" | "f32";
}

const FULL: Shape[] = [
  { name: "q4_4096x4096", rows: 4096, cols: 4096, kind: "int4" },
  { name: "q4_11008x4096", rows: 11008, cols: 4096, kind: "int4" },
  { name: "q4_4096x11008", rows: 4096, cols: 11008, kind: "int4" },
  { name: "f16_lmhead_32000x2048", rows: 32000, cols: 2048, kind: "f16" },
  { name: "f16_4096x4096", rows: 4096, cols: 4096, kind: "f16" },
  { name: "f32_4096x4096", rows: 4096, cols: 4096, kind: "f32" },
];

const QUICK: Shape[] = [
  { name: "q4_2048x2048", rows: 2048, cols: 2048, kind: "int4" },
  { name: "f16_2048x2048", rows: 2048, cols: 2048, kind: "f16" },
  { name: "f32_2048x2048", rows: 2048, cols: 2048, kind: "f32" },
];

function denseTensor(rows: number, cols: number, dtype: "F16" | "F32"): HostTensor {
  const data = new Float32Array(rows * cols);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = ((s >>> 8) / 2 ** 24 - 0.5) * 0.05; // f16 rounding happens at load
  }
  return { data, shape: [rows, cols], dtype };
}

/** CPU seconds used by this process so far (all threads). */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Median wall seconds of `fn` over `reps` timed runs after one warm-up, and
 * the least CPU seconds (all threads) of a run: on a shared machine the wall
 * time includes time the threads waited for a core, the CPU time does not.
 */
function timeIt(fn: () => void, reps: number): { wall: number; cpu: number } {
  fn();
  const times: number[] = [];
  let cpu = Infinity;
  for (let i = 0; i < reps; i++) {
    const c0 = cpuSeconds();
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
    cpu = Math.min(cpu, cpuSeconds() - c0);
  }
  return { wall: median(times), cpu };
}

/** GB/s (wall) and GB per CPU-second of `reps` sweeps over a filled buffer of `bytes`. */
function readBandwidth(
  k: WasmKernels,
  buf: number,
  bytes: number,
  reps: number,
): { gbs: number; perCpu: number } {
  const t = timeIt(() => k.readMemory(buf, bytes), reps);
  return { gbs: bytes / t.wall / 1e9, perCpu: bytes / t.cpu / 1e9 };
}

/**
 * GB/s (wall) and GB per CPU-second of GEMVs (T = 1) cycling through the
 * copies `ws` of one weight (together larger than the last-level cache, so
 * the weights come from memory as in a decode step).
 */
function gemvBandwidth(
  k: WasmKernels,
  ws: CpuLinear[],
  reps: number,
): { gbs: number; perCpu: number } {
  const w = ws[0];
  const x = k.alloc(w.cols * 4, "x");
  k.f32(x, w.cols).fill(0.01);
  const y = k.alloc(w.rows * 4, "y");
  const iters = Math.max(ws.length, Math.round(128e6 / w.bytes)); // >= 128 MB per timed run
  const t = timeIt(() => {
    for (let i = 0; i < iters; i++) k.matmul(ws[i % ws.length], x, y, 1);
  }, reps);
  return { gbs: (w.bytes * iters) / t.wall / 1e9, perCpu: (w.bytes * iters) / t.cpu / 1e9 };
}

/** The GEMV benchmark. */
export const wasmGemvBench: Benchmark = {
  name: "wasmgemv",
  description: "WebAssembly int4/f16/f32 GEMV GB/s on 1 and 2 threads vs read bandwidth",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { quick, log } = ctx;
    const reps = quick ? 3 : 7;
    const probeBytes = (quick ? 64 : 256) << 20;
    const shapes = quick ? QUICK : FULL;
    const figures: Record<string, number> = {};
    const notes: string[] = [];
    const tensors = new Map<string, HostTensor>();
    const tensorOf = (s: Shape) => {
      let t = tensors.get(s.name);
      if (!t) {
        t = s.kind === "int4"
          ? quantizedTensor(
            randomQuantizedLinear(s.rows, s.cols, 7, { groupSize: 128 }),
            dequantizeLinear,
          )
          : denseTensor(s.rows, s.cols, s.kind === "f16" ? "F16" : "F32");
        tensors.set(s.name, t);
      }
      return t;
    };
    for (const threads of [1, 2]) {
      const k8 = await createWasmKernels({ threads, activations: "int8" });
      const kf = await createWasmKernels({ threads, activations: "f32" });
      try {
        if (threads === 1) {
          notes.push(`kernels: ${k8.description}${k8.notes.map((n) => `; ${n}`).join("")}`);
        }
        const buf = k8.alloc(probeBytes, "probe");
        k8.f32(buf, probeBytes / 4).fill(1); // real pages, not the shared zero page
        const probe = readBandwidth(k8, buf, probeBytes, reps);
        const read = probe.gbs;
        figures[`read_gbs_${threads}t`] = read;
        figures[`read_gb_per_cpu_s_${threads}t`] = probe.perCpu;
        log(
          `  ${threads} thread(s): read bandwidth ${fmt(read)} GB/s ` +
            `(${fmt(probe.perCpu)} GB per CPU-second)`,
        );
        for (const s of shapes) {
          const t = tensorOf(s);
          const variants: [string, WasmKernels][] = s.kind === "int4"
            ? [["int8", k8], ["f32act", kf]]
            : [["", k8]];
          for (const [tag, k] of variants) {
            // copies totalling >= 64 MB: more than the last-level cache
            const copies = Math.max(1, Math.ceil(64e6 / (s.rows * s.cols / 2)));
            const ws = Array.from(
              { length: s.kind === "int4" ? copies : 1 },
              () => k.linear(t, s.name),
            );
            const w = ws[0];
            const { gbs, perCpu } = gemvBandwidth(k, ws, reps);
            const key = `${s.name}${tag ? `_${tag}` : ""}_${threads}t`;
            figures[`${key}_gbs`] = gbs;
            figures[`${key}_of_read`] = gbs / read;
            figures[`${key}_gb_per_cpu_s`] = perCpu;
            log(
              `    ${key.padEnd(34)} ${fmt(gbs).padStart(6)} GB/s  ${
                fmt(100 * gbs / read)
              }% of read, ${fmt(perCpu)} GB/CPU-s  (${(w.bytes / 1e6).toFixed(1)} MB)`,
            );
          }
        }
      } finally {
        k8.destroy();
        kf.destroy();
      }
    }
    notes.push(
      "GB/s = bytes of the weight as stored (int4: codes + f32 scale and -scale*zero per " +
        "128 values) per wall second (median); read = SIMD sum over a filled buffer by the " +
        "same threads; *_gb_per_cpu_s = the same bytes per CPU-second of all threads (best run): " +
        "the kernel's efficiency, insensitive to waiting for a core on a shared machine",
    );
    return { figures, notes };
  },
};

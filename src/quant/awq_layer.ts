/**
 * AWQ for one decoder layer, on the GPU: the layer's full-precision forward
 * over the cached calibration inputs, activation statistics, the scale search
 * for each scaling group (every candidate fake-quantized and its sub-block run
 * and scored on the device, one readback per layer), folding of the chosen
 * scales, and the clip search. Quantizing the result is the caller's step.
 *
 * Scaling groups (docs/awq.md): input norm -> q,k,v (loss at the attention
 * output); v -> o (only without grouped-query attention); post-attention norm
 * -> gate,up (loss at the MLP output); up -> down (loss at down's output).
 *
 * @example
 * ```ts ignore
 * const r = await awqLayer(gpu, config, layerWeights, x, seqLen, settings, { clip: true });
 * ```
 * @module
 */

import { AwqEdgeError } from "../errors.ts";
import { BufferPool } from "../gpu/buffer_pool.ts";
import { CommandBatch, type Dispatch } from "../gpu/command_batch.ts";
import type { GpuContext } from "../gpu/device.ts";
import { type GpuWeight, uploadWeight } from "../gpu/gpu_weight.ts";
import { WebGpuKernels } from "../gpu/kernels.ts";
import { readBuffer } from "../gpu/readback.ts";
import type { LlamaConfig } from "../model/config.ts";
import type { HostTensor, LayerWeights } from "../model/weights.ts";
import { AwqKernels, groupWidth } from "./awq_kernels.ts";
import type { QuantSettings } from "./types.ts";

/** A numeric failure during quantization, naming layer, tensor and phase. */
export class QuantizationError extends AwqEdgeError {}

/** The AWQ ratio grid size (ratios i / 20, i = 0..19). */
export const AWQ_GRID = 20;
/** Tokens sampled for the clip search. */
export const CLIP_TOKENS = 512;

/** One scaling group's decision. */
export interface ScaleDecision {
  /** e.g. "input_layernorm -> q_proj,k_proj,v_proj". */
  group: string;
  /** Chosen ratio (i / 20); 0 when `scaled` is false. */
  ratio: number;
  /** The scale rule of the chosen candidate: "duo" (x^r / w^(1-r)) or "x" (x^r). */
  rule: "duo" | "x";
  /**
   * False when no scaling (s = 1, llm-awq's ratio-0 candidate) had the least
   * loss, so the group is left as it is rather than scaled for the worse.
   */
  scaled: boolean;
  /** Mean squared output error without scaling (plain quantization). */
  lossBefore: number;
  /** Mean squared output error with the chosen scales. */
  lossAfter: number;
  /** Chosen per-input-channel scales. */
  scales: Float32Array;
}

/** Result of {@link awqLayer}. */
export interface AwqLayerResult {
  /** The layer with scales folded in (linears scaled, norms / previous rows divided). */
  layer: LayerWeights;
  /** Clip caps [out, nGroups] per linear short name (absent: no clipping). */
  clip: Map<string, Float32Array>;
  /** Scale decisions, one per group searched. */
  scaling: ScaleDecision[];
  /** The layer's full-precision output for the calibration tokens [N, dim]: the next layer's input. */
  next: Float32Array;
  /** Seconds per phase. */
  seconds: Record<string, number>;
}

/** Options of {@link awqLayer}. */
export interface AwqLayerOptions {
  /** Run the clip search (default true). */
  clip?: boolean;
  /**
   * AutoAWQ's scale rule s = x^r / w^(1-r) (true, default), llm-awq's s = x^r
   * (false), whose ratio 0 is "no scaling", or "both": the candidates of both
   * rules, the least loss wins (twice the scale-search work).
   */
  duoScaling?: boolean | "both";
  /** Layer index, for messages. */
  index?: number;
  /** Called when a phase starts. */
  onPhase?: (phase: string) => void;
}

type Linear = "q_proj" | "k_proj" | "v_proj" | "o_proj" | "gate_proj" | "up_proj" | "down_proj";

const FIELD: Record<Linear, keyof LayerWeights> = {
  q_proj: "wq",
  k_proj: "wk",
  v_proj: "wv",
  o_proj: "wo",
  gate_proj: "wGate",
  up_proj: "wUp",
  down_proj: "wDown",
};

function copyTensor(t: HostTensor): HostTensor {
  return { data: new Float32Array(t.data), shape: [...t.shape], dtype: t.dtype };
}

/** Deep-copies a layer's tensors. */
export function copyLayer(l: LayerWeights): LayerWeights {
  const out = {} as Record<string, HostTensor>;
  for (const [k, v] of Object.entries(l)) if (v) out[k] = copyTensor(v as HostTensor);
  return out as unknown as LayerWeights;
}

/** Mean over output rows of |w[r, c]| / max|w| of the row's group: AWQ's w_mean. */
export function weightMean(ws: HostTensor[], groupSize: number): Float32Array {
  const cols = ws[0].shape[1];
  const g = groupWidth(cols, groupSize);
  const acc = new Float64Array(cols);
  let rowsTotal = 0;
  for (const w of ws) {
    const rows = w.shape[0];
    rowsTotal += rows;
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c0 = 0; c0 < cols; c0 += g) {
        const c1 = Math.min(c0 + g, cols);
        let mx = 0;
        for (let c = c0; c < c1; c++) mx = Math.max(mx, Math.abs(w.data[base + c]));
        const inv = mx > 0 ? 1 / mx : 0;
        for (let c = c0; c < c1; c++) acc[c] += Math.abs(w.data[base + c]) * inv;
      }
    }
  }
  return Float32Array.from(acc, (v) => v / rowsTotal);
}

/**
 * The candidate scales for ratio r (AutoAWQ's rule): s = x^r / (w^(1-r) + 1e-4),
 * clamped to >= 1e-4, normalised by sqrt(max * min), non-finite -> 1.
 */
export function candidateScales(
  xMean: Float32Array,
  wMean: Float32Array,
  r: number,
  duo = true,
): Float32Array {
  const n = xMean.length;
  const s = new Float32Array(n);
  let mx = -Infinity;
  let mn = Infinity;
  for (let c = 0; c < n; c++) {
    const x = Math.pow(xMean[c], r);
    const v = Math.max(duo ? x / (Math.pow(wMean[c], 1 - r) + 1e-4) : x, 1e-4);
    s[c] = v;
    mx = Math.max(mx, v);
    mn = Math.min(mn, v);
  }
  const norm = Math.sqrt(mx * mn);
  for (let c = 0; c < n; c++) {
    const v = s[c] / norm;
    s[c] = Number.isFinite(v) ? v : 1;
  }
  return s;
}

function scaleColumns(t: HostTensor, s: Float32Array): void {
  const [rows, cols] = t.shape;
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t.data[r * cols + c] *= s[c];
}

function divideRows(t: HostTensor, s: Float32Array): void {
  const cols = t.shape.length === 2 ? t.shape[1] : 1;
  for (let r = 0; r < s.length; r++) {
    for (let c = 0; c < cols; c++) t.data[r * cols + c] /= s[r];
  }
}

/** Runs AWQ's search on one layer; `x` [N, dim] holds N = sequences × seqLen tokens. */
export async function awqLayer(
  gpu: GpuContext,
  config: LlamaConfig,
  source: LayerWeights,
  x: Float32Array,
  seqLen: number,
  settings: QuantSettings,
  options: AwqLayerOptions = {},
): Promise<AwqLayerResult> {
  const c = config;
  const dim = c.hiddenSize;
  const N = x.length / dim;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const hidden = c.intermediateSize;
  const idx = options.index ?? 0;
  const where = (what: string) => `layer ${idx}: ${what}`;
  const maxBytes = gpu.limits.maxStorageBufferBindingSize;
  const widest = Math.max(dim, qDim, hidden);
  if (N * widest * 4 > maxBytes) {
    const fit = Math.floor(maxBytes / (widest * 4));
    throw new QuantizationError(
      `calibration of ${N} tokens does not fit one GPU binding (${widest} channels); ` +
        `at most ${fit} tokens fit: use fewer samples or a shorter seqlen`,
    );
  }
  const seconds: Record<string, number> = {};
  let t0 = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    options.onPhase?.(name);
    return now;
  };
  const lap = (name: string) => {
    const now = performance.now();
    seconds[name] = (seconds[name] ?? 0) + (now - t0) / 1000;
    t0 = now;
  };

  const pool = new BufferPool(gpu);
  const kernels = new WebGpuKernels(gpu);
  const awq = new AwqKernels(gpu);
  try {
    const L = source;
    const up = (t: HostTensor, name: string) => uploadWeight(gpu, pool, t, "f32", where(name));
    const vec = (t: HostTensor | undefined) => (t ? pool.upload(t.data, "vector") : undefined);
    const act = (width: number, label: string) => pool.acquire(N * width * 4, where(label));

    // 1. Full-precision forward over the calibration tokens.
    t0 = phase("inputs");
    const W: Record<Linear, GpuWeight> = {
      q_proj: up(L.wq, "q_proj"),
      k_proj: up(L.wk, "k_proj"),
      v_proj: up(L.wv, "v_proj"),
      o_proj: up(L.wo, "o_proj"),
      gate_proj: up(L.wGate, "gate_proj"),
      up_proj: up(L.wUp, "up_proj"),
      down_proj: up(L.wDown, "down_proj"),
    };
    const bq = vec(L.bq), bk = vec(L.bk), bv = vec(L.bv);
    const attnNorm = pool.upload(L.attnNorm.data, "attn_norm");
    const ffnNorm = pool.upload(L.ffnNorm.data, "ffn_norm");
    const X = pool.upload(x, where("input"));
    const xn1 = act(dim, "xn1"), q = act(qDim, "q"), k = act(kvDim, "k"), v = act(kvDim, "v");
    const att = act(qDim, "attention"), oRef = act(dim, "o_ref"), h = act(dim, "h");
    const xn2 = act(dim, "xn2"), gate = act(hidden, "gate"), upb = act(hidden, "up");
    const mlpRef = act(dim, "mlp_ref"), next = act(dim, "next"), out = act(dim, "out");
    const rowsScratch = pool.acquire(N * 4, "row errors");
    const eps = c.rmsNormEps;
    const attention = async (wq: GpuWeight, wk: GpuWeight, wv: GpuWeight, dst: GPUBuffer) => [
      await kernels.matmul(wq, xn1, q, N, { bias: bq }),
      await kernels.matmul(wk, xn1, k, N, { bias: bk }),
      await kernels.matmul(wv, xn1, v, N, { bias: bv }),
      await awq.ropeCalib(q, k, N, seqLen, c.numHeads, c.numKvHeads, c.headDim, c.ropeTheta),
      await awq.attentionCalib(q, k, v, dst, N, seqLen, c.numHeads, c.numKvHeads, c.headDim),
    ];
    const fp = new CommandBatch(gpu);
    fp.run(await kernels.rmsnorm(X, attnNorm, xn1, N, dim, eps));
    fp.runAll(await attention(W.q_proj, W.k_proj, W.v_proj, att));
    fp.run(await kernels.matmul(W.o_proj, att, oRef, N));
    fp.copy(X, 0, h, 0, N * dim * 4);
    fp.run(await kernels.matmul(W.o_proj, att, h, N, { accumulate: true }));
    fp.run(await kernels.rmsnorm(h, ffnNorm, xn2, N, dim, eps));
    fp.run(await kernels.matmul(W.gate_proj, xn2, gate, N));
    fp.run(await kernels.matmul(W.up_proj, xn2, upb, N));
    fp.run(await kernels.siluMul(gate, upb, N * hidden)); // gate now holds the down input
    fp.run(await kernels.matmul(W.down_proj, gate, mlpRef, N));
    fp.copy(h, 0, next, 0, N * dim * 4);
    fp.run(await kernels.matmul(W.down_proj, gate, next, N, { accumulate: true }));
    const actIn = gate;

    // 2. Activation statistics: mean |x| per input channel of each group.
    const widths = [dim, qDim, dim, hidden];
    const statOffsets = [0, dim, dim + qDim, 2 * dim + qDim];
    const stats = pool.acquire((2 * dim + qDim + hidden) * 4, "stats");
    fp.copy(
      pool.upload(new Float32Array(2 * dim + qDim + hidden), "zeros"),
      0,
      stats,
      0,
      (2 * dim + qDim + hidden) * 4,
    );
    fp.submit();
    lap("inputs");
    t0 = phase("stats");
    const st = new CommandBatch(gpu);
    const statViews = [xn1, att, xn2, actIn];
    const statParts: GPUBuffer[] = [];
    for (let i = 0; i < 4; i++) {
      const part = pool.acquire(widths[i] * 4, "stat part");
      st.copy(stats, statOffsets[i] * 4, part, 0, widths[i] * 4);
      st.run(await awq.absSum(statViews[i], part, N, widths[i]));
      st.copy(part, 0, stats, statOffsets[i] * 4, widths[i] * 4);
      statParts.push(part);
    }
    st.submit();
    const statHost = new Float32Array(await readBuffer(gpu, stats));
    const xMeans = widths.map((w, i) =>
      statHost.slice(statOffsets[i], statOffsets[i] + w).map((v) => v / N)
    );
    xMeans.forEach((m, i) => {
      if (m.some((v) => !Number.isFinite(v))) {
        const name = ["q/k/v input", "o_proj input", "gate/up input", "down_proj input"][i];
        throw new QuantizationError(`${where(name)} has NaN/inf activations (phase: inputs)`);
      }
    });
    lap("stats");

    // 3. Scale search: every candidate of every group in one submit, one readback.
    t0 = phase("scale");
    const gqa = c.numKvHeads !== c.numHeads;
    interface Group {
      name: string;
      linears: Linear[];
      cin: number;
      xMean: Float32Array;
      run: (wq: Record<string, GpuWeight>) => Promise<Dispatch[]>;
      target: GPUBuffer;
    }
    const groups: Group[] = [
      {
        name: "input_layernorm -> q_proj,k_proj,v_proj",
        linears: ["q_proj", "k_proj", "v_proj"],
        cin: dim,
        xMean: xMeans[0],
        target: oRef,
        run: async (w) => [
          ...(await attention(w.q_proj, w.k_proj, w.v_proj, att)),
          await kernels.matmul(W.o_proj, att, out, N),
        ],
      },
      ...(!gqa
        ? [{
          name: "v_proj -> o_proj",
          linears: ["o_proj"] as Linear[],
          cin: qDim,
          xMean: xMeans[1],
          target: oRef,
          run: async (
            w: Record<string, GpuWeight>,
          ) => [await kernels.matmul(w.o_proj, att, out, N)],
        }]
        : []),
      {
        name: "post_attention_layernorm -> gate_proj,up_proj",
        linears: ["gate_proj", "up_proj"],
        cin: dim,
        xMean: xMeans[2],
        target: mlpRef,
        run: async (w) => [
          await kernels.matmul(w.gate_proj, xn2, gate, N),
          await kernels.matmul(w.up_proj, xn2, upb, N),
          await kernels.siluMul(gate, upb, N * hidden),
          await kernels.matmul(W.down_proj, gate, out, N),
        ],
      },
      {
        name: "up_proj -> down_proj",
        linears: ["down_proj"],
        cin: hidden,
        xMean: xMeans[3],
        target: mlpRef,
        run: async (w) => [await kernels.matmul(w.down_proj, actIn, out, N)],
      },
    ];
    // The v->o group reads `att` (the FP attention output), which the q/k/v
    // group's candidates overwrite, and the down group reads `gate`, which the
    // gate/up candidates overwrite: order the groups so each reads its input
    // before it is clobbered, then restore the FP values afterwards is not
    // needed. v->o and down run first.
    const order = [...groups].sort((a, b) => rank(a.name) - rank(b.name));
    const rules: Array<"duo" | "x"> = options.duoScaling === "both"
      ? ["duo", "x"]
      : [options.duoScaling === false ? "x" : "duo"];
    const nGrid = AWQ_GRID * rules.length;
    const nCand = nGrid + 1; // ratios 0..19 per rule, then s = 1 (no scaling)
    const loss = pool.acquire(order.length * nCand * 4, "losses");
    const sc = new CommandBatch(gpu);
    sc.copy(
      pool.upload(new Float32Array(order.length * nCand), "zeros"),
      0,
      loss,
      0,
      order.length * nCand * 4,
    );
    const candidates: Float32Array[][] = [];
    for (let gi = 0; gi < order.length; gi++) {
      const g = order[gi];
      const wMean = weightMean(g.linears.map((n) => L[FIELD[n]] as HostTensor), settings.groupSize);
      const cands: Float32Array[] = [];
      for (const rule of rules) {
        for (let i = 0; i < AWQ_GRID; i++) {
          cands.push(candidateScales(g.xMean, wMean, i / AWQ_GRID, rule === "duo"));
        }
      }
      cands.push(new Float32Array(g.cin).fill(1));
      candidates.push(cands);
      const all = new Float32Array(nCand * g.cin);
      cands.forEach((s, i) => all.set(s, i * g.cin));
      const sBuf = pool.upload(all, "candidate scales");
      const fq: Record<string, GpuWeight> = {};
      for (const n of g.linears) {
        fq[n] = { ...W[n], buffer: pool.acquire(W[n].rows * W[n].cols * 4, `${n} fake-quantized`) };
      }
      for (let ci = 0; ci < nCand; ci++) {
        for (const n of g.linears) {
          sc.run(
            await awq.fakeQuant(
              W[n].buffer,
              sBuf,
              null,
              fq[n].buffer,
              W[n].rows,
              W[n].cols,
              settings,
              ci * g.cin,
            ),
          );
        }
        sc.runAll(await g.run(fq));
        sc.runAll(
          await awq.squaredError(out, g.target, rowsScratch, loss, gi * nCand + ci, N, dim),
        );
      }
    }
    sc.submit();
    const losses = new Float32Array(await readBuffer(gpu, loss));
    const scaling: ScaleDecision[] = [];
    const layer = copyLayer(L);
    for (let gi = 0; gi < order.length; gi++) {
      const g = order[gi];
      const ls = Array.from(losses.subarray(gi * nCand, (gi + 1) * nCand), (v) => v / (N * dim));
      if (!ls.slice(0, nGrid).some(Number.isFinite)) {
        throw new QuantizationError(
          `${where(g.name)}: every scale candidate gave a non-finite loss (phase: scale search)`,
        );
      }
      const best = pickCandidate(ls);
      scaling.push({
        group: g.name,
        ratio: best < nGrid ? (best % AWQ_GRID) / AWQ_GRID : 0,
        rule: rules[best < nGrid ? Math.floor(best / AWQ_GRID) : 0],
        scaled: best < nGrid,
        lossBefore: ls[nGrid],
        lossAfter: ls[best],
        scales: candidates[gi][best],
      });
    }
    scaling.sort((a, b) => rank(a.group, true) - rank(b.group, true));
    // 4. Fold the scales into the layer.
    const inputScale = new Map<Linear, Float32Array>();
    for (const d of scaling) {
      const g = groups.find((x) => x.name === d.group)!;
      for (const n of g.linears) {
        scaleColumns(layer[FIELD[n]] as HostTensor, d.scales);
        inputScale.set(n, d.scales);
      }
      if (d.group.startsWith("input_layernorm")) divideRows(layer.attnNorm, d.scales);
      else if (d.group.startsWith("post_attention")) divideRows(layer.ffnNorm, d.scales);
      else if (d.group.startsWith("v_proj")) {
        divideRows(layer.wv, d.scales);
        if (layer.bv) divideRows(layer.bv, d.scales);
      } else divideRows(layer.wUp, d.scales);
    }
    lap("scale");

    // 5. Clip search on the scaled weights and scaled inputs (not q, k).
    const clip = new Map<string, Float32Array>();
    if (options.clip !== false) {
      t0 = phase("clip");
      const n = Math.min(CLIP_TOKENS, N);
      const step = Math.max(1, Math.floor(N / n));
      const inputs: Record<string, { buf: GPUBuffer; width: number }> = {
        v_proj: { buf: xn1, width: dim },
        o_proj: { buf: att, width: qDim },
        gate_proj: { buf: xn2, width: dim },
        up_proj: { buf: xn2, width: dim },
        down_proj: { buf: actIn, width: hidden },
      };
      // Recompute the FP inputs clobbered by the candidates, then read samples.
      const re = new CommandBatch(gpu);
      re.runAll(await attention(W.q_proj, W.k_proj, W.v_proj, att));
      re.run(await kernels.matmul(W.gate_proj, xn2, gate, N));
      re.run(await kernels.matmul(W.up_proj, xn2, upb, N));
      re.run(await kernels.siluMul(gate, upb, N * hidden));
      re.submit();
      const hostInputs = new Map<GPUBuffer, Float32Array>();
      for (const { buf } of Object.values(inputs)) {
        if (!hostInputs.has(buf)) hostInputs.set(buf, new Float32Array(await readBuffer(gpu, buf)));
      }
      const cl = new CommandBatch(gpu);
      const results: Array<[string, GPUBuffer, number]> = [];
      for (
        const [name, { buf, width }] of Object.entries(inputs) as [
          Linear,
          { buf: GPUBuffer; width: number },
        ][]
      ) {
        const all = hostInputs.get(buf)!;
        const s = inputScale.get(name);
        const sample = new Float32Array(n * width);
        for (let t = 0; t < n; t++) {
          for (let ch = 0; ch < width; ch++) {
            const val = all[t * step * width + ch];
            sample[t * width + ch] = s ? val / s[ch] : val;
          }
        }
        const w = layer[FIELD[name]] as HostTensor;
        const [rows, cols] = w.shape;
        const nGroups = Math.ceil(cols / groupWidth(cols, settings.groupSize));
        const best = pool.acquire(rows * nGroups * 4, `${name} clip`);
        cl.run(
          await awq.clipSearch(
            pool.upload(w.data, name),
            pool.upload(sample, "clip x"),
            best,
            rows,
            cols,
            n,
            settings,
          ),
        );
        results.push([name, best, rows * nGroups]);
      }
      cl.submit();
      for (const [name, buf, count] of results) {
        clip.set(name, new Float32Array(await readBuffer(gpu, buf, 0, count * 4)));
      }
      lap("clip");
    }
    const nextHost = new Float32Array(await readBuffer(gpu, next));
    if (nextHost.some((v) => !Number.isFinite(v))) {
      throw new QuantizationError(`${where("output")} has NaN/inf activations (phase: inputs)`);
    }
    return { layer, clip, scaling, next: nextHost, seconds };
  } finally {
    awq.destroy();
    kernels.destroy();
    pool.destroy();
  }
}

/**
 * Index of the least finite loss among the grid candidates and, last, "no
 * scaling" (s = 1): AWQ never scales a group for the worse on its calibration
 * loss. -1 when every loss is non-finite. Ties go to the earlier candidate.
 *
 * @example
 * ```ts
 * import { pickCandidate } from "./awq_layer.ts";
 * pickCandidate([3, 1, 2, 5]); // 1
 * pickCandidate([3, 4, 2]); // 2 (the last one: no scaling)
 * ```
 */
export function pickCandidate(losses: readonly number[]): number {
  let best = -1;
  for (let i = 0; i < losses.length; i++) {
    if (Number.isFinite(losses[i]) && (best < 0 || losses[i] < losses[best])) best = i;
  }
  return best;
}

/** Search order: groups whose inputs others overwrite go first. */
function rank(name: string, reportOrder = false): number {
  const names = ["input_layernorm", "v_proj", "post_attention", "up_proj"];
  const searchOrder = ["v_proj", "up_proj", "input_layernorm", "post_attention"];
  const list = reportOrder ? names : searchOrder;
  return list.findIndex((n) => name.startsWith(n));
}

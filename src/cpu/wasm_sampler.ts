/**
 * The sampler of the WebAssembly CPU kernels: {@link wasmSample} picks the
 * next id as `sampleLogits` (src/engine/host_sampler.ts, the reference) does,
 * with the passes over the logits in SIMD (`sample_*` in kernels_wat.ts) and
 * no sort:
 *
 * 1. the logits are copied into scratch memory; the penalties (repetition,
 *    presence, frequency) touch only the context's tokens, so they are
 *    applied here, in f64 (`penalisedWindow`);
 * 2. argmax (lowest id on ties): the unpenalised logits in SIMD, the
 *    penalised ones compared here in f64, so greedy picks exactly the
 *    reference's id;
 * 3. sampled: the top-k threshold, then e = exp((l - max) / T) once (only
 *    where top-k keeps), then the top-p threshold: thresholds are logit
 *    values found by bisection with count or mass passes (`l >= t`, so ties
 *    stay together), each pass also returning the logits either side of `t`
 *    for the bisection to snap to, and scanning only the remaining
 *    candidates once they are few; then one pass finds where the running
 *    mass exceeds the draw `samplerDraw(seed, context length)` times the
 *    kept mass.
 *
 * The exponentials are f32 (the reference's f64), the masses summed in f64:
 * a draw picks the reference's id unless it falls within float rounding of a
 * boundary. The thresholds are on the f32 logits, the reference's on f64
 * `(l - max) / T`: both order and tie the logits alike, except logits nearer
 * zero than about 2^-29·|max|, which the reference's subtraction may round
 * together (a tie group here, one there), a rounding difference again.
 * Logits with a NaN, when sampling, take the reference itself (what NaN means
 * there is that code's business).
 *
 * @example
 * ```ts ignore
 * const scratch = kernels.alloc(samplerScratchBytes(logits.length));
 * const id = wasmSample(instance.exports, memory, scratch, logits, context, resolveSampling());
 * ```
 * @module
 */

import { penalisedWindow, sampleLogits, samplerDraw } from "../engine/host_sampler.ts";
import type { ResolvedSampling } from "../engine/sampling_options.ts";
import type { Ptr } from "./cpu_kernels.ts";

/** The `sample_*` functions of the kernels' module (see kernels_wat.ts). */
interface SamplerExports {
  sample_argmax(l: Ptr, n: number, out: Ptr): number;
  sample_exp(l: Ptr, e: Ptr, n: number, max: number, invT: number, t: number): void;
  sample_count(l: Ptr, n: number, t: number, out: Ptr): number;
  sample_mass(l: Ptr, e: Ptr, n: number, t: number, out: Ptr): number;
  sample_compact(l: Ptr, e: Ptr, n: number, lo: number, hi: number, dl: Ptr, de: Ptr): number;
  sample_scan(l: Ptr, e: Ptr, n: number, t: number, u: number): number;
}

/** Values per pass step: the scratch rows are padded (with NaN) to a multiple of it. */
const STEP = 8;
/** Iterations bisecting between values before bisecting the f32 bit patterns. */
const VALUE_STEPS = 24;
/** The bisection copies its candidates aside once they are at most 1/SHRINK of those it scans. */
const SHRINK = 8;
const F32_MAX = 3.4028234663852886e38;

/** The scratch layout for n (padded) logits: logits, exponentials, candidates, results. */
function layout(scratch: Ptr, n: number) {
  const cand = Math.ceil(n / (STEP * SHRINK)) * STEP + STEP;
  const l = scratch, e = l + n * 4, cl = e + n * 4, ce = cl + cand * 4, out = ce + cand * 4;
  return { l, e, cl, ce, out, end: out + 16 };
}

/**
 * Bytes of scratch memory {@link wasmSample} needs for `vocab` logits.
 *
 * @example
 * ```ts
 * import { samplerScratchBytes } from "./wasm_sampler.ts";
 * samplerScratchBytes(32000); // 288080
 * ```
 */
export function samplerScratchBytes(vocab: number): number {
  return layout(0, Math.ceil(vocab / STEP) * STEP).end;
}

/**
 * Picks the next id from `logits` given the `context` (every token so far;
 * its length is the draw's counter), with the kernels' module (`exports`
 * over `memory`) and `scratch` ({@link samplerScratchBytes} bytes of it).
 * Greedy picks are `sampleLogits`'s exactly; draws are too unless within
 * float rounding of a boundary.
 *
 * @example
 * ```ts ignore
 * import { resolveSampling } from "../engine/sampling_options.ts";
 * const scratch = kernels.alloc(samplerScratchBytes(3));
 * wasmSample(exports, memory, scratch, new Float32Array([0.1, 2, 0.5]), [1], resolveSampling()); // 1
 * ```
 */
export function wasmSample(
  exports: WebAssembly.Exports,
  memory: WebAssembly.Memory,
  scratch: Ptr,
  logits: Float32Array,
  context: ArrayLike<number>,
  s: ResolvedSampling,
): number {
  const ex = exports as unknown as SamplerExports;
  const V = logits.length;
  const n = Math.ceil(V / STEP) * STEP;
  const at = layout(scratch, n);
  const l = new Float32Array(memory.buffer, at.l, n);
  const outF = new Float32Array(memory.buffer, at.out, 2);
  const outI = new Int32Array(memory.buffer, at.out, 3);
  l.set(logits);
  l.fill(NaN, V);

  // Argmax: the penalised tokens are out of the SIMD pass (-inf there) and
  // compared in f64, as the reference does.
  const penalised = penalisedWindow(logits, context, s); // in f64, as the reference
  for (const tok of penalised.keys()) l[tok] = -Infinity;
  let best = ex.sample_argmax(at.l, n, at.out);
  let hasNaN = outI[0] > n - V;
  let max = best >= 0 ? l[best] : -Infinity;
  for (const [tok, v] of penalised) {
    if (Number.isNaN(v)) hasNaN = true;
    else if (v > max || (v === max && v > -Infinity && tok < best)) [best, max] = [tok, v];
  }
  if (best < 0 || Number.isNaN(penalised.get(0) ?? logits[0])) best = 0; // the reference's start
  if (!(s.temperature > 0)) return best;
  if (hasNaN) return sampleLogits(logits, context, s);
  if (!Number.isFinite(max)) return best; // the reference keeps no mass then

  for (const [tok, v] of penalised) l[tok] = v; // rounded to f32 like every logit here
  const top = Math.fround(max);
  const all: Pairs = { l: at.l, e: at.e, n };
  const compact = (p: Pairs, lo: number, hi: number): Pairs => {
    const m = ex.sample_compact(p.l, p.e, p.n, lo, hi, at.cl, at.ce);
    return { l: at.cl, e: at.ce, n: Math.ceil(m / STEP) * STEP };
  };
  let tau = -Infinity;
  if (s.topK > 0 && s.topK < V) {
    const count = (p: Pairs, t: number): Probe => {
      const c = ex.sample_count(p.l, p.n, t, at.out);
      return { count: c, mass: 0, above: outF[0], below: outF[1] };
    };
    const lowest = count(all, -Infinity);
    tau = largestKept(
      all,
      lowest.above,
      lowest.count,
      top,
      count,
      (r) => r.count >= s.topK,
      compact,
    );
  }
  // exponentials only where top-k keeps; top-p starts from the smallest value kept
  ex.sample_exp(at.l, at.e, n, top, Math.fround(1 / s.temperature), tau);
  if (s.topP < 1) {
    const mass = (p: Pairs, t: number): Probe => {
      const m = ex.sample_mass(p.l, p.e, p.n, t, at.out);
      return { count: outI[2], mass: m, above: outF[0], below: outF[1] };
    };
    const kept = mass(all, tau);
    const wanted = s.topP * kept.mass;
    tau = largestKept(all, kept.above, kept.count, top, mass, (r) => r.mass >= wanted, compact);
  }
  const total = ex.sample_mass(at.l, at.e, n, tau, at.out);
  const id = ex.sample_scan(at.l, at.e, n, tau, samplerDraw(s.seed, context.length) * total);
  return id >= 0 ? id : best;
}

/** Logits and their exponentials in memory, `n` of each (a multiple of STEP, NaN-padded). */
interface Pairs {
  l: Ptr;
  e: Ptr;
  n: number;
}

/** What a pass says about a threshold t. */
interface Probe {
  /** How many logits are >= t. */
  count: number;
  /** Their exponentials' sum (0 from a count pass). */
  mass: number;
  /** The smallest logit >= t. */
  above: number;
  /** The largest logit < t. */
  below: number;
}

/**
 * The largest logit value t that `keep`s the probe of `pass` at t, given
 * `lo`, a logit that does (with `loCount` logits >= it), and the largest logit
 * `top`. Bisects between `lo` and `hi` (where keeping fails), snapping to
 * logits: a kept probe raises `lo` to the smallest logit at or above it, a
 * failed one lowers `hi` and learns the largest logit below it; done when no
 * logit lies strictly between. Once the candidates in [lo, hi) are few
 * (1/SHRINK of those scanned) they are copied aside and later passes scan only
 * them, adding what lies at or above `hi`.
 */
function largestKept(
  all: Pairs,
  lo: number,
  loCount: number,
  top: number,
  pass: (p: Pairs, t: number) => Probe,
  keep: (r: Probe) => boolean,
  compact: (p: Pairs, lo: number, hi: number) => Pairs,
): number {
  let r = pass(all, top);
  if (keep(r)) return top;
  let pairs = all, hi = top, atHi = r, below = r.below;
  let base = { count: 0, mass: 0 }; // what lies at or above the candidates
  for (let step = 0; below > lo; step++) {
    const a = Math.max(lo, -F32_MAX);
    let mid = step < VALUE_STEPS ? Math.fround(a / 2 + hi / 2) : bitsMidpoint(a, hi);
    // thresholds in (below, hi] all fail; one at `below` at least settles it
    if (!(mid > lo) || mid > below) mid = below;
    const p = pass(pairs, mid);
    r = { count: base.count + p.count, mass: base.mass + p.mass, above: p.above, below: p.below };
    if (keep(r)) [lo, loCount] = [r.above, r.count];
    else [hi, atHi, below] = [mid, r, r.below];
    if ((loCount - atHi.count) * SHRINK <= pairs.n && pairs.n > 8 * STEP) {
      pairs = compact(pairs, lo, hi);
      base = { count: atHi.count, mass: atHi.mass };
    }
  }
  return lo;
}

const f32Bits = new Float32Array(1);
const i32Bits = new Int32Array(f32Bits.buffer);

/** The f32 halfway between a and b in the order of f32 values (so at most 32 halvings). */
function bitsMidpoint(a: number, b: number): number {
  const key = (x: number) => {
    f32Bits[0] = x;
    const bits = i32Bits[0];
    return bits < 0 ? -(bits & 0x7fffffff) : bits; // -0 and +0 both 0
  };
  const k = Math.floor((key(a) + key(b)) / 2);
  i32Bits[0] = k < 0 ? (-k | 0x80000000) : k;
  return f32Bits[0];
}

// int4 matmuls in two passes for CPU-backed adapters (lavapipe), where a load
// whose index is not a compile-time constant is a per-lane gather and x,
// being the same for every row, costs more to gather than the weights cost
// to dequantize when few rows share it.
//
//   gemv_u4_slice (decode, T <= 4): workgroup (i, t * slices + s) handles
//     token t, the 16-chunk (512-column) slice s of x, and R * WG rows. Each
//     invocation gathers its slice of x once into private memory (xp), then
//     walks R rows, reading x at constant indices (every chunk step is a call
//     with a literal chunk number, which the compiler folds), and writes one
//     partial sum per row: part[(t * slices + s) * N + n].
//   gemm_u4_slice (prompts): the same over 8-chunk (256-column) slices for 4
//     tokens per invocation, so each code load and dequantization serves 4
//     tokens; workgroup (i, g * slices + s) handles tokens 4g .. 4g + 3.
//   gemv_u4_slice_sum: y[t, n] = the sum of row n's partials, stored through
//     matmul_int4_output (split outputs, bias, accumulate).
//   gemv_u4_slice_sum_swiglu: W is [gate; up] (N = 2 * N1);
//     y[t, n] = silu(gate partials) * (up partials).
// The host passes the number of slices per token in p._p0.
//
// Measured on lavapipe: decode 4096x4096 about 1.6-1.8x the one-pass uniform-x
// kernel (matmul_int4_ux.wgsl), prefill 2048x2048 x 64 tokens about 2.7x the
// register tile (matmul_int4_reg.wgsl). On lavapipe an `if` is a masked block
// that runs whatever its condition, so what is known per pipeline (WHOLE)
// is an override, and loops that index private arrays are written out.
//
// Needs K % 32 == 0 and pieces of P = min(G / 32, chunks per slice) chunks
// that divide both a slice and a group (the kernel table checks this). Groups may straddle slices: the sum
// over a group is linear, so each piece adds
// scale * (sum(code * x) - zero * sum(x)) over its own columns.

//!include matmul_int4_core
//!include matmul_int4_output

@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> part: array<f32>;

override R: u32 = 64u;  // rows per invocation
override GC: u32 = 4u;  // chunks per group (G / 32)
override P: u32 = 4u;   // chunks per piece: min(GC, SLICE)
// K is a multiple of this entry's slice (SLICE or SLICE_T chunks): no slice
// is short and no piece ends early, so the per-chunk bounds test and the
// early piece end fold away (on lavapipe every `if` is a masked block that
// runs whatever the condition; dropping these is 10-20% of a decode GEMV).
override WHOLE: bool = false;

const SLICE = 16u;      // chunks per slice; the chunk_step calls below match it

fn xv4(i: u32) -> vec4<f32> {
  return x4[i >> 2u];
}

fn xv(i: u32) -> f32 {
  return x4[i >> 2u][i & 3u];
}

/// This invocation's slice of x, pre-scaled as in matmul_int4_ux.wgsl (the
/// in-place dequantization), and the plain sum of each piece of it.
var<private> xp: array<vec4<f32>, 128>;
var<private> xsum: array<f32, 16>;
/// Running sums of the current row: the current piece's code * x, the row's total.
var<private> acc: vec4<f32>;
var<private> total: f32;

const MASK4 = vec4<u32>(0xFu, 0xF0u, 0xF00u, 0xF000u);
const UNSHIFT4 = vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625);

fn in_place4(w: u32) -> vec4<f32> {
  return vec4<f32>(vec4<i32>(vec4<u32>(w) & MASK4));
}

/// Gathers chunk c of the slice starting at chunk c0 of token t (c a literal).
/// The bounds test stays even when WHOLE: without it lavapipe moved the x
/// loads into the row loop (a decode GEMV ran 4x slower).
fn load_x(c: u32, c0: u32, kc: u32, t: u32) {
  if (c0 + c < kc) {
    var s = vec4<f32>(0.0);
    for (var j = 0u; j < 8u; j++) {
      let v = x4[(t * p.K) / 4u + 8u * (c0 + c) + j];
      s += v;
      xp[8u * c + j] = v * UNSHIFT4;
    }
    xsum[c / P] += s.x + s.y + s.z + s.w;
  }
}

/// Adds chunk c (a literal) of the row whose slice starts at codes[cb] and
/// whose (scale, zero) words start at sz[gb]; closes the piece at its end.
fn chunk_step(c: u32, cb: u32, gb: u32, c0: u32, kc: u32) {
  if (WHOLE || c0 + c < kc) {
    let w = codes[cb + c];
    let b = 8u * c;
    acc += in_place4(w.x) * xp[b] + in_place4(w.x >> 16u) * xp[b + 1u] +
      in_place4(w.y) * xp[b + 2u] + in_place4(w.y >> 16u) * xp[b + 3u] +
      in_place4(w.z) * xp[b + 4u] + in_place4(w.z >> 16u) * xp[b + 5u] +
      in_place4(w.w) * xp[b + 6u] + in_place4(w.w >> 16u) * xp[b + 7u];
    if (c % P == P - 1u || (!WHOLE && c0 + c == kc - 1u)) {
      let s = unpack2x16float(sz[gb + (c0 + c) / GC]);
      total += s.x * (acc.x + acc.y + acc.z + acc.w - s.y * xsum[c / P]);
      acc = vec4<f32>(0.0);
    }
  }
}

/// Slices of x per token: the host passes ceil(K / 32 / SLICE) or, for
/// gemm_u4_slice, ceil(K / 32 / SLICE_T).
fn slices() -> u32 {
  return p._p0;
}

@compute @workgroup_size(WG)
fn gemv_u4_slice(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let kc = p.K / 32u;
  let n_groups = (p.K + p.G - 1u) / p.G;
  let ns = slices();
  let t = wid.y / ns;
  let s = wid.y % ns;
  let c0 = s * SLICE;
  load_x(0u, c0, kc, t);
  load_x(1u, c0, kc, t);
  load_x(2u, c0, kc, t);
  load_x(3u, c0, kc, t);
  load_x(4u, c0, kc, t);
  load_x(5u, c0, kc, t);
  load_x(6u, c0, kc, t);
  load_x(7u, c0, kc, t);
  load_x(8u, c0, kc, t);
  load_x(9u, c0, kc, t);
  load_x(10u, c0, kc, t);
  load_x(11u, c0, kc, t);
  load_x(12u, c0, kc, t);
  load_x(13u, c0, kc, t);
  load_x(14u, c0, kc, t);
  load_x(15u, c0, kc, t);
  for (var r = 0u; r < R; r++) {
    let n = (wid.x * R + r) * WG + lid.x;
    if (n >= p.N) {
      break;
    }
    let cb = n * kc + c0;
    let gb = n * n_groups;
    acc = vec4<f32>(0.0);
    total = 0.0;
    chunk_step(0u, cb, gb, c0, kc);
    chunk_step(1u, cb, gb, c0, kc);
    chunk_step(2u, cb, gb, c0, kc);
    chunk_step(3u, cb, gb, c0, kc);
    chunk_step(4u, cb, gb, c0, kc);
    chunk_step(5u, cb, gb, c0, kc);
    chunk_step(6u, cb, gb, c0, kc);
    chunk_step(7u, cb, gb, c0, kc);
    chunk_step(8u, cb, gb, c0, kc);
    chunk_step(9u, cb, gb, c0, kc);
    chunk_step(10u, cb, gb, c0, kc);
    chunk_step(11u, cb, gb, c0, kc);
    chunk_step(12u, cb, gb, c0, kc);
    chunk_step(13u, cb, gb, c0, kc);
    chunk_step(14u, cb, gb, c0, kc);
    chunk_step(15u, cb, gb, c0, kc);
    part[wid.y * p.N + n] = total;
  }
}

// ---- gemm_u4_slice: the same scheme for prompts, 4 tokens per invocation
// over 8-chunk (256-column) slices, so each code load and dequantization
// serves 4 tokens. Workgroup (i, g * slices + s): tokens 4g .. 4g + 3.

const SLICE_T = 8u;     // chunks per slice; the calls below match it
const TOK = 4u;         // tokens per invocation

/// x of 4 tokens over this slice (token tt, chunk c at 64 tt + 8 c), pre-scaled.
var<private> xq: array<vec4<f32>, 256>;
/// Plain sums of each piece of x, one lane per token.
var<private> xsum4: array<vec4<f32>, 8>;
var<private> acc4: array<vec4<f32>, 4>;
var<private> total4: vec4<f32>;

/// Gathers chunk c of the slice at chunk c0 for token t0 + tt (c, tt literals;
/// the bounds test stays, as in load_x).
fn load_xt(c: u32, tt: u32, c0: u32, kc: u32, t0: u32) {
  if (c0 + c < kc && t0 + tt < p.T) {
    var s = vec4<f32>(0.0);
    for (var j = 0u; j < 8u; j++) {
      let v = x4[((t0 + tt) * p.K) / 4u + 8u * (c0 + c) + j];
      s += v;
      xq[64u * tt + 8u * c + j] = v * UNSHIFT4;
    }
    xsum4[c / P][tt] += s.x + s.y + s.z + s.w;
  }
}

/// Gathers chunk c (a literal) of the slice at chunk c0 for tokens t0 .. t0 + 3.
fn load_xt4(c: u32, c0: u32, kc: u32, t0: u32) {
  load_xt(c, 0u, c0, kc, t0);
  load_xt(c, 1u, c0, kc, t0);
  load_xt(c, 2u, c0, kc, t0);
  load_xt(c, 3u, c0, kc, t0);
}

/// One token's dot product of a dequantized chunk d with the x at xq[b] (b a literal).
fn token_dot(d: array<vec4<f32>, 8>, b: u32) -> vec4<f32> {
  return d[0] * xq[b] + d[1] * xq[b + 1u] + d[2] * xq[b + 2u] + d[3] * xq[b + 3u] +
    d[4] * xq[b + 4u] + d[5] * xq[b + 5u] + d[6] * xq[b + 6u] + d[7] * xq[b + 7u];
}

/// chunk_step for 4 tokens: one code load and dequantization, 4 dot products.
fn chunk_step_t(c: u32, cb: u32, gb: u32, c0: u32, kc: u32) {
  if (WHOLE || c0 + c < kc) {
    let w = codes[cb + c];
    let d = array<vec4<f32>, 8>(
      in_place4(w.x),
      in_place4(w.x >> 16u),
      in_place4(w.y),
      in_place4(w.y >> 16u),
      in_place4(w.z),
      in_place4(w.z >> 16u),
      in_place4(w.w),
      in_place4(w.w >> 16u),
    );
    // Written out per token: a loop here stays a loop on lavapipe (too big to
    // unroll), and indexing xq by its counter made the pipeline take minutes
    // to compile.
    acc4[0] += token_dot(d, 8u * c);
    acc4[1] += token_dot(d, 64u + 8u * c);
    acc4[2] += token_dot(d, 128u + 8u * c);
    acc4[3] += token_dot(d, 192u + 8u * c);
    if (c % P == P - 1u || (!WHOLE && c0 + c == kc - 1u)) {
      let s = unpack2x16float(sz[gb + (c0 + c) / GC]);
      let sums = vec4<f32>(
        acc4[0].x + acc4[0].y + acc4[0].z + acc4[0].w,
        acc4[1].x + acc4[1].y + acc4[1].z + acc4[1].w,
        acc4[2].x + acc4[2].y + acc4[2].z + acc4[2].w,
        acc4[3].x + acc4[3].y + acc4[3].z + acc4[3].w,
      );
      total4 += s.x * (sums - s.y * xsum4[c / P]);
      acc4 = array<vec4<f32>, 4>();
    }
  }
}

@compute @workgroup_size(WG)
fn gemm_u4_slice(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let kc = p.K / 32u;
  let n_groups = (p.K + p.G - 1u) / p.G;
  let ns = slices();
  let t0 = TOK * (wid.y / ns);
  let s = wid.y % ns;
  let c0 = s * SLICE_T;
  load_xt4(0u, c0, kc, t0);
  load_xt4(1u, c0, kc, t0);
  load_xt4(2u, c0, kc, t0);
  load_xt4(3u, c0, kc, t0);
  load_xt4(4u, c0, kc, t0);
  load_xt4(5u, c0, kc, t0);
  load_xt4(6u, c0, kc, t0);
  load_xt4(7u, c0, kc, t0);
  for (var r = 0u; r < R; r++) {
    let n = (wid.x * R + r) * WG + lid.x;
    if (n >= p.N) {
      break;
    }
    let cb = n * kc + c0;
    let gb = n * n_groups;
    acc4 = array<vec4<f32>, 4>();
    total4 = vec4<f32>(0.0);
    chunk_step_t(0u, cb, gb, c0, kc);
    chunk_step_t(1u, cb, gb, c0, kc);
    chunk_step_t(2u, cb, gb, c0, kc);
    chunk_step_t(3u, cb, gb, c0, kc);
    chunk_step_t(4u, cb, gb, c0, kc);
    chunk_step_t(5u, cb, gb, c0, kc);
    chunk_step_t(6u, cb, gb, c0, kc);
    chunk_step_t(7u, cb, gb, c0, kc);
    for (var tt = 0u; tt < TOK; tt++) {
      if (t0 + tt < p.T) {
        part[((t0 + tt) * ns + s) * p.N + n] = total4[tt];
      }
    }
  }
}

/// Row n's partial sums for token t added up.
fn partial_sum(t: u32, n: u32) -> f32 {
  let ns = slices();
  var v = 0.0;
  for (var s = 0u; s < ns; s++) {
    v += part[(t * ns + s) * p.N + n];
  }
  return v;
}

@compute @workgroup_size(WG)
fn gemv_u4_slice_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.T * p.N) {
    return;
  }
  let t = i / p.N;
  let n = i % p.N;
  store(t, n, partial_sum(t, n));
}

@compute @workgroup_size(WG)
fn gemv_u4_slice_sum_swiglu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.T * p.N1) {
    return;
  }
  let t = i / p.N1;
  let n = i % p.N1;
  y[t * p.N1 + n] = silu(partial_sum(t, n)) * partial_sum(t, n + p.N1);
}

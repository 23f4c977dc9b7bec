// int4 GEMV in two passes for CPU-backed adapters (lavapipe), where a load
// whose index is not a compile-time constant is a per-lane gather and x,
// being the same for every row, costs more to gather than the weights cost
// to dequantize when few rows share it.
//
//   gemv_u4_slice: workgroup (i, t * slices + s) handles token t, the 16-chunk
//     (512-column) slice s of x, and R * WG rows. Each invocation gathers its
//     slice of x once into private memory (xp), then walks R rows, reading x
//     at constant indices (every chunk step is a call with a literal chunk
//     number, which the compiler folds), and writes one partial sum per row:
//     part[(t * slices + s) * N + n].
//   gemv_u4_slice_sum: y[t, n] = the sum of row n's partials, stored through
//     matmul_int4_output (split outputs, bias, accumulate).
//   gemv_u4_slice_sum_swiglu: W is [gate; up] (N = 2 * N1);
//     y[t, n] = silu(gate partials) * (up partials).
//
// Measured on lavapipe (4096x4096): about 1.8x the one-pass uniform-x kernel
// (matmul_int4_ux.wgsl). Needs K % 32 == 0 and P = min(G / 32, 16) with P | 16
// and P | G / 32 (G = 32, 64, 128, 256, or a multiple of 512 such as K itself);
// the kernel table checks this. Groups may straddle slices: the sum over a
// group is linear, so each piece adds scale * (sum(code * x) - zero * sum(x))
// over its own columns.

//!include matmul_int4_core
//!include matmul_int4_output

@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> part: array<f32>;

override R: u32 = 64u;  // rows per invocation
override GC: u32 = 4u;  // chunks per group (G / 32)
override P: u32 = 4u;   // chunks per piece: min(GC, SLICE)

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
  if (c0 + c < kc) {
    let w = codes[cb + c];
    let b = 8u * c;
    acc += in_place4(w.x) * xp[b] + in_place4(w.x >> 16u) * xp[b + 1u] +
      in_place4(w.y) * xp[b + 2u] + in_place4(w.y >> 16u) * xp[b + 3u] +
      in_place4(w.z) * xp[b + 4u] + in_place4(w.z >> 16u) * xp[b + 5u] +
      in_place4(w.w) * xp[b + 6u] + in_place4(w.w >> 16u) * xp[b + 7u];
    if (c % P == P - 1u || c0 + c == kc - 1u) {
      let s = unpack2x16float(sz[gb + (c0 + c) / GC]);
      total += s.x * (acc.x + acc.y + acc.z + acc.w - s.y * xsum[c / P]);
      acc = vec4<f32>(0.0);
    }
  }
}

/// Slices of x per token.
fn slices() -> u32 {
  return (p.K / 32u + SLICE - 1u) / SLICE;
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

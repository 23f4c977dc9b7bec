// Shared by the int4 matmul kernels (included with `//!include matmul_int4_core`):
// the Params block, the flags, the weight/output bindings, dequantization and
// the output stores. The including file declares x at binding 1 and defines
//   fn xv4(i: u32) -> vec4<f32>  // x[i .. i + 3] (i a multiple of 4 where the file needs it)
//   fn xv(i: u32) -> f32         // x[i]
//
// y[t, n] = sum_k x[t, k] * (code[n, k] - zero[n, g]) * scale[n, g], g = k / G,
// with f32 accumulation. Weight layout (src/gpu/int4_weight.ts): codes are
// vec4<u32> chunks of 32 columns, row-major [N, ceil(K / 32)], column 8j + i in
// bits 4i of word j; sz[n * nGroups + g] = f16 scale | f16 zero << 16. G is a
// multiple of 32, so a chunk lies in one group. Columns past K are masked.
//
// Several linears packed as one weight (fused q/k/v, gate/up) write rows
// [0, N1) to y, [N1, N2) to y1 and [N2, N) to y2, each row-major over its own
// width; with one output N1 = N2 = N.

struct Params {
  T: u32,  // tokens (rows of x)
  K: u32,  // input features
  N: u32,  // output features, all parts
  G: u32,  // group length (a multiple of 32; K for per-channel)
  N1: u32, // end of the first part
  N2: u32, // end of the second part
  _p0: u32,
  _p1: u32,
}

override WG: u32 = 64u;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

@group(0) @binding(0) var<storage, read> codes: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<storage, read> sz: array<u32>;

const SHIFT_LO = vec4<u32>(0u, 4u, 8u, 12u);
const SHIFT_HI = vec4<u32>(16u, 20u, 24u, 28u);
const NIBBLE = vec4<u32>(15u);

/// Codes of columns 8j .. 8j + 3 of a word.
fn lo4(w: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(w) >> SHIFT_LO) & NIBBLE);
}

/// Codes of columns 8j + 4 .. 8j + 7 of a word.
fn hi4(w: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(w) >> SHIFT_HI) & NIBBLE);
}

/// Chunks of 32 columns per row, the last one maybe partial.
fn chunks() -> u32 {
  return (p.K + 31u) / 32u;
}

/// (scale, zero) of row n for chunk c.
fn scale_zero(n: u32, c: u32) -> vec2<f32> {
  let n_groups = (p.K + p.G - 1u) / p.G;
  return unpack2x16float(sz[n * n_groups + (c * 32u) / p.G]);
}

/// x[i .. i + 3] with the columns k .. k + 3 at or past K read as 0.
fn xv4_masked(i: u32, k: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (k + j < p.K) {
      v[j] = xv(i + j);
    }
  }
  return v;
}

/// sum over a full chunk of (code - z) * x, x[xi .. xi + 31] being its columns.
fn chunk_dot(w: vec4<u32>, z: f32, xi: u32) -> f32 {
  let zv = vec4<f32>(z);
  var a = (lo4(w.x) - zv) * xv4(xi) + (hi4(w.x) - zv) * xv4(xi + 4u);
  a += (lo4(w.y) - zv) * xv4(xi + 8u) + (hi4(w.y) - zv) * xv4(xi + 12u);
  a += (lo4(w.z) - zv) * xv4(xi + 16u) + (hi4(w.z) - zv) * xv4(xi + 20u);
  a += (lo4(w.w) - zv) * xv4(xi + 24u) + (hi4(w.w) - zv) * xv4(xi + 28u);
  return a.x + a.y + a.z + a.w;
}

/// The same for the partial last chunk, starting at column k0.
fn chunk_dot_masked(w: vec4<u32>, z: f32, xi: u32, k0: u32) -> f32 {
  let zv = vec4<f32>(z);
  var a = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let k = k0 + 8u * j;
    a += (lo4(w[j]) - zv) * xv4_masked(xi + 8u * j, k);
    a += (hi4(w[j]) - zv) * xv4_masked(xi + 8u * j + 4u, k + 4u);
  }
  return a.x + a.y + a.z + a.w;
}

/// Row n of W times token t of x, one invocation walking the whole row
/// (scale and zero loaded once per group).
fn row_dot(n: u32, t: u32) -> f32 {
  let kc = chunks();
  let full = p.K / 32u;
  let per_group = p.G / 32u;
  let base = n * kc;
  let xr = t * p.K;
  var total = 0.0;
  var c = 0u;
  loop {
    if (c >= full) {
      break;
    }
    let s = scale_zero(n, c);
    let end = min(c + per_group, full);
    var acc = 0.0;
    for (; c < end; c++) {
      acc += chunk_dot(codes[base + c], s.y, xr + 32u * c);
    }
    total += s.x * acc;
  }
  if (full < kc) {
    let s = scale_zero(n, full);
    total += s.x * chunk_dot_masked(codes[base + full], s.y, xr + 32u * full, 32u * full);
  }
  return total;
}

/// Chunk c of row n times token t of x, scaled (full or partial chunk).
fn chunk_term(n: u32, t: u32, c: u32) -> f32 {
  let s = scale_zero(n, c);
  let w = codes[n * chunks() + c];
  let xi = t * p.K + 32u * c;
  if (32u * c + 32u <= p.K) {
    return s.x * chunk_dot(w, s.y, xi);
  }
  return s.x * chunk_dot_masked(w, s.y, xi, 32u * c);
}

fn silu(g: f32) -> f32 {
  return g / (1.0 + exp(-g));
}

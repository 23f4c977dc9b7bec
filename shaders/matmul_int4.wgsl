// int4 matmuls with the input x in a storage buffer (any T, any K). Weight
// layout, Params and outputs: matmul_int4_core.wgsl.
//   gemv_u4:            one invocation per output row (CPU-backed adapters, large T * K)
//   gemv_u4_swiglu:     the same over [gate; up], writing silu(gate · x) * (up · x)
//   gemv_u4_wg:         one workgroup of WG (a power of two, <= 256) per row, the
//                       chunks strided over the invocations, shared-memory tree
//                       reduction (GPUs without subgroups)
//   gemv_u4_wg_swiglu:  the same, two rows per workgroup, fused SiLU
//   gemm_u4_reg:        4 rows x 4 tokens per invocation, no barriers (prefill on
//                       CPU-backed adapters)
//   gemm_u4:            a (4 TS)^2 tile of tokens x rows per TS x TS workgroup, 32
//                       columns per shared-memory step, weights dequantized once
//                       into shared memory (prefill on GPUs)

//!include matmul_int4_core
//!include matmul_int4_output
//!include tile_4x4

@group(0) @binding(1) var<storage, read> x: array<f32>;

fn xv4(i: u32) -> vec4<f32> {
  return vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}

fn xv(i: u32) -> f32 {
  return x[i];
}

@compute @workgroup_size(WG)
fn gemv_u4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * WG;
  if (n >= p.N) {
    return;
  }
  for (var t = 0u; t < p.T; t++) {
    store(t, n, row_dot(n, t));
  }
}

@compute @workgroup_size(WG)
fn gemv_u4_swiglu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * WG;
  if (n >= p.N1) {
    return;
  }
  for (var t = 0u; t < p.T; t++) {
    y[t * p.N1 + n] = silu(row_dot(n, t)) * row_dot(n + p.N1, t);
  }
}

var<workgroup> red: array<vec2<f32>, 256>;

/// Sum of row n's chunks lid, lid + WG, ... for token t (this invocation's share).
fn strided_dot(n: u32, t: u32, lid: u32) -> f32 {
  var acc = 0.0;
  for (var c = lid; c < chunks(); c += WG) {
    acc += chunk_term(n, t, c);
  }
  return acc;
}

/// Tree reduction of red[0 .. WG) (both lanes); the sum ends in red[0].
fn reduce(lid: u32) {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] += red[lid + s];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn gemv_u4_wg(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n = wid.x + wid.y * nwg.x;
  if (n >= p.N) {
    return;
  }
  for (var t = 0u; t < p.T; t++) {
    red[lid] = vec2<f32>(strided_dot(n, t, lid), 0.0);
    reduce(lid);
    if (lid == 0u) {
      store(t, n, red[0].x);
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn gemv_u4_wg_swiglu(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n = wid.x + wid.y * nwg.x;
  if (n >= p.N1) {
    return;
  }
  for (var t = 0u; t < p.T; t++) {
    red[lid] = vec2<f32>(strided_dot(n, t, lid), strided_dot(n + p.N1, t, lid));
    reduce(lid);
    if (lid == 0u) {
      y[t * p.N1 + n] = silu(red[0].x) * red[0].y;
    }
    workgroupBarrier();
  }
}

/// x[t, k .. k + 3], tokens past T clamped to the last, columns past K read as 0.
fn xtok4(t: u32, k: u32) -> vec4<f32> {
  let i = min(t, p.T - 1u) * p.K + k;
  if (k + 4u <= p.K) {
    return xv4(i);
  }
  return xv4_masked(i, k);
}

@compute @workgroup_size(WG)
fn gemm_u4_reg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blocks_n = (p.N + 3u) / 4u;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= blocks_n * ((p.T + 3u) / 4u)) {
    return;
  }
  let n0 = (idx % blocks_n) * 4u;
  let t0 = (idx / blocks_n) * 4u;
  var rows: array<u32, 4>;
  for (var r = 0u; r < 4u; r++) {
    rows[r] = min(n0 + r, p.N - 1u);
  }
  let kc = chunks();
  var acc: array<vec4<f32>, 4>; // acc[i][r]: token t0 + i, row n0 + r
  for (var c = 0u; c < kc; c++) {
    var w: array<vec4<u32>, 4>;
    var s: array<vec2<f32>, 4>;
    for (var r = 0u; r < 4u; r++) {
      w[r] = codes[rows[r] * kc + c];
      s[r] = scale_zero(rows[r], c);
    }
    for (var j = 0u; j < 4u; j++) {
      let k = 32u * c + 8u * j;
      var dlo: array<vec4<f32>, 4>;
      var dhi: array<vec4<f32>, 4>;
      for (var r = 0u; r < 4u; r++) {
        let zv = vec4<f32>(s[r].y);
        dlo[r] = (lo4(w[r][j]) - zv) * s[r].x;
        dhi[r] = (hi4(w[r][j]) - zv) * s[r].x;
      }
      for (var i = 0u; i < 4u; i++) {
        let a = xtok4(t0 + i, k);
        let b = xtok4(t0 + i, k + 4u);
        acc[i] += vec4<f32>(
          dot(a, dlo[0]) + dot(b, dhi[0]),
          dot(a, dlo[1]) + dot(b, dhi[1]),
          dot(a, dlo[2]) + dot(b, dhi[2]),
          dot(a, dlo[3]) + dot(b, dhi[3]),
        );
      }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    for (var r = 0u; r < 4u; r++) {
      if (t0 + i < p.T && n0 + r < p.N) {
        store(t0 + i, n0 + r, acc[i][r]);
      }
    }
  }
}

override TS: u32 = 16u;  // gemm_u4 workgroup edge (<= 16); the tile edge is 4 TS
const TK: u32 = 32u;     // columns per shared-memory step (one chunk)

var<workgroup> xs: array<f32, 2048>; // [4 TS][TK]
var<workgroup> ws: array<f32, 2048>; // [4 TS][TK]

@compute @workgroup_size(TS, TS)
fn gemm_u4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = 4u * TS;
  let t0 = wid.y * tile;
  let n0 = wid.x * tile;
  let li = lid.y * TS + lid.x;
  let kc = chunks();
  var acc: array<f32, 16>;
  for (var c = 0u; c < kc; c++) {
    // Weights: tile rows x 4 words, each word dequantized into 8 columns.
    for (var e = li; e < tile * 4u; e += TS * TS) {
      let r = e / 4u;
      let j = e % 4u;
      let n = n0 + r;
      var lo = vec4<f32>(0.0);
      var hi = vec4<f32>(0.0);
      if (n < p.N) {
        let w = codes[n * kc + c][j];
        let s = scale_zero(n, c);
        lo = (lo4(w) - vec4<f32>(s.y)) * s.x;
        hi = (hi4(w) - vec4<f32>(s.y)) * s.x;
      }
      let o = r * TK + 8u * j;
      for (var q = 0u; q < 4u; q++) {
        ws[o + q] = lo[q];
        ws[o + 4u + q] = hi[q];
      }
    }
    // Inputs: tile tokens x TK columns (columns past K are 0).
    for (var e = li; e < tile * TK; e += TS * TS) {
      let t = t0 + e / TK;
      let k = 32u * c + e % TK;
      var v = 0.0;
      if (t < p.T && k < p.K) {
        v = x[t * p.K + k];
      }
      xs[e] = v;
    }
    workgroupBarrier();
    tile_accumulate(&acc, lid);
    workgroupBarrier();
  }
  tile_store(&acc, lid, t0, n0, p.T, p.N);
}

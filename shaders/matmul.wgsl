// y[t, n] = sum_k x[t, k] * W[n, k] (+ bias[n]) (+ y[t, n] when ACCUMULATE).
// W is row-major [N, K] (a PyTorch Linear weight), read through weight()/weight4()
// from the prepended weights_*.wgsl. Two entry points share the bindings:
//   gemv: one invocation per output feature, looping over the (few) tokens.
//   gemm: a 64x64 output tile per 16x16 workgroup, 4x4 outputs per invocation.

//!include matmul_output
//!include tile_4x4

@group(0) @binding(1) var<storage, read> x: array<f32>;

@compute @workgroup_size(WG)
fn gemv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * WG;
  if (n >= p.N) {
    return;
  }
  let row = n * p.K;
  let k4 = p.K / 4u;
  for (var t = 0u; t < p.T; t++) {
    let xr = t * p.K;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
      let i = 4u * k;
      acc += weight4(row + i) * vec4<f32>(x[xr + i], x[xr + i + 1u], x[xr + i + 2u], x[xr + i + 3u]);
    }
    var s = acc.x + acc.y + acc.z + acc.w;
    for (var k = 4u * k4; k < p.K; k++) {
      s += weight(row + k) * x[xr + k];
    }
    store(t, n, s);
  }
}

const TILE: u32 = 64u; // output tile edge (tokens and features)
const TK: u32 = 16u;   // depth of one shared-memory step

var<workgroup> xs: array<f32, 1024>; // [TILE][TK]
var<workgroup> ws: array<f32, 1024>; // [TILE][TK]

@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t0 = wid.y * TILE;
  let n0 = wid.x * TILE;
  let li = lid.y * 16u + lid.x;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    for (var j = 0u; j < 4u; j++) {
      let e = li + j * 256u;
      let r = e / TK;
      let k = k0 + e % TK;
      let t = t0 + r;
      let n = n0 + r;
      var xv = 0.0;
      if (t < p.T && k < p.K) {
        xv = x[t * p.K + k];
      }
      var wv = 0.0;
      if (n < p.N && k < p.K) {
        wv = weight(n * p.K + k);
      }
      xs[e] = xv;
      ws[e] = wv;
    }
    workgroupBarrier();
    tile_accumulate(&acc, lid);
    workgroupBarrier();
  }
  tile_store(&acc, lid, t0, n0, p.T, p.N);
}

fn xrow4(t: u32, k: u32) -> vec4<f32> {
  let i = min(t, p.T - 1u) * p.K + k;
  return vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}

@compute @workgroup_size(WG)
fn gemm_reg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blocksN = (p.N + 3u) / 4u;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= blocksN * ((p.T + 3u) / 4u)) {
    return;
  }
  let n0 = (idx % blocksN) * 4u;
  let t0 = (idx / blocksN) * 4u;
  var rows: array<u32, 4>;
  for (var j = 0u; j < 4u; j++) {
    rows[j] = min(n0 + j, p.N - 1u) * p.K;
  }
  var acc: array<vec4<f32>, 4>; // acc[i][j]: token t0 + i, feature n0 + j
  let k4 = p.K / 4u;
  for (var kb = 0u; kb < k4; kb++) {
    let k = 4u * kb;
    let w0 = weight4(rows[0] + k);
    let w1 = weight4(rows[1] + k);
    let w2 = weight4(rows[2] + k);
    let w3 = weight4(rows[3] + k);
    for (var i = 0u; i < 4u; i++) {
      let a = xrow4(t0 + i, k);
      acc[i] += vec4<f32>(dot(a, w0), dot(a, w1), dot(a, w2), dot(a, w3));
    }
  }
  for (var k = 4u * k4; k < p.K; k++) {
    for (var i = 0u; i < 4u; i++) {
      let a = x[min(t0 + i, p.T - 1u) * p.K + k];
      for (var j = 0u; j < 4u; j++) {
        acc[i][j] += a * weight(rows[j] + k);
      }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      if (t0 + i < p.T && n0 + j < p.N) {
        store(t0 + i, n0 + j, acc[i][j]);
      }
    }
  }
}

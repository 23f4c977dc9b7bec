// y[t, n] = sum_k x[t, k] * W[n, k] (+ bias[n]) (+ y[t, n] when ACCUMULATE),
// for K a multiple of 4, with every load a vec4 (x and, through the prelude
// weights_*x4.wgsl, W). On CPU-backed adapters each storage load is a per-lane
// gather, so 4-wide loads cut the load count by 4. Same Params and bindings as
// matmul.wgsl.
//   gemv4: one invocation per output feature, looping over the (few) tokens.
//   gemm4: 4x4 outputs per invocation, no barriers.

//!include matmul_output

@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn gemv4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * WG;
  if (n >= p.N) {
    return;
  }
  let k4 = p.K / 4u;
  let row = n * k4;
  for (var t = 0u; t < p.T; t++) {
    let xr = t * k4;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
      acc += weight4a(row + k) * x[xr + k];
    }
    store(t, n, acc.x + acc.y + acc.z + acc.w);
  }
}

@compute @workgroup_size(WG)
fn gemm4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blocksN = (p.N + 3u) / 4u;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= blocksN * ((p.T + 3u) / 4u)) {
    return;
  }
  let n0 = (idx % blocksN) * 4u;
  let t0 = (idx / blocksN) * 4u;
  let k4 = p.K / 4u;
  let w0 = min(n0, p.N - 1u) * k4;
  let w1 = min(n0 + 1u, p.N - 1u) * k4;
  let w2 = min(n0 + 2u, p.N - 1u) * k4;
  let w3 = min(n0 + 3u, p.N - 1u) * k4;
  let x0 = min(t0, p.T - 1u) * k4;
  let x1 = min(t0 + 1u, p.T - 1u) * k4;
  let x2 = min(t0 + 2u, p.T - 1u) * k4;
  let x3 = min(t0 + 3u, p.T - 1u) * k4;
  var a0 = vec4<f32>(0.0); // token t0: features n0..n0+3
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var k = 0u; k < k4; k++) {
    let b0 = weight4a(w0 + k);
    let b1 = weight4a(w1 + k);
    let b2 = weight4a(w2 + k);
    let b3 = weight4a(w3 + k);
    let c0 = x[x0 + k];
    let c1 = x[x1 + k];
    let c2 = x[x2 + k];
    let c3 = x[x3 + k];
    a0 += vec4<f32>(dot(c0, b0), dot(c0, b1), dot(c0, b2), dot(c0, b3));
    a1 += vec4<f32>(dot(c1, b0), dot(c1, b1), dot(c1, b2), dot(c1, b3));
    a2 += vec4<f32>(dot(c2, b0), dot(c2, b1), dot(c2, b2), dot(c2, b3));
    a3 += vec4<f32>(dot(c3, b0), dot(c3, b1), dot(c3, b2), dot(c3, b3));
  }
  let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      if (t0 + i < p.T && n0 + j < p.N) {
        store(t0 + i, n0 + j, acc[i][j]);
      }
    }
  }
}

// int4 GEMM for prompts on CPU-backed adapters (lavapipe), for K % 4 == 0: the
// input is read as vec4<f32> (one per-lane gather per 4 values instead of 4;
// matmul_int4.wgsl's gemm_u4_reg reads scalars and takes any K). No barriers.
// Layout, Params, outputs: matmul_int4_core.wgsl.
//   gemm_u4_reg4: 4 rows x 4 tokens per invocation; each 8-code word of a row is
//                 dequantized once and used for the 4 tokens.

//!include matmul_int4_core
//!include matmul_int4_output

@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;

fn xv4(i: u32) -> vec4<f32> {
  return x4[i >> 2u];
}

fn xv(i: u32) -> f32 {
  return x4[i >> 2u][i & 3u];
}

@compute @workgroup_size(WG)
fn gemm_u4_reg4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blocks_n = (p.N + 3u) / 4u;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= blocks_n * ((p.T + 3u) / 4u)) {
    return;
  }
  let n0 = (idx % blocks_n) * 4u;
  let t0 = (idx / blocks_n) * 4u;
  let last = p.N - 1u;
  let rows = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(last));
  let k4 = p.K / 4u;
  var xrow = vec4<u32>(0u); // first vec4 of each token's row of x
  for (var i = 0u; i < 4u; i++) {
    xrow[i] = min(t0 + i, p.T - 1u) * k4;
  }
  let kc = chunks();
  var acc = array<vec4<f32>, 4>(); // acc[i][r]: token t0 + i, row n0 + r
  for (var c = 0u; c < kc; c++) {
    var w = array<vec4<u32>, 4>();
    var s = array<vec2<f32>, 4>();
    for (var r = 0u; r < 4u; r++) {
      w[r] = codes[rows[r] * kc + c];
      s[r] = scale_zero(rows[r], c);
    }
    for (var j = 0u; j < 4u; j++) {
      let k = 32u * c + 8u * j; // columns k .. k + 7 (all past K, or none: K % 4 == 0)
      if (k >= p.K) {
        break;
      }
      var dlo = array<vec4<f32>, 4>();
      var dhi = array<vec4<f32>, 4>();
      for (var r = 0u; r < 4u; r++) {
        let zv = vec4<f32>(s[r].y);
        dlo[r] = (lo4(w[r][j]) - zv) * s[r].x;
        dhi[r] = (hi4(w[r][j]) - zv) * s[r].x;
      }
      let has_hi = k + 4u < p.K;
      for (var i = 0u; i < 4u; i++) {
        let a = x4[xrow[i] + k / 4u];
        var b = vec4<f32>(0.0);
        if (has_hi) {
          b = x4[xrow[i] + k / 4u + 1u];
        }
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

// gemv4_ux (matmul_ux.wgsl) for f16 weights read 8 at a time: one 16-byte
// load per row and step instead of two 8-byte ones (each storage load is a
// per-lane gather on CPU-backed adapters). Needs K % 8 == 0; W through
// weights_f16x8.wgsl; same Params and bindings as matmul.wgsl.
//   gemv8_ux: rows 4i .. 4i + 3 of y[t, :].

//!include matmul_output

@group(0) @binding(1) var<uniform> xu: array<vec4<f32>, 4096>;

@compute @workgroup_size(WG)
fn gemv8_ux(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n0 = 4u * (gid.x + gid.y * nwg.x * WG);
  if (n0 >= p.N) {
    return;
  }
  let k8 = p.K / 8u;
  let last = p.N - 1u;
  let r0 = min(n0, last) * k8;
  let r1 = min(n0 + 1u, last) * k8;
  let r2 = min(n0 + 2u, last) * k8;
  let r3 = min(n0 + 3u, last) * k8;
  for (var t = 0u; t < p.T; t++) {
    let xr = t * (p.K / 4u);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var k = 0u; k < k8; k++) {
      let xa = xu[xr + 2u * k];
      let xb = xu[xr + 2u * k + 1u];
      let w0 = weights[r0 + k];
      let w1 = weights[r1 + k];
      let w2 = weights[r2 + k];
      let w3 = weights[r3 + k];
      a0 += weight8lo(w0) * xa + weight8hi(w0) * xb;
      a1 += weight8lo(w1) * xa + weight8hi(w1) * xb;
      a2 += weight8lo(w2) * xa + weight8hi(w2) * xb;
      a3 += weight8lo(w3) * xa + weight8hi(w3) * xb;
    }
    let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
    for (var r = 0u; r < 4u; r++) {
      if (n0 + r < p.N) {
        store(t, n0 + r, acc[r].x + acc[r].y + acc[r].z + acc[r].w);
      }
    }
  }
}

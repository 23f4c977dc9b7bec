// y[t, n] = sum_k x[t, k] * W[n, k] (+ bias[n]) (+ y[t, n] when ACCUMULATE) for
// float weights on CPU-backed adapters (lavapipe), decode-sized inputs: x is
// read through a 64 KiB uniform binding (one broadcast load, where a storage
// load is a per-lane gather) and each invocation computes 4 rows, so each x
// load serves 4 rows. Needs K % 4 == 0 and T * K <= 16384 floats; W through
// weights_*x4.wgsl. Same Params and other bindings as matmul.wgsl.
//   gemv4_ux: rows 4i .. 4i + 3 of y[t, :] (weight4a from weights_f32x4 / f16x4).
// matmul_ux8.wgsl is the same for f16 weights 8 at a time (K % 8 == 0).

//!include matmul_output

@group(0) @binding(1) var<uniform> xu: array<vec4<f32>, 4096>;

@compute @workgroup_size(WG)
fn gemv4_ux(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n0 = 4u * (gid.x + gid.y * nwg.x * WG);
  if (n0 >= p.N) {
    return;
  }
  let k4 = p.K / 4u;
  let last = p.N - 1u;
  let r0 = min(n0, last) * k4;
  let r1 = min(n0 + 1u, last) * k4;
  let r2 = min(n0 + 2u, last) * k4;
  let r3 = min(n0 + 3u, last) * k4;
  for (var t = 0u; t < p.T; t++) {
    let xr = t * k4;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
      let xv = xu[xr + k];
      a0 += weight4a(r0 + k) * xv;
      a1 += weight4a(r1 + k) * xv;
      a2 += weight4a(r2 + k) * xv;
      a3 += weight4a(r3 + k) * xv;
    }
    let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
    for (var r = 0u; r < 4u; r++) {
      if (n0 + r < p.N) {
        store(t, n0 + r, acc[r].x + acc[r].y + acc[r].z + acc[r].w);
      }
    }
  }
}

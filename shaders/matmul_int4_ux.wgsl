// int4 GEMV with the input in a uniform buffer, for CPU-backed adapters
// (lavapipe): there every storage load is a per-lane gather, while a uniform
// read of an index that is the same in every lane is one broadcast load, and
// all invocations read the same x[k]. One invocation per output row, one
// vec4<u32> (32 codes) load per step. Needs T * K <= 16384 floats (the 64 KiB
// uniform binding) and K % 4 == 0 when T > 1; the binding is 64 KiB exactly.
//   gemv_u4_ux:        y[t, n] (split outputs, bias, accumulate as matmul_int4_core says)
//   gemv_u4_ux_swiglu: W is [gate; up] packed (N = 2 * N1); y[t, n] = silu(gate · x) * (up · x)

//!include matmul_int4_core
//!include matmul_int4_output

@group(0) @binding(1) var<uniform> xu: array<vec4<f32>, 4096>;

fn xv4(i: u32) -> vec4<f32> {
  return xu[i >> 2u];
}

fn xv(i: u32) -> f32 {
  return xu[i >> 2u][i & 3u];
}

@compute @workgroup_size(WG)
fn gemv_u4_ux(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * WG;
  if (n >= p.N) {
    return;
  }
  for (var t = 0u; t < p.T; t++) {
    store(t, n, row_dot(n, t));
  }
}

@compute @workgroup_size(WG)
fn gemv_u4_ux_swiglu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * WG;
  if (n >= p.N1) {
    return;
  }
  for (var t = 0u; t < p.T; t++) {
    y[t * p.N1 + n] = silu(row_dot(n, t)) * row_dot(n + p.N1, t);
  }
}

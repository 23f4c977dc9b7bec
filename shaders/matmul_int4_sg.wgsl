// int4 GEMV with subgroup reductions, for adapters with the `subgroups`
// feature (compiled only there). One workgroup of WG invocations per output
// row, chunks strided over the invocations, subgroupAdd within each subgroup,
// then one shared slot per subgroup. Layout, Params, outputs: matmul_int4_core.
//   gemv_u4_sg:        y[t, n]
//   gemv_u4_sg_swiglu: W is [gate; up]; y[t, n] = silu(gate · x) * (up · x)
// No `enable subgroups;`: Deno's WGSL compiler (naga) rejects the directive ("not yet
// supported") and allows the subgroup builtins when the device has the feature; a browser
// (Dawn) would need the directive prepended. Untested on hardware with subgroups (lavapipe
// has none); with subgroupAdd replaced by its argument the file validates and builds both
// pipelines on lavapipe.

//!include matmul_int4_core
//!include matmul_int4_output

@group(0) @binding(1) var<storage, read> x: array<f32>;

fn xv4(i: u32) -> vec4<f32> {
  return vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}

fn xv(i: u32) -> f32 {
  return x[i];
}

var<workgroup> part: array<vec2<f32>, 256>; // one per subgroup (subgroups of >= 1 lane)

fn strided(n: u32, t: u32, lid: u32) -> f32 {
  var acc = 0.0;
  for (var c = lid; c < chunks(); c += WG) {
    acc += chunk_term(n, t, c);
  }
  return acc;
}

/// Sum over the workgroup of v (valid in invocation 0).
fn wg_sum(v: vec2<f32>, lid: u32, lane: u32, size: u32) -> vec2<f32> {
  let s = subgroupAdd(v);
  if (lane == 0u) {
    part[lid / size] = s;
  }
  workgroupBarrier();
  var total = vec2<f32>(0.0);
  if (lid == 0u) {
    for (var i = 0u; i < (WG + size - 1u) / size; i++) {
      total += part[i];
    }
  }
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn gemv_u4_sg(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_invocation_id) lane: u32,
  @builtin(subgroup_size) size: u32,
) {
  let n = wid.x + wid.y * nwg.x;
  if (n >= p.N) {
    return;
  }
  for (var t = 0u; t < p.T; t++) {
    let s = wg_sum(vec2<f32>(strided(n, t, lid), 0.0), lid, lane, size);
    if (lid == 0u) {
      store(t, n, s.x);
    }
  }
}

@compute @workgroup_size(WG)
fn gemv_u4_sg_swiglu(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_invocation_id) lane: u32,
  @builtin(subgroup_size) size: u32,
) {
  let n = wid.x + wid.y * nwg.x;
  if (n >= p.N1) {
    return;
  }
  for (var t = 0u; t < p.T; t++) {
    let s = wg_sum(vec2<f32>(strided(n, t, lid), strided(n + p.N1, t, lid)), lid, lane, size);
    if (lid == 0u) {
      y[t * p.N1 + n] = silu(s.x) * s.y;
    }
  }
}

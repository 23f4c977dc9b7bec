// Memory-read baseline for the benchmarks: one invocation per row of W
// vec4<u32> words (the access pattern of the int4 GEMV: a contiguous row per
// invocation, one 16-byte load per step), out[row] = the wrapping u32 sum of
// the row's words.

struct Params {
  rows: u32,
  W: u32, // vec4<u32> words per row
  _p0: u32,
  _p1: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn read_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.rows) {
    return;
  }
  var acc = vec4<u32>(0u);
  let base = r * p.W;
  for (var i = 0u; i < p.W; i++) {
    acc += src[base + i];
  }
  out[r] = acc.x + acc.y + acc.z + acc.w;
}

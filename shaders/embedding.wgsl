// x[t, d] = E[tokens[t], d]: gathers embedding rows (E through weights_*.wgsl).

struct Params {
  T: u32,
  dim: u32,
  vocab: u32,
  _pad: u32,
}

override WG: u32 = 64u;

@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.T * p.dim) {
    return;
  }
  let t = i / p.dim;
  let d = i % p.dim;
  let tok = min(tokens[t], p.vocab - 1u);
  x[i] = weight(tok * p.dim + d);
}

// x[t, d] = E[tokens[t], d]: gathers embedding rows (E through weights_*.wgsl).
// E may be one row chunk [row0, row0 + vocab) of a table split across
// bindings: this dispatch then writes only the tokens in its chunk; the last
// chunk (LAST) also takes ids past the table, clamped to its last row.

struct Params {
  T: u32,
  dim: u32,
  vocab: u32, // rows of E in this binding
  row0: u32,  // id of its first row
}

override WG: u32 = 64u;
override LAST: bool = true;

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
  let id = tokens[t];
  if (id < p.row0 || (!LAST && id >= p.row0 + p.vocab)) {
    return;
  }
  let tok = min(id - p.row0, p.vocab - 1u);
  x[i] = weight(tok * p.dim + d);
}

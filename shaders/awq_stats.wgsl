// Reductions for AWQ: per-channel mean |x| over tokens (activation statistics),
// and the squared error between two outputs accumulated into a loss slot.
// One invocation per channel or per row; no barriers.

struct Params {
  rows: u32,  // tokens
  cols: u32,  // channels
  slot: u32,  // loss slot (sum_into)
  count: u32, // elements summed by sum_into
}

override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// out[c] += sum over rows of |a[r, c]| (divide by the token count on the host).
@compute @workgroup_size(WG)
fn abs_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= p.cols) {
    return;
  }
  var acc = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    acc += abs(a[r * p.cols + c]);
  }
  out[c] += acc;
}

// out[r] = sum over columns of (a[r, c] - b[r, c])^2.
@compute @workgroup_size(WG)
fn row_sq_err(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.rows) {
    return;
  }
  var acc = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let d = a[r * p.cols + c] - b[r * p.cols + c];
    acc += d * d;
  }
  out[r] = acc;
}

// out[slot] += sum of a[0..count) (one invocation: a short serial sum).
@compute @workgroup_size(1)
fn sum_into() {
  var acc = 0.0;
  for (var i = 0u; i < p.count; i++) {
    acc += a[i];
  }
  out[p.slot] += acc;
}

//!include group_quantizer
// AWQ clip search: for each (row, group) of a scaled weight W [rows, cols],
// try caps absmax * (1 - i / 20) for i in 0..nShrink-1, quantize the clamped
// group, and measure the mean over n sampled tokens of the squared error of
// the group's partial output x[t, group] . (W - Q(W))[row, group]; keep the
// cap with the least error. One invocation per (row, group); no barriers.

struct Params {
  rows: u32,
  cols: u32,
  groupSize: u32,
  bits: u32,
  zeroPoint: u32,
  n: u32,       // sampled tokens in x [n, cols]
  nShrink: u32, // candidates (10: shrink 1.0 down to 0.55)
  _pad: u32,
}

override WG: u32 = 64u;
const MAX_GROUP: u32 = 128u; // groups up to this width keep their errors in registers


@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> best: array<f32>; // [rows, nGroups] cap
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn clip_search(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let nGroups = (p.cols + p.groupSize - 1u) / p.groupSize;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= p.rows * nGroups) {
    return;
  }
  let row = idx / nGroups;
  let g = idx % nGroups;
  let c0 = g * p.groupSize;
  let c1 = min(c0 + p.groupSize, p.cols);
  let base = row * p.cols;
  var wmin = 3.0e38;
  var wmax = -3.0e38;
  for (var c = c0; c < c1; c++) {
    wmin = min(wmin, w[base + c]);
    wmax = max(wmax, w[base + c]);
  }
  let absmax = max(abs(wmin), abs(wmax));
  var delta: array<f32, MAX_GROUP>;
  var bestErr = 3.0e38;
  var bestCap = absmax;
  for (var i = 0u; i < p.nShrink; i++) {
    let cap = absmax * (1.0 - f32(i) / 20.0);
    // min/max of the clamped group (not max(wmin, -cap): a same-sign group
    // entirely beyond the cap would get lo > hi)
    let lo = clamp(wmin, -cap, cap);
    let hi = clamp(wmax, -cap, cap);
    let gq = group_quant(lo, hi, p.bits, p.zeroPoint != 0u);
    var err = 0.0;
    let width = c1 - c0;
    if (width <= MAX_GROUP) {
      // Quantization error of each weight once, then a plain dot per token.
      for (var j = 0u; j < width; j++) {
        let wv = w[base + c0 + j];
        delta[j] = wv - dequant(clamp(wv, lo, hi), gq);
      }
      for (var t = 0u; t < p.n; t++) {
        let xb = t * p.cols + c0;
        var diff = 0.0;
        for (var j = 0u; j < width; j++) {
          diff += x[xb + j] * delta[j];
        }
        err += diff * diff;
      }
    } else {
      for (var t = 0u; t < p.n; t++) {
        var diff = 0.0;
        for (var c = c0; c < c1; c++) {
          let wv = w[base + c];
          diff += x[t * p.cols + c] * (wv - dequant(clamp(wv, lo, hi), gq));
        }
        err += diff * diff;
      }
    }
    if (err < bestErr) {
      bestErr = err;
      bestCap = cap;
    }
  }
  best[idx] = bestCap;
}

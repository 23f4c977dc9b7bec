//!include group_quantizer
// Fake quantization for AWQ's searches: out = Q(W * s) / s per (row, group),
// with the asymmetric (zero point) or symmetric group quantizer of
// docs/awq.md, optional input-channel scales s (one candidate of many, at
// element offset sOffset) and optional per-(row, group) clip caps.
// One invocation per (row, group); no barriers.

struct Params {
  rows: u32,
  cols: u32,
  groupSize: u32, // = cols for per-channel
  bits: u32,
  zeroPoint: u32,
  sOffset: u32,
  useScale: u32,
  useClip: u32,
}

override WG: u32 = 64u;


@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> clip: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn scaled(i: u32, c: u32) -> f32 {
  if (p.useScale != 0u) {
    return w[i] * s[p.sOffset + c];
  }
  return w[i];
}

@compute @workgroup_size(WG)
fn fake_quant(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
  var lo = 3.0e38;
  var hi = -3.0e38;
  for (var c = c0; c < c1; c++) {
    let v = scaled(base + c, c);
    lo = min(lo, v);
    hi = max(hi, v);
  }
  if (p.useClip != 0u) {
    // min/max of the clamped values (lo > hi otherwise when a same-sign
    // group lies entirely beyond the cap)
    let cap = clip[idx];
    lo = clamp(lo, -cap, cap);
    hi = clamp(hi, -cap, cap);
  }
  let gq = group_quant(lo, hi, p.bits, p.zeroPoint != 0u);
  for (var c = c0; c < c1; c++) {
    var v = scaled(base + c, c);
    if (p.useClip != 0u) {
      v = clamp(v, lo, hi);
    }
    var d = dequant(v, gq);
    if (p.useScale != 0u) {
      d = d / s[p.sOffset + c];
    }
    out[base + c] = d;
  }
}

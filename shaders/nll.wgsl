// Negative log-likelihood of the next token for each row of logits:
// out[r] = logsumexp(logits[r, :]) - logits[r, tokens[r + 1]]. One workgroup per row.

struct Params {
  rows: u32,
  vocab: u32,
  _pad0: u32,
  _pad1: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn nll(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let r = wid.x;
  let base = r * p.vocab;
  var m = -3.0e38;
  for (var i = lid; i < p.vocab; i += WG) {
    m = max(m, logits[base + i]);
  }
  red[lid] = m;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      red[lid] = max(red[lid], red[lid + stride]);
    }
    workgroupBarrier();
  }
  m = red[0];
  workgroupBarrier();
  var s = 0.0;
  for (var i = lid; i < p.vocab; i += WG) {
    s += exp(logits[base + i] - m);
  }
  red[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      red[lid] += red[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let next = min(tokens[r + 1u], p.vocab - 1u);
    out[r] = log(red[0]) + m - logits[base + next];
  }
}

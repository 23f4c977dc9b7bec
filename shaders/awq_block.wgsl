// Attention over calibration tokens for AWQ's block evaluation: N tokens made
// of sequences of L tokens each; token t sits at position t % L and attends
// causally within its own sequence. q and k are rotated in place (RoPE,
// rotate_half) by rope_calib; attention_calib reads q, k, v as [N, heads*hd].
// One invocation per (token, head); no barriers.

struct Params {
  N: u32,
  L: u32,
  nHeads: u32,
  nKv: u32,
  headDim: u32,
  theta: f32,
  _pad0: u32,
  _pad1: u32,
}

override WG: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;
const NEG_BIG: f32 = -3.0e38;

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
@group(0) @binding(1) var<storage, read_write> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn rotate(buf: u32, base: u32, i: u32, half: u32, c: f32, s: f32) {
  if (buf == 0u) {
    let a = q[base + i];
    let b = q[base + i + half];
    q[base + i] = a * c - b * s;
    q[base + i + half] = a * s + b * c;
  } else {
    let a = k[base + i];
    let b = k[base + i + half];
    k[base + i] = a * c - b * s;
    k[base + i + half] = a * s + b * c;
  }
}

@compute @workgroup_size(WG)
fn rope_calib(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let half = p.headDim / 2u;
  let heads = p.nHeads + p.nKv;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= p.N * heads * half) {
    return;
  }
  let i = idx % half;
  let h = (idx / half) % heads;
  let t = idx / (half * heads);
  let pos = t % p.L;
  let freq = exp2(-f32(2u * i) / f32(p.headDim) * log2(p.theta));
  let angle = f32(pos) * freq;
  let c = cos(angle);
  let s = sin(angle);
  if (h < p.nHeads) {
    rotate(0u, (t * p.nHeads + h) * p.headDim, i, half, c, s);
  } else {
    rotate(1u, (t * p.nKv + (h - p.nHeads)) * p.headDim, i, half, c, s);
  }
}

@compute @workgroup_size(WG)
fn attention_calib(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= p.N * p.nHeads) {
    return;
  }
  let h = idx % p.nHeads;
  let t = idx / p.nHeads;
  let hd = p.headDim;
  let kvDim = p.nKv * hd;
  let kvh = h / (p.nHeads / p.nKv);
  let qBase = (t * p.nHeads + h) * hd;
  let start = t - t % p.L;
  let scale = inverseSqrt(f32(hd));
  var acc: array<f32, MAX_HEAD_DIM>;
  var m = NEG_BIG;
  var l = 0.0;
  for (var key = start; key <= t; key++) {
    let kb = key * kvDim + kvh * hd;
    var dot = 0.0;
    for (var d = 0u; d < hd; d++) {
      dot += q[qBase + d] * k[kb + d];
    }
    let sc = dot * scale;
    if (sc > m) {
      let corr = exp(m - sc);
      l *= corr;
      for (var d = 0u; d < hd; d++) {
        acc[d] *= corr;
      }
      m = sc;
    }
    let e = exp(sc - m);
    l += e;
    for (var d = 0u; d < hd; d++) {
      acc[d] += e * v[kb + d];
    }
  }
  for (var d = 0u; d < hd; d++) {
    out[qBase + d] = acc[d] / l;
  }
}

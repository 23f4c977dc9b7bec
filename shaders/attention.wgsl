// Causal grouped-query attention, one workgroup per (query head, row), keys
// visited in chunks of WG with an online softmax (running max and sum), so any
// context length works with fixed workgroup memory: the GPU form. Row r is a
// query of slot rows[r].x at position states[slot].pos + rows[r].y and sees keys
// 0..position of that slot's region of the [slots, maxSeq, kvDim] caches, so
// rows of different sequences at different positions share one dispatch; one
// sequence is slot 0 with rows (0, 0..T-1).
// The KV cache element type `kv` (f32, or f16 with shader-f16) comes from the
// prepended kv_f32.wgsl / kv_f16.wgsl; values are f32 everywhere else.

struct Params {
  T: u32,
  nHeads: u32,
  nKv: u32,
  headDim: u32,
  maxSeq: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

struct State {
  pos: u32,
  nTok: u32,
  step: u32,
  done: u32,
}

override WG: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;
const NEG_BIG: f32 = -3.0e38;

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kCache: array<kv>;
@group(0) @binding(2) var<storage, read> vCache: array<kv>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> states: array<State>;
@group(0) @binding(5) var<storage, read> rows: array<vec2<u32>>; // (slot, offset)
@group(0) @binding(6) var<uniform> p: Params;

var<workgroup> qs: array<f32, MAX_HEAD_DIM>;
var<workgroup> probs: array<f32, WG>;
//!include workgroup_reduce

@compute @workgroup_size(WG)
fn attention(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let h = wid.x;
  let t = wid.y;
  let hd = p.headDim;
  let kvDim = p.nKv * hd;
  let kvh = h / (p.nHeads / p.nKv);
  let qBase = (t * p.nHeads + h) * hd;
  for (var d = lid; d < hd; d += WG) {
    qs[d] = q[qBase + d];
  }
  workgroupBarrier();
  let slot = rows[t].x;
  let nKeys = min(states[slot].pos + rows[t].y + 1u, p.maxSeq);
  let slotBase = slot * p.maxSeq * kvDim;
  let scale = inverseSqrt(f32(hd));
  var m = NEG_BIG;
  var l = 0.0;
  var acc: array<f32, 4>; // dims lid, lid + WG, ... (headDim <= 4 * WG)
  for (var c0 = 0u; c0 < nKeys; c0 += WG) {
    let key = c0 + lid;
    var s = NEG_BIG;
    if (key < nKeys) {
      let kb = slotBase + key * kvDim + kvh * hd;
      var dot = 0.0;
      for (var d = 0u; d < hd; d++) {
        dot += qs[d] * f32(kCache[kb + d]);
      }
      s = dot * scale;
    }
    let newM = max(m, reduce_max(lid, s));
    var e = 0.0;
    if (key < nKeys) {
      e = exp(s - newM);
    }
    probs[lid] = e;
    let chunkSum = reduce_sum(lid, e);
    let corr = exp(m - newM);
    l = l * corr + chunkSum;
    let n = min(WG, nKeys - c0);
    for (var j = 0u; j < 4u; j++) {
      let d = lid + j * WG;
      if (d < hd) {
        var a = acc[j] * corr;
        for (var kk = 0u; kk < n; kk++) {
          a += probs[kk] * f32(vCache[slotBase + (c0 + kk) * kvDim + kvh * hd + d]);
        }
        acc[j] = a;
      }
    }
    m = newM;
    workgroupBarrier();
  }
  for (var j = 0u; j < 4u; j++) {
    let d = lid + j * WG;
    if (d < hd) {
      out[qBase + d] = acc[j] / l;
    }
  }
}

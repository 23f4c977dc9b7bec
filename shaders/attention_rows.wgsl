// Causal grouped-query attention, one invocation per (query head, row) and no
// workgroup barriers: the CPU-adapter form. Row r is a query of slot rows[r].x
// at position states[slot].pos + rows[r].y and sees keys 0..position of that
// slot's region of the [slots, maxSeq, kvDim] caches, so rows of different
// sequences at different positions share one dispatch; one sequence is slot 0
// with rows (0, 0..T-1). Same Params as attention.wgsl (T = rows).
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
// Head size / 4, fixed per pipeline: with a constant trip count lavapipe
// unrolls the head loops and keeps qr and acc in registers (1.5-2.3x faster
// than loops bounded by p.headDim, whose arrays it indexed lane by lane).
override HD4: u32 = 16u;
const MAX_HEAD_DIM4: u32 = 64u; // headDim <= 256
const NEG_BIG: f32 = -3.0e38;

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> kCache: array<kv4>;
@group(0) @binding(2) var<storage, read> vCache: array<kv4>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> states: array<State>;
@group(0) @binding(5) var<storage, read> rows: array<vec2<u32>>; // (slot, offset)
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn attention_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= p.T * p.nHeads) {
    return;
  }
  let h = idx % p.nHeads;
  let t = idx / p.nHeads;
  let hd4 = HD4;
  let kvDim4 = p.nKv * hd4;
  let kvh = h / (p.nHeads / p.nKv);
  let qBase = (t * p.nHeads + h) * hd4;
  let slot = rows[t].x;
  let nKeys = min(states[slot].pos + rows[t].y + 1u, p.maxSeq);
  let slotBase = slot * p.maxSeq * kvDim4;
  let scale = inverseSqrt(f32(p.headDim));
  var qr: array<vec4<f32>, MAX_HEAD_DIM4>;
  var acc: array<vec4<f32>, MAX_HEAD_DIM4>;
  for (var d = 0u; d < hd4; d++) {
    qr[d] = q[qBase + d] * scale;
  }
  var m = NEG_BIG;
  var l = 0.0;
  for (var key = 0u; key < nKeys; key++) {
    let kb = slotBase + key * kvDim4 + kvh * hd4;
    var s = 0.0;
    for (var d = 0u; d < hd4; d++) {
      s += dot(qr[d], vec4<f32>(kCache[kb + d]));
    }
    if (s > m) {
      let corr = exp(m - s);
      l *= corr;
      for (var d = 0u; d < hd4; d++) {
        acc[d] *= corr;
      }
      m = s;
    }
    let e = exp(s - m);
    l += e;
    for (var d = 0u; d < hd4; d++) {
      acc[d] += e * vec4<f32>(vCache[kb + d]);
    }
  }
  let inv = 1.0 / l;
  for (var d = 0u; d < hd4; d++) {
    out[qBase + d] = acc[d] * inv;
  }
}

// RoPE (Hugging Face rotate_half: dimension i of a head pairs with i + headDim/2)
// and the KV store. Row r holds one token of slot rows[r].x at position
// states[slot].pos + rows[r].y: a decode step of a batch has one row per active
// slot (offset 0), a prompt chunk T rows of one slot (offsets 0..T-1), and one
// sequence is slot 0 with rows (0, 0..T-1). q is rotated in place; k is rotated
// into the slot's region of the [slots, maxSeq, kvDim] key cache and v copied
// into the value cache. One invocation per (row, head, pair), heads
// 0..nHeads-1 being q heads and nHeads..nHeads+nKv-1 the k/v heads.
// The KV cache element type `kv` (f32, or f16 with shader-f16) comes from the
// prepended kv_f32.wgsl / kv_f16.wgsl; values are f32 everywhere else.

struct Params {
  T: u32,
  nHeads: u32,
  nKv: u32,
  headDim: u32,
  theta: f32,
  maxSeq: u32,
  _pad0: u32,
  _pad1: u32,
}

struct State {
  pos: u32,
  nTok: u32,
  step: u32,
  done: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> kCache: array<kv>;
@group(0) @binding(4) var<storage, read_write> vCache: array<kv>;
@group(0) @binding(5) var<storage, read> states: array<State>;
@group(0) @binding(6) var<storage, read> rows: array<vec2<u32>>; // (slot, offset)
@group(0) @binding(7) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn rope_store(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let half = p.headDim / 2u;
  let heads = p.nHeads + p.nKv;
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= p.T * heads * half) {
    return;
  }
  let i = idx % half;
  let h = (idx / half) % heads;
  let t = idx / (half * heads);
  let slot = rows[t].x;
  let pos = states[slot].pos + rows[t].y;
  if (pos >= p.maxSeq) {
    return;
  }
  let freq = exp2(-f32(2u * i) / f32(p.headDim) * log2(p.theta));
  let angle = f32(pos) * freq;
  let c = cos(angle);
  let s = sin(angle);
  if (h < p.nHeads) {
    let base = (t * p.nHeads + h) * p.headDim;
    let a = q[base + i];
    let b = q[base + i + half];
    q[base + i] = a * c - b * s;
    q[base + i + half] = a * s + b * c;
  } else {
    let kvDim = p.nKv * p.headDim;
    let hk = h - p.nHeads;
    let src = t * kvDim + hk * p.headDim;
    let dst = (slot * p.maxSeq + pos) * kvDim + hk * p.headDim;
    let a = k[src + i];
    let b = k[src + i + half];
    kCache[dst + i] = kv(a * c - b * s);
    kCache[dst + i + half] = kv(a * s + b * c);
    vCache[dst + i] = kv(v[src + i]);
    vCache[dst + i + half] = kv(v[src + i + half]);
  }
}

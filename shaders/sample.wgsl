// The GPU sampler, so the decode loop never waits for the host: one workgroup
// per row, row r sampling from logits row r for slot rows[r].x with that slot's
// settings params[slot], context ctx[slot, 0..end) and state states[slot]; one
// sequence is slot 0 with one row (0, 0). Steps, in Hugging Face's order:
// repetition penalty over the slot's context (then OpenAI's presence and
// frequency penalties over the same window), temperature, top-k, top-p, then a
// draw from the kept mass with a counter-based RNG keyed by (seed, position).
// temperature <= 0 means greedy (argmax, lowest id on ties). The chosen id goes
// to ctx[slot, end], to tokens[r] (row r's next input) and to
// out[slot * outStride + state.step]; EOS or a full context sets that slot's
// done, after which its steps write 0xffffffff and leave its state alone.

struct Params {
  vocab: u32,
  topK: u32,        // 0: off
  seed: u32,
  repWindow: u32,   // 0: the whole context
  temperature: f32, // <= 0: greedy
  topP: f32,        // >= 1: off
  repPenalty: f32,  // 1: off
  maxSeq: u32,
  presence: f32,    // 0: off
  frequency: f32,   // 0: off
  _pad0: u32,
  _pad1: u32,
  eos: vec4<u32>,   // unused slots hold 0xffffffff
}

struct State {
  pos: u32,
  nTok: u32,
  step: u32,
  done: u32,
}

struct Batch {
  outStride: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;
const MARK: u32 = 0xff800000u; // -inf: a penalised entry not yet taken in the second walk

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> work: array<f32>;
@group(0) @binding(2) var<storage, read_write> ctx: array<u32>;
@group(0) @binding(3) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(4) var<storage, read_write> states: array<State>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;
@group(0) @binding(6) var<storage, read> params: array<Params>;
@group(0) @binding(7) var<storage, read> rows: array<vec2<u32>>; // (slot, offset)
@group(0) @binding(8) var<uniform> b: Batch;

var<workgroup> red: array<f32, WG>;
var<workgroup> redIdx: array<u32, WG>;
var<workgroup> prefix: array<f32, WG>;
var<workgroup> chosen: atomic<u32>;

fn sum_all(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      red[lid] += red[lid + stride];
    }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

// Scaled logit z_i = (work[i] - max) / T; thresholds are on z (log space), so
// top-k and top-p stay exact however small the kept probabilities get.
fn zval(wb: u32, i: u32, mx: f32, invT: f32) -> f32 {
  return (work[wb + i] - mx) * invT;
}

// Kept mass: sum of exp(z_i) over i with z_i >= tau.
fn mass(lid: u32, wb: u32, V: u32, tau: f32, mx: f32, invT: f32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < V; i += WG) {
    let z = zval(wb, i, mx, invT);
    if (z >= tau) {
      s += exp(z);
    }
  }
  return sum_all(lid, s);
}

fn count(lid: u32, wb: u32, V: u32, tau: f32, mx: f32, invT: f32) -> f32 {
  var c = 0.0;
  for (var i = lid; i < V; i += WG) {
    if (zval(wb, i, mx, invT) >= tau) {
      c += 1.0;
    }
  }
  return sum_all(lid, c);
}

fn min_all(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      red[lid] = min(red[lid], red[lid + stride]);
    }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn sample(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let row = wid.x;
  let slot = rows[row].x;
  let p = params[slot];
  let V = p.vocab;
  let wb = row * V; // this row's logits and work
  let cb = slot * p.maxSeq; // this slot's context
  let end = states[slot].pos + states[slot].nTok; // context is ctx[cb + 0..end)
  for (var i = lid; i < V; i += WG) {
    work[wb + i] = logits[wb + i];
  }
  storageBarrier();
  workgroupBarrier();
  var start = 0u; // the penalty window is ctx[cb + start..end)
  if (p.repWindow > 0u && end > p.repWindow) {
    start = end - p.repWindow;
  }
  if (p.repPenalty != 1.0) {
    for (var j = start + lid; j < end; j += WG) {
      let tok = ctx[cb + j];
      if (tok < V) {
        let l = logits[wb + tok];
        work[wb + tok] = select(l * p.repPenalty, l / p.repPenalty, l > 0.0);
      }
    }
  }
  storageBarrier();
  workgroupBarrier();
  // Presence and frequency penalties: presence once per distinct token of the
  // window, frequency once per occurrence. One invocation walks the window
  // twice: first it marks each token's entry (-inf bits), so the second walk
  // knows a token's first occurrence (penalised logit - presence, then
  // - frequency) from the later ones (- frequency).
  if (lid == 0u && (p.presence != 0.0 || p.frequency != 0.0)) {
    for (var j = start; j < end; j++) {
      let tok = ctx[cb + j];
      if (tok < V) {
        work[wb + tok] = bitcast<f32>(MARK);
      }
    }
    for (var j = start; j < end; j++) {
      let tok = ctx[cb + j];
      if (tok < V) {
        if (bitcast<u32>(work[wb + tok]) == MARK) {
          let l = logits[wb + tok];
          work[wb + tok] = select(l * p.repPenalty, l / p.repPenalty, l > 0.0) - p.presence;
        }
        work[wb + tok] = work[wb + tok] - p.frequency;
      }
    }
  }
  storageBarrier();
  workgroupBarrier();

  // Argmax (lowest id on ties): the greedy choice and the fallback.
  var best = -3.0e38;
  var bestIdx = NONE;
  for (var i = lid; i < V; i += WG) {
    let v = work[wb + i];
    if (v > best) {
      best = v;
      bestIdx = i;
    }
  }
  red[lid] = best;
  redIdx[lid] = bestIdx;
  if (lid == 0u) {
    atomicStore(&chosen, NONE);
  }
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let ov = red[lid + stride];
      let oi = redIdx[lid + stride];
      if (ov > red[lid] || (ov == red[lid] && oi < redIdx[lid])) {
        red[lid] = ov;
        redIdx[lid] = oi;
      }
    }
    workgroupBarrier();
  }
  let mx = red[0];
  let argmax = redIdx[0];
  workgroupBarrier();

  if (p.temperature > 0.0) {
    let invT = 1.0 / p.temperature;
    var lowest = 0.0;
    for (var i = lid; i < V; i += WG) {
      lowest = min(lowest, zval(wb, i, mx, invT));
    }
    let zmin = min_all(lid, lowest);
    var tau = zmin;
    if (p.topK > 0u && p.topK < V) {
      var lo = zmin;
      var hi = 0.0;
      for (var it = 0u; it < 32u; it++) {
        let mid = 0.5 * (lo + hi);
        if (count(lid, wb, V, mid, mx, invT) >= f32(p.topK)) {
          lo = mid;
        } else {
          hi = mid;
        }
      }
      tau = lo;
    }
    if (p.topP < 1.0) {
      let wanted = p.topP * mass(lid, wb, V, tau, mx, invT);
      var lo = tau;
      var hi = 0.0;
      for (var it = 0u; it < 32u; it++) {
        let mid = 0.5 * (lo + hi);
        if (mass(lid, wb, V, mid, mx, invT) >= wanted) {
          lo = mid;
        } else {
          hi = mid;
        }
      }
      tau = lo;
    }
    // Each invocation owns a contiguous chunk; prefix sums locate the draw.
    let chunk = (V + WG - 1u) / WG;
    let c0 = min(lid * chunk, V);
    let c1 = min(c0 + chunk, V);
    var part = 0.0;
    for (var i = c0; i < c1; i++) {
      let z = zval(wb, i, mx, invT);
      if (z >= tau) {
        part += exp(z);
      }
    }
    prefix[lid] = part;
    workgroupBarrier();
    if (lid == 0u) {
      var run = 0.0;
      for (var j = 0u; j < WG; j++) {
        let v = prefix[j];
        prefix[j] = run;
        run += v;
      }
      red[0] = run;
    }
    workgroupBarrier();
    let total = red[0];
    let r = pcg(pcg(p.seed) ^ pcg(end * 2654435761u + 12345u));
    let u = f32(r >> 8u) / 16777216.0 * total;
    if (part > 0.0 && u >= prefix[lid] && u < prefix[lid] + part) {
      var run = prefix[lid];
      for (var i = c0; i < c1; i++) {
        let z = zval(wb, i, mx, invT);
        if (z >= tau) {
          run += exp(z);
          if (u < run) {
            atomicMin(&chosen, i);
            break;
          }
        }
      }
    }
    workgroupBarrier();
  }

  if (lid == 0u) {
    var id = atomicLoad(&chosen);
    if (id == NONE) {
      id = argmax;
    }
    let o = slot * b.outStride + states[slot].step;
    if (states[slot].done != 0u) {
      out[o] = NONE;
    } else {
      out[o] = id;
      if (end < p.maxSeq) {
        ctx[cb + end] = id;
        tokens[row] = id;
        states[slot].pos = end;
        states[slot].nTok = 1u;
      }
      let isEos = id == p.eos.x || id == p.eos.y || id == p.eos.z || id == p.eos.w;
      if (isEos || end + 1u > p.maxSeq) {
        states[slot].done = 1u;
      }
    }
    states[slot].step += 1u;
  }
}

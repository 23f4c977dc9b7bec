// The group quantizer of docs/awq.md, shared by the AWQ kernels (included
// with `//!include group_quantizer`). Given the min and max of a group
// (after any clipping), it yields the f16-rounded scale (as checkpoints store
// it), the zero point and the code range; dequant() maps a value through
// quantization and back.

struct GroupQuant {
  scale: f32,
  zero: f32,
  qmin: f32,
  qmax: f32,
}

// Scales are stored as float16 in checkpoints: search with the same values.
fn f16_round(v: f32) -> f32 {
  return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

// Asymmetric (zero point): scale = max(hi - lo, 1e-5) / (2^b - 1), codes 0..2^b-1.
// Symmetric: scale = max(|lo|, |hi|, 1e-5) / (2^(b-1) - 1), codes -2^(b-1)..2^(b-1)-1.
fn group_quant(lo: f32, hi: f32, bits: u32, zeroPoint: bool) -> GroupQuant {
  if (zeroPoint) {
    let maxq = f32((1u << bits) - 1u);
    let scale = f16_round(max(hi - lo, 1e-5) / maxq);
    return GroupQuant(scale, clamp(-round(lo / scale), 0.0, maxq), 0.0, maxq);
  }
  let half = f32(1u << (bits - 1u));
  let scale = f16_round(max(max(abs(lo), abs(hi)), 1e-5) / (half - 1.0));
  return GroupQuant(scale, 0.0, -half, half - 1.0);
}

// (clamp(round(v / scale) + zero, qmin, qmax) - zero) * scale
fn dequant(v: f32, g: GroupQuant) -> f32 {
  let q = clamp(round(v / g.scale) + g.zero, g.qmin, g.qmax);
  return (q - g.zero) * g.scale;
}

// Weight access for float16 weights stored two per u32 (low half first), so
// f16 storage works with or without the shader-f16 feature.
@group(0) @binding(0) var<storage, read> weights: array<u32>;

fn weight(i: u32) -> f32 {
  let pair = unpack2x16float(weights[i >> 1u]);
  return select(pair.x, pair.y, (i & 1u) == 1u);
}

fn weight4(i: u32) -> vec4<f32> {
  let a = i >> 1u;
  let p0 = unpack2x16float(weights[a]);
  let p1 = unpack2x16float(weights[a + 1u]);
  if ((i & 1u) == 0u) {
    return vec4<f32>(p0, p1);
  }
  let p2 = unpack2x16float(weights[a + 2u]);
  return vec4<f32>(p0.y, p1.x, p1.y, p2.x);
}

// Aligned vec4 access to float16 weights (packed two per u32, low half first):
// one 8-byte load per 4 values. `i4` counts groups of 4 values.
@group(0) @binding(0) var<storage, read> weights: array<vec2<u32>>;

fn weight4a(i4: u32) -> vec4<f32> {
  let w = weights[i4];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

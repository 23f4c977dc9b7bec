// Aligned 8-wide access to float16 weights (packed two per u32, low half
// first): one 16-byte load per 8 values. `i8` counts groups of 8 values.
@group(0) @binding(0) var<storage, read> weights: array<vec4<u32>>;

fn weight8lo(w: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

fn weight8hi(w: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
}

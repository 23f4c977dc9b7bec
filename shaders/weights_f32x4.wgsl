// Aligned vec4 access to float32 weights: one load per 4 values. For kernels
// whose rows are a multiple of 4 long; `i4` counts groups of 4 values.
@group(0) @binding(0) var<storage, read> weights: array<vec4<f32>>;

fn weight4a(i4: u32) -> vec4<f32> {
  return weights[i4];
}

// Weight access for float32 weights. Prepended to kernels that read a weight
// matrix; the kernel itself never names the storage type.
@group(0) @binding(0) var<storage, read> weights: array<f32>;

fn weight(i: u32) -> f32 {
  return weights[i];
}

fn weight4(i: u32) -> vec4<f32> {
  return vec4<f32>(weights[i], weights[i + 1u], weights[i + 2u], weights[i + 3u]);
}

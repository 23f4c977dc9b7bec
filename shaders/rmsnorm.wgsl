// y[r, :] = x[rowStart + r, :] / sqrt(mean(x^2) + eps) * w. One workgroup per row.

struct Params {
  dim: u32,
  rowStart: u32,
  eps: f32,
  _pad: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn rmsnorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let src = (p.rowStart + wid.x) * p.dim;
  let dst = wid.x * p.dim;
  var s = 0.0;
  for (var i = lid.x; i < p.dim; i += WG) {
    let v = x[src + i];
    s += v * v;
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) {
      partial[lid.x] += partial[lid.x + stride];
    }
    workgroupBarrier();
  }
  let scale = inverseSqrt(partial[0] / f32(p.dim) + p.eps);
  for (var i = lid.x; i < p.dim; i += WG) {
    y[dst + i] = x[src + i] * scale * w[i];
  }
}

// The split output of the int4 matmuls (included after matmul_int4_core by
// kernels that write one to three parts; see Params there). ACCUMULATE applies
// to the first part only.

@group(0) @binding(6) var<storage, read_write> y1: array<f32>;
@group(0) @binding(7) var<storage, read_write> y2: array<f32>;

fn store(t: u32, n: u32, acc: f32) {
  var v = acc;
  if (HAS_BIAS) {
    v += bias[n];
  }
  if (n < p.N1) {
    let idx = t * p.N1 + n;
    if (ACCUMULATE) {
      v += y[idx];
    }
    y[idx] = v;
  } else if (n < p.N2) {
    y1[t * (p.N2 - p.N1) + n - p.N1] = v;
  } else {
    y2[t * (p.N - p.N2) + n - p.N2] = v;
  }
}

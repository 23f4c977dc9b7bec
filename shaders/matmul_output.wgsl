// Shared by the matmul kernels (included with `//!include matmul_output`):
// the Params block, the flags, the output/bias/params bindings, and store(),
// which adds the bias and the previous output when asked. Each kernel declares
// its own input binding `x` (scalar or vec4) at binding 1.

struct Params {
  T: u32,   // tokens (rows of x)
  K: u32,   // input features
  N: u32,   // output features
  ldy: u32, // row stride of y (0: N); a row chunk of a split weight writes columns of a wider y
}

override WG: u32 = 64u;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn store(t: u32, n: u32, acc: f32) {
  var v = acc;
  if (HAS_BIAS) {
    v += bias[n];
  }
  let idx = t * select(p.ldy, p.N, p.ldy == 0u) + n;
  if (ACCUMULATE) {
    v += y[idx];
  }
  y[idx] = v;
}

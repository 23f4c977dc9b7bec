// The 4x4 register tile of the shared-memory GEMMs (matmul.wgsl gemm,
// matmul_int4.wgsl gemm_u4): invocation (lid.x, lid.y) owns tokens
// lid.y*4.. and features lid.x*4.. of the workgroup's tile. Included by
// kernels that declare `const TK`, workgroup arrays `xs` and `ws` laid out
// [tile][TK] (inputs and weights of one step) and `store(t, n, value)`.

// acc[i*4 + j] += Σ_kk xs[token i][kk] · ws[feature j][kk] over one step.
fn tile_accumulate(acc: ptr<function, array<f32, 16>>, lid: vec3<u32>) {
  for (var kk = 0u; kk < TK; kk++) {
    var a: array<f32, 4>;
    var b: array<f32, 4>;
    for (var i = 0u; i < 4u; i++) {
      a[i] = xs[(lid.y * 4u + i) * TK + kk];
      b[i] = ws[(lid.x * 4u + i) * TK + kk];
    }
    for (var i = 0u; i < 4u; i++) {
      for (var j = 0u; j < 4u; j++) {
        (*acc)[i * 4u + j] += a[i] * b[j];
      }
    }
  }
}

// Stores the tile of the tile at (t0, n0), skipping tokens >= T and features >= N.
fn tile_store(acc: ptr<function, array<f32, 16>>, lid: vec3<u32>, t0: u32, n0: u32, T: u32, N: u32) {
  for (var i = 0u; i < 4u; i++) {
    let t = t0 + lid.y * 4u + i;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x * 4u + j;
      if (t < T && n < N) {
        store(t, n, (*acc)[i * 4u + j]);
      }
    }
  }
}

// int4 GEMV with the input in a uniform buffer, for CPU-backed adapters
// (lavapipe): there every storage load is a per-lane gather, while a uniform
// read of an index that is the same in every lane is one broadcast load, and
// all invocations read the same x[k]. Each invocation computes 4 rows, so each
// x load serves 4 rows' weights (the x reads, not the dequantization, limit
// this kernel on lavapipe with the dequantization; 4 rows measured about 1.6x
// one row). One vec4<u32>
// (32 codes) load per row and step. Needs T * K <= 16384 floats (the 64 KiB
// uniform binding) and K % 4 == 0 when T > 1; the binding is 64 KiB exactly.
//   gemv_u4_ux:        rows 4i .. 4i + 3 of y[t, :] (split outputs, bias, accumulate:
//                      matmul_int4_core)
//   gemv_u4_ux_swiglu: W is [gate; up] packed (N = 2 * N1); rows 2i, 2i + 1 of
//                      y[t, :] = silu(gate · x) * (up · x)

//!include matmul_int4_core
//!include matmul_int4_output

@group(0) @binding(1) var<uniform> xu: array<vec4<f32>, 4096>;

fn xv4(i: u32) -> vec4<f32> {
  return xu[i >> 2u];
}

fn xv(i: u32) -> f32 {
  return xu[i >> 2u][i & 3u];
}

// Cheap dequantization: the codes of columns 8j + i (i < 4) are taken in place
// as (w & 0xF << 4i) = code * 16^i, and those of 8j + 4 + i from w >> 16 the
// same way; the input is pre-scaled by 16^-i once per chunk for all 4 rows
// (exact: powers of two), so one AND and one int-to-float conversion replace
// shift, mask, conversion and the zero-point subtraction; the zero point
// enters once per group as z * sum(x). About 1.2x faster on lavapipe than
// dequantizing each code (measured interleaved, 4096x4096).
const MASK4 = vec4<u32>(0xFu, 0xF0u, 0xF00u, 0xF000u);
const UNSHIFT4 = vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625);

fn in_place4(w: u32) -> vec4<f32> {
  return vec4<f32>(vec4<i32>(vec4<u32>(w) & MASK4));
}

/// sum over a full chunk of code * x, x given pre-scaled as 8 vec4s.
fn chunk_dot8(w: vec4<u32>, x: array<vec4<f32>, 8>) -> f32 {
  var a = in_place4(w.x) * x[0] + in_place4(w.x >> 16u) * x[1];
  a += in_place4(w.y) * x[2] + in_place4(w.y >> 16u) * x[3];
  a += in_place4(w.z) * x[4] + in_place4(w.z >> 16u) * x[5];
  a += in_place4(w.w) * x[6] + in_place4(w.w >> 16u) * x[7];
  return a.x + a.y + a.z + a.w;
}

/// Rows `rows` of W times token t of x: each x chunk is read once for the 4 rows.
fn rows_dot(rows: vec4<u32>, t: u32) -> vec4<f32> {
  let kc = chunks();
  let full = p.K / 32u;
  let per_group = p.G / 32u;
  let xr = t * p.K;
  var total = vec4<f32>(0.0);
  var c = 0u;
  loop {
    if (c >= full) {
      break;
    }
    var s = array<vec2<f32>, 4>();
    for (var r = 0u; r < 4u; r++) {
      s[r] = scale_zero(rows[r], c);
    }
    let end = min(c + per_group, full);
    var acc = vec4<f32>(0.0);
    var xsum = vec4<f32>(0.0);
    for (; c < end; c++) {
      let xi = xr + 32u * c;
      var x = array<vec4<f32>, 8>();
      for (var j = 0u; j < 8u; j++) {
        let v = xv4(xi + 4u * j);
        xsum += v;
        x[j] = v * UNSHIFT4;
      }
      for (var r = 0u; r < 4u; r++) {
        acc[r] += chunk_dot8(codes[rows[r] * kc + c], x);
      }
    }
    let xs = xsum.x + xsum.y + xsum.z + xsum.w;
    for (var r = 0u; r < 4u; r++) {
      total[r] += s[r].x * (acc[r] - s[r].y * xs);
    }
  }
  if (full < kc) {
    for (var r = 0u; r < 4u; r++) {
      let s = scale_zero(rows[r], full);
      let w = codes[rows[r] * kc + full];
      total[r] += s.x * chunk_dot_masked(w, s.y, xr + 32u * full, 32u * full);
    }
  }
  return total;
}

@compute @workgroup_size(WG)
fn gemv_u4_ux(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n0 = 4u * (gid.x + gid.y * nwg.x * WG);
  if (n0 >= p.N) {
    return;
  }
  let last = p.N - 1u;
  let rows = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(last));
  for (var t = 0u; t < p.T; t++) {
    let v = rows_dot(rows, t);
    for (var r = 0u; r < 4u; r++) {
      if (n0 + r < p.N) {
        store(t, n0 + r, v[r]);
      }
    }
  }
}

@compute @workgroup_size(WG)
fn gemv_u4_ux_swiglu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n0 = 2u * (gid.x + gid.y * nwg.x * WG);
  if (n0 >= p.N1) {
    return;
  }
  let n1 = min(n0 + 1u, p.N1 - 1u);
  let rows = vec4<u32>(n0, n1, n0 + p.N1, n1 + p.N1);
  for (var t = 0u; t < p.T; t++) {
    let v = rows_dot(rows, t);
    y[t * p.N1 + n0] = silu(v.x) * v.z;
    if (n0 + 1u < p.N1) {
      y[t * p.N1 + n0 + 1u] = silu(v.y) * v.w;
    }
  }
}

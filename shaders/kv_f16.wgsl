// KV cache element type for the RoPE/KV-store and attention kernels: f16
// (needs the shader-f16 feature; halves the cache and the attention reads).
enable f16;
alias kv = f16;
alias kv4 = vec4<f16>;

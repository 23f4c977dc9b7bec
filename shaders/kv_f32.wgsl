// KV cache element type for the RoPE/KV-store and attention kernels: f32.
alias kv = f32;
alias kv4 = vec4<f32>;

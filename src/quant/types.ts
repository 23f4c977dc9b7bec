/**
 * Shared types of the quantization pipeline: settings, the quantized form of
 * one linear layer, and the per-layer report.
 *
 * @module
 */

/** How weights are quantized. */
export interface QuantSettings {
  /** Bits per weight: 3, 4 or 8. */
  bits: 3 | 4 | 8;
  /**
   * Input channels per group (128, 64, 32, ...); 0 means one group per output
   * row (per-channel). When the input size is not a multiple, the last group
   * of each row is shorter.
   */
  groupSize: number;
  /** Asymmetric with a zero point (true, AutoAWQ's default) or symmetric. */
  zeroPoint: boolean;
}

/**
 * A quantized linear weight W [out, in] (PyTorch layout):
 * W'[n, k] = (q[n, k] - zeros[n, g]) * scales[n, g] with g = floor(k / groupSize).
 */
export interface QuantizedLinear {
  /** Output features. */
  outFeatures: number;
  /** Input features. */
  inFeatures: number;
  /** The settings used. */
  settings: QuantSettings;
  /** Integer codes [out, in], each in [0, 2^bits - 1]. */
  q: Uint8Array;
  /** Scales [out, nGroups]. */
  scales: Float32Array;
  /** Zero points [out, nGroups] (2^(bits-1) for symmetric). */
  zeros: Uint8Array;
}

/** What was decided and measured for one decoder layer. */
export interface LayerReport {
  /** Layer index. */
  layer: number;
  /** Per scaling group: prev op -> linears, chosen ratio, loss before/after. */
  scaling: Array<{
    group: string;
    ratio: number;
    /** False when no scaling (s = 1) beat every candidate (absent: true). */
    scaled?: boolean;
    /** Scale rule of the chosen candidate (absent: the run's only rule). */
    rule?: "duo" | "x";
    lossBefore: number;
    lossAfter: number;
  }>;
  /** Per linear: mean clip shrink chosen (1 = none) and relative quantization error. */
  linears: Array<{
    name: string;
    clipShrinkMean: number;
    quantError: number;
  }>;
  /** Seconds per phase (inputs, stats, scale search, clip search, quantize). */
  seconds: Record<string, number>;
}

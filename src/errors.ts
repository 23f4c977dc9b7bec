/**
 * Typed errors. Every error a user can cause is an {@link AwqEdgeError}; the
 * CLI prints its message on one line (no stack trace) and exits non-zero.
 *
 * @example
 * ```ts
 * import { AwqEdgeError, FormatError } from "./errors.ts";
 * try {
 *   throw new FormatError("model.safetensors: header is not JSON");
 * } catch (e) {
 *   if (e instanceof AwqEdgeError) console.error(e.message);
 * }
 * ```
 * @module
 */

/** Base class of every error the user can cause (bad input, missing files, no GPU). */
export class AwqEdgeError extends Error {
  /** Creates an error with a one-line, user-facing message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A checkpoint, tokenizer or config file is missing, corrupt or unsupported. */
export class FormatError extends AwqEdgeError {}

/** A config.json field is missing, of the wrong type or unsupported. */
export class ConfigError extends AwqEdgeError {}

/** WebGPU is unavailable, or the device was lost, or a limit is exceeded. */
export class GpuError extends AwqEdgeError {}

/** A request (prompt, option, parameter) cannot be served as given. */
export class RequestError extends AwqEdgeError {}

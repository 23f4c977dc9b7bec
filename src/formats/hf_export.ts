/**
 * Exports {@link LlamaWeights} as a Hugging Face model directory that
 * transformers (and our own {@link loadHfModel}) can load: config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json and
 * generation_config.json, written into a temporary directory beside the
 * target and renamed into place, so a failure leaves nothing behind.
 *
 * @example
 * ```ts ignore
 * import { readLlama2c } from "./llama2c.ts";
 * import { exportHfDirectory } from "./hf_export.ts";
 * const w = await readLlama2c("stories260K.bin");
 * await exportHfDirectory(w, "./stories260K-hf", { tokenizerJson });
 * ```
 * @module
 */

import { dirname, join } from "node:path";
import { FormatError } from "../errors.ts";
import type { LlamaWeights } from "../model/weights.ts";
import { makeTempDirBeside, removeIfExists, replaceDirAtomic } from "./atomic.ts";
import { toHfConfigJson } from "./hf_config.ts";
import { hfTensorSpecs, tensorForSpec } from "./hf_layout.ts";
import { type TensorToWrite, writeSafetensors } from "./safetensors_write.ts";
import { pathExists as exists } from "./path_exists.ts";

/** The tokenizer files to write beside the weights. */
export interface HfExportFiles {
  /** Contents of tokenizer.json (e.g. from `llama2cTokenizerToHfJson`). */
  tokenizerJson: unknown;
  /** Fields merged over the default tokenizer_config.json. */
  tokenizerConfig?: unknown;
}

/** Options of {@link exportHfDirectory}. */
export interface HfExportOptions {
  /** Storage dtype of the weights: F32 (default, logits bit-identical) or F16. */
  dtype?: "F32" | "F16";
  /** Replace an existing `outDir` instead of refusing. */
  force?: boolean;
}

function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/**
 * Writes `weights` as a HF model directory `outDir`. Refuses (with
 * {@link FormatError}) an existing `outDir` unless `opts.force`, and a weight
 * whose shape disagrees with the config. The tokenizer_config.json has
 * `bos_token` "<s>", `eos_token` "</s>", `add_bos_token` true,
 * `model_max_length` and `tokenizer_class` "LlamaTokenizerFast", with
 * `files.tokenizerConfig` fields merged over it.
 *
 * @example
 * ```ts ignore
 * import { exportHfDirectory } from "./hf_export.ts";
 * import { loadHfModel } from "./hf_model.ts";
 * await exportHfDirectory(weights, "out", { tokenizerJson }, { dtype: "F16" });
 * const back = await loadHfModel("out");
 * ```
 */
export async function exportHfDirectory(
  weights: LlamaWeights,
  outDir: string,
  files: HfExportFiles,
  opts: HfExportOptions = {},
): Promise<void> {
  const dtype = opts.dtype ?? "F32";
  if (dtype !== "F32" && dtype !== "F16") {
    throw new FormatError(`${outDir}: export dtype ${JSON.stringify(dtype)} is not F32 or F16`);
  }
  if (!opts.force && (await exists(outDir))) {
    throw new FormatError(`${outDir}: already exists (pass force to replace it)`);
  }
  const extra = files.tokenizerConfig;
  if (
    extra !== undefined && (typeof extra !== "object" || extra === null || Array.isArray(extra))
  ) {
    throw new FormatError(`${outDir}: tokenizerConfig must be an object`);
  }
  const config = weights.config;
  const tensors: TensorToWrite[] = [];
  for (const spec of hfTensorSpecs(config)) {
    const t = tensorForSpec(weights, spec);
    if (!t) throw new FormatError(`${outDir}: weights lack tensor "${spec.name}"`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new FormatError(
        `${outDir}: tensor "${spec.name}" has shape [${t.shape}], config implies [${spec.shape}]`,
      );
    }
    tensors.push({ name: spec.name, dtype, shape: spec.shape, data: t.data });
  }
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
    clean_up_tokenization_spaces: false,
    legacy: false,
    model_max_length: config.maxPositionEmbeddings,
    tokenizer_class: "LlamaTokenizerFast",
    ...(extra as Record<string, unknown> | undefined),
  };
  const generationConfig = {
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenId,
    max_length: config.maxPositionEmbeddings,
  };

  let tmp: string;
  try {
    tmp = await makeTempDirBeside(outDir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FormatError(`${outDir}: parent directory ${dirname(outDir)} does not exist`, {
        cause: e,
      });
    }
    if (e instanceof Deno.errors.NotADirectory) {
      throw new FormatError(`${outDir}: ${dirname(outDir)} is not a directory`, { cause: e });
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new FormatError(`${outDir}: cannot create the output directory (${e.message})`, {
        cause: e,
      });
    }
    throw e;
  }
  try {
    // Serialise first so bad JSON input fails before any large write.
    const texts: Array<[string, string]> = [
      ["config.json", jsonText(toHfConfigJson(config, dtype === "F16" ? "float16" : "float32"))],
      ["tokenizer.json", jsonText(files.tokenizerJson)],
      ["tokenizer_config.json", jsonText(tokenizerConfig)],
      ["generation_config.json", jsonText(generationConfig)],
    ];
    for (const [name, text] of texts) await Deno.writeTextFile(join(tmp, name), text);
    await writeSafetensors(join(tmp, "model.safetensors"), tensors, { format: "pt" });
    if (!opts.force && (await exists(outDir))) {
      throw new FormatError(`${outDir}: already exists (pass force to replace it)`);
    }
    await replaceDirAtomic(tmp, outDir);
  } catch (e) {
    await removeIfExists(tmp);
    if (e instanceof TypeError && !(e instanceof FormatError)) {
      throw new FormatError(`${outDir}: cannot serialise export files (${e.message})`, {
        cause: e,
      });
    }
    throw e;
  }
}

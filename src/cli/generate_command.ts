/**
 * `cli.ts generate --model PATH --prompt TEXT`: streams generated text to
 * stdout (or prints one JSON object with --json) and tokens/s to stderr.
 *
 * @example
 * ```ts ignore
 * await generateCommand(["--model", "stories260K.bin", "--prompt", "Once upon a time"]);
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { type GenerateResult, Generator } from "../engine/generator.ts";
import { numberOption, parseCommandArgs, requiredString } from "./args.ts";
import { parseDType } from "./eval_command.ts";
import { BACKEND_OPTIONS, BACKEND_USAGE, parseBackendOptions } from "./backend_options.ts";
import { openModel } from "./open_model.ts";

/** Usage text of the generate command. */
export const GENERATE_USAGE = `usage: cli.ts generate --model PATH --prompt TEXT [options]
  --model PATH              HF directory or llama2.c .bin
  --prompt TEXT             the prompt
  --max-tokens N            new tokens at most (default 128)
  --temperature T           0 = greedy (default 0)
  --top-k K                 keep the K most likely tokens (default off)
  --top-p P                 nucleus sampling (default 1 = off)
  --repetition-penalty R    (default 1 = off)
  --presence-penalty P      minus P once per token in the context (-2..2, default 0)
  --frequency-penalty F     minus F per occurrence in the context (-2..2, default 0)
  --seed S                  random seed (default 0)
  --stop TEXT               stop string (repeatable)
  --context N               KV cache length (default: the model's, at most 2048)
  --tokenizer PATH          tokenizer (default: beside the model)
  --dtype D                 weight storage: auto (default: as stored, AWQ linears stay
                            int4), f32 or f16 (dequantized), int4 (refuse a model that is
                            not 4-bit AWQ)
  --json                    print one JSON object on stdout
${BACKEND_USAGE}`;

/** Runs generate with CLI arguments; returns the result. */
export async function generateCommand(args: string[]): Promise<GenerateResult> {
  const { values } = parseCommandArgs(args, {
    model: { type: "string" },
    prompt: { type: "string" },
    tokenizer: { type: "string" },
    dtype: { type: "string" },
    "max-tokens": { type: "string" },
    temperature: { type: "string" },
    "top-k": { type: "string" },
    "top-p": { type: "string" },
    "repetition-penalty": { type: "string" },
    "presence-penalty": { type: "string" },
    "frequency-penalty": { type: "string" },
    seed: { type: "string" },
    stop: { type: "string", multiple: true },
    context: { type: "string" },
    "tokens-per-readback": { type: "string" },
    json: { type: "boolean" },
    ...BACKEND_OPTIONS,
  });
  const modelPath = requiredString(values, "model");
  const prompt = values.prompt;
  if (typeof prompt !== "string" || prompt.trim() === "") {
    throw new RequestError("--prompt is required and must not be empty");
  }
  // Options are checked before the model is loaded, so a bad number fails fast.
  const sampling = {
    maxTokens: numberOption(values, "max-tokens", 128),
    temperature: numberOption(values, "temperature", 0),
    topK: numberOption(values, "top-k", 0),
    topP: numberOption(values, "top-p", 1),
    repetitionPenalty: numberOption(values, "repetition-penalty", 1),
    presencePenalty: numberOption(values, "presence-penalty", 0),
    frequencyPenalty: numberOption(values, "frequency-penalty", 0),
    seed: numberOption(values, "seed", 0),
    stop: values.stop as string[] | undefined,
    tokensPerReadback: numberOption(values, "tokens-per-readback"),
  };
  const backend = parseBackendOptions(values);
  const log = (s: string) => console.error(s);
  const opened = await openModel({
    ...backend,
    model: modelPath,
    tokenizer: values.tokenizer as string | undefined,
    dtype: parseDType(values.dtype),
    context: numberOption(values, "context"),
  }, log);
  const gen = new Generator(opened.model, opened.tokenizer);
  try {
    const it = gen.generate(prompt, sampling);
    const enc = new TextEncoder();
    let r = await it.next();
    while (!r.done) {
      if (!values.json) await Deno.stdout.write(enc.encode(r.value.text));
      r = await it.next();
    }
    const result = r.value;
    if (values.json) {
      console.log(JSON.stringify({
        text: result.text,
        token_ids: result.tokenIds,
        tokens_per_s: result.tokensPerSecond,
      }));
    } else {
      await Deno.stdout.write(enc.encode("\n"));
    }
    log(
      `${result.tokenIds.length} tokens (${result.finishReason}), prompt ${result.promptTokens} tokens ` +
        `in ${(result.prefillSeconds * 1000).toFixed(0)} ms, decode ${
          result.tokensPerSecond.toFixed(1)
        } tokens/s`,
    );
    return result;
  } finally {
    gen.destroy();
    opened.close();
  }
}

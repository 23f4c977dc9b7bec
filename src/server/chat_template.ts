/**
 * Chat prompts: the model's tokenizer_config.json `chat_template` rendered
 * with @huggingface/jinja, or, for a model without one, the fallback
 * {@link FALLBACK_CHAT_TEMPLATE}:
 *
 * ```
 * system: You are helpful.
 * user: Hello!
 * assistant:
 * ```
 *
 * (one "role: content" line per message, then "assistant:" to prompt the
 * reply; BOS is added by the tokenizer, not written in the text).
 *
 * @example
 * ```ts
 * import { renderChat } from "./chat_template.ts";
 * const p = renderChat([{ role: "user", content: "Hi" }], { bosToken: "<s>", eosToken: "</s>" });
 * console.log(JSON.stringify(p.text)); // "user: Hi\nassistant:"
 * ```
 * @module
 */

import { Template } from "@huggingface/jinja";
import { ApiError } from "./validation.ts";

/** The template used when a model has no chat_template. */
export const FALLBACK_CHAT_TEMPLATE =
  "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";

/** A rendered chat prompt. */
export interface ChatPrompt {
  /** The prompt text. */
  text: string;
  /** Whether the tokenizer should still prepend BOS (false when the text starts with it). */
  addBos: boolean;
}

const cache = new Map<string, Template>();

/** Renders `messages` with `template` (default: the fallback). */
export function renderChat(
  messages: { role: string; content: string }[],
  tokens: { bosToken: string; eosToken: string },
  template: string = FALLBACK_CHAT_TEMPLATE,
): ChatPrompt {
  let t = cache.get(template);
  let text: string;
  try {
    if (!t) {
      t = new Template(template);
      cache.set(template, t);
    }
    text = t.render({
      messages,
      add_generation_prompt: true,
      bos_token: tokens.bosToken,
      eos_token: tokens.eosToken,
    });
  } catch (e) {
    throw new ApiError(400, `the chat template failed: ${(e as Error).message}`, {
      param: "messages",
      code: "chat_template_error",
    });
  }
  const addBos = !(tokens.bosToken && text.startsWith(tokens.bosToken));
  return { text, addBos };
}

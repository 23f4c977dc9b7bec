/**
 * The chat page served at GET /: plain HTML and JavaScript, no build step.
 * It lists the model from /v1/models and streams replies from
 * /v1/chat/completions (SSE read with fetch), keeping the conversation.
 *
 * @module
 */

/** The page's HTML. */
export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>awq-edge chat</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 1rem auto; padding: 0 1rem; }
  #log { border: 1px solid #ccc; border-radius: 6px; padding: .5rem; min-height: 12rem; }
  .msg { white-space: pre-wrap; margin: .4rem 0; }
  .user { color: #114; font-weight: 600; }
  .assistant { color: #222; }
  .error { color: #a00; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  #input { flex: 1; }
  small { color: #666; }
</style>
</head>
<body>
<h1>awq-edge chat</h1>
<p><small>model: <span id="model">…</span> · API key (if the server needs one):
<input id="key" type="password" size="16" autocomplete="off"></small></p>
<div id="log" aria-live="polite"></div>
<form id="form">
  <input id="input" autocomplete="off" placeholder="Say something" aria-label="message">
  <input id="max" type="number" value="64" min="1" style="width:4.5rem" aria-label="max tokens">
  <button id="send" type="submit">Send</button>
</form>
<script>
const log = document.getElementById("log");
const form = document.getElementById("form");
const input = document.getElementById("input");
const keyInput = document.getElementById("key");
keyInput.value = localStorage.getItem("awq-edge-key") || "";
keyInput.onchange = () => { localStorage.setItem("awq-edge-key", keyInput.value); loadModel(); };
const messages = [];
let model = "";

function headers() {
  const h = { "Content-Type": "application/json" };
  if (keyInput.value) h.Authorization = "Bearer " + keyInput.value;
  return h;
}

function add(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  log.appendChild(div);
  return div;
}

async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
    model = j.data[0].id;
    document.getElementById("model").textContent = model;
  } catch (e) {
    document.getElementById("model").textContent = "unavailable (" + e.message + ")";
  }
}

form.onsubmit = async (ev) => {
  ev.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  if (!model) await loadModel();
  input.value = "";
  messages.push({ role: "user", content: text });
  add("user", text);
  const out = add("assistant", "");
  out.dataset.done = "false";
  document.getElementById("send").disabled = true;
  let reply = "";
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({
        model, messages, stream: true, max_tokens: Number(document.getElementById("max").value) || 64,
      }),
    });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      throw new Error(j.error ? j.error.message : r.statusText);
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\\n\\n")) >= 0) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of event.split("\\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const j = JSON.parse(data);
          if (j.error) throw new Error(j.error.message);
          const d = j.choices && j.choices[0] && j.choices[0].delta;
          if (d && d.content) { reply += d.content; out.textContent = reply; }
        }
      }
    }
    messages.push({ role: "assistant", content: reply });
  } catch (e) {
    out.className = "msg error";
    out.textContent = "error: " + e.message;
    messages.pop();
  } finally {
    out.dataset.done = "true";
    document.getElementById("send").disabled = false;
  }
};
loadModel();
</script>
</body>
</html>
`;

/**
 * The chat page served at `/`: plain HTML and a little script that streams
 * replies from `/v1/chat/completions`. No external resources.
 *
 * @module
 */

/** The page; `__MODEL__` is replaced by the served model's name. */
export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgemoe chat</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  #log { border: 1px solid #ccc; border-radius: 6px; padding: 1rem; min-height: 12rem; white-space: pre-wrap; }
  .user { color: #0645ad; } .assistant { color: #222; } .error { color: #b00; }
  form { display: flex; gap: .5rem; margin-top: 1rem; } input[name=message] { flex: 1; padding: .5rem; }
  details { margin-top: 1rem; color: #555; }
</style>
</head>
<body>
<h1>edgemoe · <span id="model">__MODEL__</span></h1>
<div id="log" aria-live="polite"></div>
<form id="chat">
  <input name="message" autocomplete="off" placeholder="Say something" required>
  <button type="submit">Send</button>
</form>
<details><summary>Settings</summary>
  <label>API key <input id="key" type="password" autocomplete="off"></label>
  <label>Max tokens <input id="max" type="number" value="128" min="1"></label>
  <label>Temperature <input id="temp" type="number" value="0.8" min="0" max="2" step="0.1"></label>
</details>
<script type="module">
const log = document.getElementById("log");
const form = document.getElementById("chat");
const messages = [];
function line(cls, text) {
  const p = document.createElement("div");
  p.className = cls;
  p.textContent = text;
  log.append(p);
  return p;
}
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = form.elements.message;
  const text = input.value;
  input.value = "";
  messages.push({ role: "user", content: text });
  line("user", "> " + text);
  const out = line("assistant", "");
  const headers = { "content-type": "application/json" };
  const key = document.getElementById("key").value;
  if (key) headers.authorization = "Bearer " + key;
  form.querySelector("button").disabled = true;
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers,
      body: JSON.stringify({
        model: document.getElementById("model").textContent,
        messages,
        stream: true,
        max_tokens: Number(document.getElementById("max").value),
        temperature: Number(document.getElementById("temp").value),
      }),
    });
    if (!res.ok) throw new Error((await res.json()).error.message);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\\n\\n")) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
        const msg = JSON.parse(ev.slice(6));
        if (msg.error) throw new Error(msg.error.message);
        out.textContent += msg.choices[0]?.delta?.content ?? "";
      }
    }
    messages.push({ role: "assistant", content: out.textContent });
    out.dataset.done = "true";
  } catch (e) {
    out.className = "error";
    out.textContent = String(e.message ?? e);
    out.dataset.done = "true";
  } finally {
    form.querySelector("button").disabled = false;
  }
});
</script>
</body>
</html>
`;

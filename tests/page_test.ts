/**
 * The chat page at `/` in headless Chromium (Debian's, driven by
 * playwright-core): a message typed and sent streams the model's reply in.
 */
import { chromium } from "playwright-core";
import { createEngine, greedy } from "../src/engine.ts";
import { startServer } from "../src/server/server.ts";
import { assertEquals } from "../src/std/assert.ts";
import { FIXTURE_DIR } from "./oracle/reference.ts";

const MODEL = `${FIXTURE_DIR}qwen3moe.gguf`;
const TEMPLATE =
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
const CHROMIUM = "/usr/bin/chromium";

Deno.test("chat page: sends a message and streams the reply", async () => {
  await using server = startServer({
    model: MODEL,
    modelName: "tiny",
    port: 0,
    engine: { chatTemplate: TEMPLATE, nCtx: 64, store: "ram" },
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.addr.port}/`);
    assertEquals(await page.textContent("#model"), "tiny");
    await page.click("summary");
    await page.fill("#max", "10");
    await page.fill("#temp", "0");
    await page.fill("input[name=message]", "Hello there");
    await page.click("button[type=submit]");
    await page.waitForSelector(".assistant[data-done=true]", { timeout: 20000 });
    const reply = await page.textContent(".assistant[data-done=true]");
    using engine = createEngine(MODEL, { chatTemplate: TEMPLATE, nCtx: 64, store: "ram" });
    const prompt = engine.applyChatTemplate([{ role: "user", content: "Hello there" }], true);
    const expected = [...engine.generateSync(prompt, { maxTokens: 10, sample: greedy })].map((t) => t.text).join("");
    assertEquals(reply, expected);
    assertEquals(await page.textContent(".user"), "> Hello there");
  } finally {
    await browser.close();
  }
});

/**
 * Sampler and chat-template benchmarks: `deno task bench`. The sampler runs on
 * a Qwen-sized vocabulary (151 936 logits), once per generated token.
 */
import { ChatTemplate, Sampler } from "../mod.ts";

const N_VOCAB = 151_936;
const logits = new Float32Array(N_VOCAB).map((_, i) => Math.sin(i * 12.9898) * 8);

const configs: [string, ConstructorParameters<typeof Sampler>[1]][] = [
  ["llama.cpp defaults", {}],
  ["greedy (temp 0)", { temp: 0 }],
  ["defaults + repeat penalty 1.1", { repeatPenalty: 1.1 }],
  ["top-p 0.95 over the whole vocabulary (top_k 0)", { topK: 0 }],
];
for (const [name, params] of configs) {
  const s = new Sampler(N_VOCAB, { ...params, seed: 1 });
  for (let i = 0; i < 64; i++) s.accept((i * 7919) % N_VOCAB);
  Deno.bench({ name: `sample ${name}`, group: "sampler", fn: () => void s.sample(logits) });
}

const template = ChatTemplate.fromString(
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}" +
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
);
const messages = Array.from({ length: 200 }, (_, i) => ({
  role: i % 2 === 0 ? "user" : "assistant",
  content: `message ${i} `.repeat(20),
}));
Deno.bench({
  name: "render a 200-message conversation",
  group: "template",
  fn: () => void template.render(messages, { addGenerationPrompt: true }),
});

/**
 * Plots the table printed by bench/bitwidth.ts: held-out mean KL divergence
 * (log scale) against bits per expert weight, one series per configuration
 * kind (uniform types, EdgeMoE's planner, the knapsack).
 *
 *     deno run -A bench/bitwidth_plot.ts TABLE.md OUT.svg
 *
 * @module
 */
const [input, output] = Deno.args;
interface Point {
  bits: number;
  kl: number;
  label: string;
}
const series = new Map<string, Point[]>();
for (const line of Deno.readTextFileSync(input).split("\n")) {
  const cells = line.split("|").map((c) => c.trim());
  const m = /^(uniform|edgemoe|knapsack)\b\s*(.*)$/.exec(cells[1] ?? "");
  if (!m) continue;
  const p = { bits: Number(cells[2]), kl: Number(cells[4]), label: m[2] };
  if (!(p.kl > 0)) continue;
  if (!series.has(m[1])) series.set(m[1], []);
  series.get(m[1])!.push(p);
}
const all = [...series.values()].flat();
const W = 640, H = 420, L = 70, R = 20, T = 20, B = 50;
const minB = Math.min(...all.map((p) => p.bits)), maxB = Math.max(...all.map((p) => p.bits));
const lo = Math.floor(Math.log10(Math.min(...all.map((p) => p.kl)))),
  hi = Math.ceil(Math.log10(Math.max(...all.map((p) => p.kl))));
const x = (b: number) => L + ((b - minB) / (maxB - minB || 1)) * (W - L - R);
const y = (k: number) => T + ((hi - Math.log10(k)) / (hi - lo || 1)) * (H - T - B);
const colors: Record<string, string> = { uniform: "#444", edgemoe: "#d95f02", knapsack: "#1b9e77" };
const parts: string[] = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
  `<rect width="${W}" height="${H}" fill="white"/>`,
  `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
  `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
  `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">bits per expert weight</text>`,
  `<text x="16" y="${(T + H - B) / 2}" transform="rotate(-90 16 ${
    (T + H - B) / 2
  })" text-anchor="middle">mean KL (held-out)</text>`,
];
for (let e = lo; e <= hi; e++) {
  parts.push(`<line x1="${L - 4}" y1="${y(10 ** e)}" x2="${W - R}" y2="${y(10 ** e)}" stroke="#ddd"/>`);
  parts.push(`<text x="${L - 6}" y="${y(10 ** e) + 4}" text-anchor="end">1e${e}</text>`);
}
for (let b = Math.ceil(minB); b <= maxB; b++) {
  parts.push(`<text x="${x(b)}" y="${H - B + 16}" text-anchor="middle">${b}</text>`);
}
let legend = T + 10;
for (const [name, pts] of series) {
  pts.sort((a, b) => a.bits - b.bits);
  const c = colors[name];
  parts.push(
    `<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${
      pts.map((p) => `${x(p.bits)},${y(p.kl)}`).join(" ")
    }"/>`,
  );
  for (const p of pts) {
    parts.push(
      `<circle cx="${x(p.bits)}" cy="${
        y(p.kl)
      }" r="3" fill="${c}"><title>${name} ${p.label}: ${p.bits} bits, KL ${p.kl}</title></circle>`,
    );
  }
  parts.push(`<text x="${W - R - 90}" y="${legend}" fill="${c}">● ${name}</text>`);
  legend += 16;
}
parts.push("</svg>");
Deno.writeTextFileSync(output, parts.join("\n") + "\n");

/**
 * GPT-2's byte ↔ unicode alphabet: byte-level BPE vocabularies store every
 * byte as a printable character (`" "` → `"Ġ"`, `"\n"` → `"Ċ"`), so a UTF-8
 * byte string becomes a string of 1-char symbols, one per byte.
 *
 * @module
 */

/** The character each byte is written as. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const out: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(printable ? b : next++);
  }
  return out;
})();

/** Code unit of a byte-alphabet character → the byte; -1 for characters outside the alphabet. */
const CHAR_TO_BYTE: Int16Array = (() => {
  const out = new Int16Array(324).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => out[c.charCodeAt(0)] = b);
  return out;
})();

/** The byte a byte-alphabet character stands for, or -1. */
export function charToByte(code: number): number {
  return code < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[code] : -1;
}

/** Writes `text` as UTF-8 in the byte alphabet (what byte-level BPE merges operate on). */
export function toByteAlphabet(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp < 0x80) {
      out += BYTE_TO_CHAR[cp];
      continue;
    }
    if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < text.length) {
      const lo = text.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd; // a lone surrogate is not encodable; TextEncoder does the same
    if (cp < 0x800) {
      out += BYTE_TO_CHAR[0xc0 | (cp >> 6)] + BYTE_TO_CHAR[0x80 | (cp & 63)];
    } else if (cp < 0x10000) {
      out += BYTE_TO_CHAR[0xe0 | (cp >> 12)] + BYTE_TO_CHAR[0x80 | ((cp >> 6) & 63)] + BYTE_TO_CHAR[0x80 | (cp & 63)];
    } else {
      out += BYTE_TO_CHAR[0xf0 | (cp >> 18)] + BYTE_TO_CHAR[0x80 | ((cp >> 12) & 63)] +
        BYTE_TO_CHAR[0x80 | ((cp >> 6) & 63)] + BYTE_TO_CHAR[0x80 | (cp & 63)];
    }
  }
  return out;
}

/**
 * The bytes of a byte-alphabet string. Characters outside the alphabet (which
 * byte-level vocabularies should not contain) are kept as their UTF-8, as
 * llama.cpp does.
 */
export function fromByteAlphabet(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = charToByte(ch.charCodeAt(0));
    if (ch.length === 1 && b >= 0) out.push(b);
    else for (const x of new TextEncoder().encode(ch)) out.push(x);
  }
  return new Uint8Array(out);
}

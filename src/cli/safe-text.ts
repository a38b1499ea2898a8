/**
 * The one door for text from the network (message text, petnames a sender chose, group names,
 * directory entries) on its way to a terminal. Anything that could move the cursor, change colours,
 * set the window title or the clipboard (OSC 52), open a link, erase a line, or reorder what the
 * eye reads (Unicode bidirectional overrides and isolates) is replaced by a visible, inert form:
 *
 *   - C0 controls, DEL and C1 controls       -> `^X` caret form for C0 and DEL (`^[` for ESC),
 *                                               `<U+0085>` for C1 (so `\r` shows as `^M`)
 *   - bidi embeddings, overrides, isolates   -> `<U+202E>` and so on (the code point, named)
 *     and marks (LRM, RLM, ALM)
 *   - line and paragraph separators          -> `<U+2028>`, `<U+2029>`
 *   - zero-width and invisible format chars  -> `<U+200B>` ... (they could hide a difference in a name)
 *   - lone surrogates                        -> U+FFFD
 *
 * Printable text, emoji and every script are kept as they are. Nothing here throws. `--json` keeps
 * the exact text; only what goes to a terminal passes through these functions.
 */

/** Code points shown as `<U+XXXX>`: bidi controls, separators, zero-width and invisible formats. */
const NAMED = new Set<number>([
  0x061c, // ARABIC LETTER MARK
  0x115f, 0x1160, 0x3164, 0xffa0, // Hangul fillers (blank-looking)
  0x180e, // MONGOLIAN VOWEL SEPARATOR
  0x200b, 0x200e, 0x200f, // ZWSP, LRM, RLM (ZWJ and ZWNJ stay: emoji sequences and several scripts need them)
  0x2028, 0x2029, // LINE / PARAGRAPH SEPARATOR
  0x202a, 0x202b, 0x202c, 0x202d, 0x202e, // LRE RLE PDF LRO RLO
  0x2060, 0x2061, 0x2062, 0x2063, 0x2064, // WORD JOINER, invisible operators
  0x2066, 0x2067, 0x2068, 0x2069, // LRI RLI FSI PDI
  0x206a, 0x206b, 0x206c, 0x206d, 0x206e, 0x206f, // deprecated format controls
  0xfeff, // BYTE ORDER MARK / ZWNBSP
  0xfff9, 0xfffa, 0xfffb, // interlinear annotation
]);

/** True for a code point that safeText() rewrites. */
export function isUnsafeCodePoint(cp: number): boolean {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || NAMED.has(cp) || (cp >= 0xe0000 && cp <= 0xe007f) || (cp >= 0xd800 && cp <= 0xdfff);
}

function hex(cp: number): string {
  return `<U+${cp.toString(16).toUpperCase().padStart(4, '0')}>`;
}

function visible(cp: number): string {
  if (cp < 0x20) return `^${String.fromCharCode(cp + 0x40)}`; // ^@ .. ^_ ; ESC is ^[
  if (cp === 0x7f) return '^?';
  if (cp >= 0xd800 && cp <= 0xdfff) return '\ufffd';
  return hex(cp);
}

/**
 * `s` with every control character, escape sequence introducer, bidirectional control and invisible
 * format character made visible and harmless, on one line. Use it for any single-line field
 * (names, group names, directory entries).
 */
export function safeText(s: string): string {
  let out = '';
  let plainFrom = 0;
  let i = 0;
  const n = s.length;
  while (i < n) {
    const cp = s.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    if (isUnsafeCodePoint(cp)) {
      out += s.slice(plainFrom, i) + visible(cp);
      plainFrom = i + width;
    }
    i += width;
  }
  return plainFrom === 0 ? s : out + s.slice(plainFrom);
}

/**
 * Message text over several lines: each line passed through safeText(), line breaks (`\n`, `\r\n`)
 * kept as real breaks and every line after the first prefixed with `indent`, so a line inside a
 * message can never start at the left margin and pass for another sender's line. A lone `\r` is
 * shown as `^M` (it would otherwise return the cursor over the sender's name).
 */
export function safeLines(s: string, indent: string): string {
  const lines = s.split(/\r?\n/);
  return lines.map((l, k) => (k === 0 ? '' : indent) + safeText(l)).join('\n');
}

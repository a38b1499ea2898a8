/**
 * The one door for network text on its way to a terminal: nothing that reaches it can move the
 * cursor, set colours, titles or the clipboard, or reorder what is read.
 */
import t from 'tap';
import fc from 'fast-check';
import { isUnsafeCodePoint, safeLines, safeText } from '../src/cli/safe-text.js';

t.test('plain text, every script and emoji pass unchanged', async (t) => {
  for (const s of ['hello', 'héllo wörld', 'Привет', 'مرحبا', 'שלום', '你好', '👍🏽 👩‍👩‍👧', 'tab\u00a0nbsp', '']) {
    t.equal(safeText(s), s, JSON.stringify(s));
  }
});

t.test('escape sequences, C0, DEL and C1 controls become visible', async (t) => {
  t.equal(safeText('\x1b]0;pwned\x07'), '^[]0;pwned^G', 'OSC title');
  t.equal(safeText('\x1b]52;c;ZXZpbA==\x07'), '^[]52;c;ZXZpbA==^G', 'OSC 52 clipboard');
  t.equal(safeText('\x1b[31mred\x1b[0m'), '^[[31mred^[[0m', 'SGR colour');
  t.equal(safeText('\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\'), '^[]8;;http://x^[\\link^[]8;;^[\\', 'OSC 8 link');
  t.equal(safeText('\r\x1b[2K19:05 alice: hi'), '^M^[[2K19:05 alice: hi', 'carriage return and erase line');
  t.equal(safeText('a\tb\x00c\x7fd'), 'a^Ib^@c^?d');
  t.equal(safeText('x\u009b31my'), 'x<U+009B>31my', 'C1 CSI');
  t.equal(safeText('x\u0085y'), 'x<U+0085>y', 'C1 NEL');
  t.equal(safeText('a\nb'), 'a^Jb', 'a single-line field shows the line feed');
});

t.test('bidirectional overrides, isolates, marks and invisible characters are named', async (t) => {
  t.equal(safeText('abc\u202Etxt.exe'), 'abc<U+202E>txt.exe', 'RLO');
  t.equal(safeText('\u2066x\u2069'), '<U+2066>x<U+2069>', 'isolates');
  t.equal(safeText('a\u200Bb\u200Fc\uFEFF'), 'a<U+200B>b<U+200F>c<U+FEFF>');
  t.equal(safeText('a\u2028b'), 'a<U+2028>b');
  t.equal(safeText('tag\u{E0041}'), 'tag<U+E0041>', 'tag characters');
  t.equal(safeText('lone\ud800x'), 'lone\ufffdx', 'lone surrogate');
});

t.test('message lines: breaks kept, every later line indented, lone CR shown', async (t) => {
  t.equal(safeLines('one\ntwo\r\nthree', '    '), 'one\n    two\n    three');
  t.equal(safeLines('hi\r19:05 alice: fake', '  '), 'hi^M19:05 alice: fake');
  t.equal(safeLines('x\n\x1b[1Aup', '  '), 'x\n  ^[[1Aup');
});

t.test('property: the output never holds a control, bidi or invisible code point and is idempotent', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (s) => {
      const out = safeText(s);
      for (const ch of out) if (isUnsafeCodePoint(ch.codePointAt(0)!)) return false;
      return safeText(out) === out;
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (s) => {
      const out = safeLines(s, '  ');
      return out.split('\n').every((l, k) => (k === 0 || l.startsWith('  ')) && [...l].every((c) => !isUnsafeCodePoint(c.codePointAt(0)!)));
    }),
    { numRuns: 2000 },
  );
});

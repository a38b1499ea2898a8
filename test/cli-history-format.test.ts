/** How a history line is printed: the date only when it is not today, the state of sent messages, network text made safe. */
import t from 'tap';
import { historyLine } from '../src/cli/history-format.js';
import { localTime as stamp } from '../src/cli/format.js';
import type { HistoryEntry } from '../src/client/index.js';

const FP = 'b'.repeat(64);
const now = new Date(2026, 10, 29, 15, 30).getTime();
const names = (fp: string): string => (fp === FP ? 'bob' : fp.slice(0, 12));

t.test('stamp: HH:MM today, the date before it on another day', async (t) => {
  t.equal(stamp(new Date(2026, 10, 29, 9, 5).getTime(), now), '09:05');
  t.equal(stamp(new Date(2026, 10, 28, 23, 59).getTime(), now), '2026-11-28 23:59');
  t.equal(stamp(new Date(2025, 10, 29, 9, 5).getTime(), now), '2025-11-29 09:05', 'the same day of another year is another day');
});

t.test('historyLine: direction, state, group, safe text', async (t) => {
  const base: HistoryEntry = { id: '0'.repeat(32), contact: FP, dir: 'in', atMs: new Date(2026, 10, 29, 9, 5).getTime(), sentAtMs: 0, text: 'hi' };
  t.equal(historyLine(base, names, now), '09:05 bob: hi');
  t.equal(historyLine({ ...base, dir: 'out', state: 'delivered' }, names, now), '09:05 me → bob: hi  [delivered]');
  t.equal(historyLine({ ...base, dir: 'out', state: 'failed', reason: 'expired' }, names, now), '09:05 me → bob: hi  [FAILED: expired]');
  t.equal(historyLine({ ...base, group: { id: '1'.repeat(32), name: 'team\u202e', members: [] } }, names, now), '09:05 bob in team<U+202E>: hi');
  t.equal(historyLine({ ...base, text: 'a\u001b[2Jb\nsecond line' }, names, now), '09:05 bob: a^[[2Jb\n    second line', 'escapes shown, later lines indented');
});

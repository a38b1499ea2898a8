/** Times, delivery labels and colours of the terminal client (src/cli/format.ts). */
import t from 'tap';
import { colourWanted, deliveryLabel, explainReason, isoLocal, lateMark, localTime, palette, LATE_AFTER_MS } from '../src/cli/format.js';

t.test('local time: HH:MM today, the date on other days; ISO 8601 with the local offset', async (t) => {
  const now = new Date(2026, 10, 29, 21, 5, 0).getTime();
  t.equal(localTime(new Date(2026, 10, 29, 9, 7).getTime(), now), '09:07');
  t.equal(localTime(new Date(2026, 10, 28, 23, 59).getTime(), now), '2026-11-28 23:59');
  t.equal(localTime(new Date(2025, 10, 29, 9, 7).getTime(), now), '2025-11-29 09:07', 'same day of another year');
  const ms = Date.UTC(2026, 10, 29, 20, 5, 3, 120);
  const iso = isoLocal(ms);
  t.match(iso, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/);
  t.equal(Date.parse(iso), ms, 'the same instant');
});

t.test('late mark only past LATE_AFTER_MS', async (t) => {
  const now = Date.now();
  t.equal(lateMark(now - 1000, now, now), '');
  t.match(lateMark(now - LATE_AFTER_MS - 1, now, now), /^ \(late: sent /);
});

t.test('every queued says why; failures explain their reason; network reasons are made safe', async (t) => {
  t.equal(deliveryLabel('queued', undefined), 'queued (waiting for its turn to be sent)');
  t.match(deliveryLabel('queued', 'certificate-pending'), /fetching the recipient's certificate/);
  t.match(deliveryLabel('failed', 'certificate-not-found'), /not registered at that peer/);
  t.match(deliveryLabel('failed', 'fingerprint-mismatch'), /does not match the fingerprint/);
  t.equal(deliveryLabel('held', 'delivered-to-device'), 'delivered to device, waiting for receipt');
  t.match(deliveryLabel('held', 'session-restarting'), /^held \(session-restarting: waiting for the contact to answer the new encrypted session\)$/);
  t.match(deliveryLabel('queued', 'session-restarting'), /answer the new encrypted session/);
  t.match(deliveryLabel('failed', 'session-skip-bound'), /encrypted session the recipient lost/);
  t.equal(explainReason('odd\x1b[2Kreason'), 'odd^[[2Kreason');
});

t.test('colour: on a terminal unless NO_COLOR; never when not a terminal unless FORCE_COLOR', async (t) => {
  t.equal(colourWanted(true, {}), true);
  t.equal(colourWanted(true, { NO_COLOR: '1' }), false);
  t.equal(colourWanted(false, {}), false);
  t.equal(colourWanted(false, { FORCE_COLOR: '1' }), true);
  t.equal(colourWanted(true, { NO_COLOR: '' }), true, 'an empty NO_COLOR is unset');
  t.equal(palette(false).name('bob'), 'bob');
  t.match(palette(true).name('bob'), /\x1b\[/);
  t.equal(palette(true).name('bob'), palette(true).name('bob'), 'a name keeps its colour');
});

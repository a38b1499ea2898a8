/** `peerpost inbox`: register, collect waiting messages, print the new ones, exit. */
import type { CommandModule } from 'yargs';
import { readConfig, updateConfig } from '../../identity/home.js';
import type { InboxEntry } from '../../client/index.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { oneShotOptions, withClient, type OneShotArgs } from '../session.js';
import { safeLines, safeText } from '../safe-text.js';
import { isoLocal, lateMark, localTime } from '../format.js';

interface Args extends GlobalArgs, OneShotArgs {
  all: boolean;
  quiet: number;
}

/** One message as text: local time (with the date when not today), network text made safe. */
export function inboxLine(m: InboxEntry, isContact: boolean, nowMs: number): string {
  const t = localTime(m.sentAtMs, nowMs);
  const group = m.group ? ` [${safeText(m.group.name)}]` : '';
  const from = isContact && m.fromName ? safeText(m.fromName) : `REQUEST from ?${m.from.slice(0, 12)}`;
  return `${t} ${from}${group}${lateMark(m.sentAtMs, m.receivedAtMs, nowMs)}: ${safeLines(m.text, '    ')}`;
}

export const inboxCommand: CommandModule<GlobalArgs, Args> = {
  command: 'inbox',
  describe: 'collect waiting messages from your peer and print the new ones',
  builder: (y) =>
    oneShotOptions(y)
      .option('all', { type: 'boolean', default: false, describe: 'print every kept message, not only new ones' })
      .option('quiet', { type: 'number', default: 1.5, describe: 'seconds without a new message after which collecting stops', requiresArg: true }) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const quietMs = Math.max(0.2, Number(argv.quiet) || 1.5) * 1000;
    let contacts = new Set<string>();
    const list = await withClient(ctx.home, argv, ctx.log, (c, timeoutMs) =>
      new Promise<InboxEntry[]>((resolve) => {
        const stopAt = Date.now() + timeoutMs;
        let quiet: NodeJS.Timeout;
        const done = (): void => {
          c.off('message', onMessage);
          clearTimeout(quiet);
          contacts = new Set(c.contacts().map((x) => x.fingerprint));
          resolve(c.inbox());
        };
        const arm = (): void => {
          clearTimeout(quiet);
          quiet = setTimeout(done, Math.max(0, Math.min(quietMs, stopAt - Date.now())));
        };
        const onMessage = (): void => arm();
        c.on('message', onMessage);
        c.poll();
        arm();
      }),
    );
    const cfg = await readConfig(ctx.home);
    const shownUpTo = typeof cfg.inboxShownUpToMs === 'number' ? cfg.inboxShownUpToMs : 0;
    const show = argv.all ? list : list.filter((m) => m.receivedAtMs > shownUpTo);
    if (list.length) await updateConfig(ctx.home, { inboxShownUpToMs: Math.max(shownUpTo, ...list.map((m) => m.receivedAtMs)) });
    if (ctx.json) {
      for (const m of show) {
        ctx.io.stdout.write(`${JSON.stringify({
          from: m.from, fromName: m.fromName, fromPeer: m.fromPeer, text: m.text, id: m.id, sentAt: m.sentAtMs, receivedAt: m.receivedAtMs,
          sentAtIso: isoLocal(m.sentAtMs), receivedAtIso: isoLocal(m.receivedAtMs), ...(m.group ? { group: m.group } : {}), ...(contacts.has(m.from) ? {} : { request: true }),
        })}\n`);
      }
    } else {
      const now = Date.now();
      for (const m of show) ctx.io.stdout.write(`${inboxLine(m, contacts.has(m.from), now)}\n`);
      ctx.note(`${show.length} ${argv.all ? '' : 'new '}message${show.length === 1 ? '' : 's'}`);
    }
  },
};

/** `peerpost send <contact> <text>`: send one message and wait until the recipient's peer has it. */
import type { CommandModule } from 'yargs';
import { PeerpostError, UsageError } from '../../core/errors.js';
import { cliContext, type CliContext, type GlobalArgs } from '../context.js';
import { parseContactAddress } from '../../client/index.js';
import { withReadStore } from '../read-store.js';
import { explainReason } from '../format.js';

/** Refuse an unknown recipient before touching the network. */
function knownRecipient(ctx: CliContext, ref: string): void {
  if (ref.includes('@')) {
    parseContactAddress(ref);
    return;
  }
  const snap = withReadStore(ctx, (_store, s) => s);
  if (!snap?.contacts.some((c) => c.petname === ref || c.fingerprint === ref) && !snap?.groups.some((g) => g.name === ref || g.id === ref)) {
    throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${ref}"; add it with: peerpost contacts add FP@HOST:PORT ${ref}`);
  }
}
import { oneShotOptions, positiveSeconds, withClient, type OneShotArgs } from '../session.js';

interface Args extends GlobalArgs, OneShotArgs {
  contact: string;
  text: string;
  wait: 'held' | 'delivered';
}

/** Reasons a queued message gives that no wait within this command will change. */
const CAUSE_KNOWN = new Set(['certificate-not-found', 'fingerprint-mismatch', 'bad-certificate', 'certificate-unreachable']);

/** After the recipient's device took the message, how long to wait for its receipt before saying `held`. */
export const RECEIPT_GRACE_MS = 2000;

export const sendCommand: CommandModule<GlobalArgs, Args> = {
  command: 'send <contact> <text>',
  describe: 'send a message to a contact (petname, fingerprint or FP@HOST:PORT)',
  builder: (y) =>
    oneShotOptions(y)
      .positional('contact', { type: 'string', describe: 'petname, contact fingerprint, or FP@HOST:PORT' })
      .positional('text', { type: 'string', describe: 'the message (up to 64 KiB)' })
      .option('wait', { choices: ['held', 'delivered'] as const, default: 'held' as const, describe: 'held: until the recipient\'s peer has it; delivered: until the end-to-end receipt' }) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    if (typeof argv.text !== 'string' || argv.text.length === 0) throw new UsageError('PEERPOST_TEXT', 'the message text is empty');
    positiveSeconds(argv.timeout, 'timeout');
    knownRecipient(ctx, argv.contact);
    const r = await withClient(ctx.home, argv, ctx.log, (c, timeoutMs) =>
      new Promise<{ id: string; status: string; reason?: string }>((resolve, reject) => {
        let id = '';
        let grace: NodeJS.Timeout | undefined;
        const timer = setTimeout(() => {
          const st = c.messageState(id);
          if (st?.state === 'held' && argv.wait === 'held') return finish({ id, status: 'held', ...(st.reason ? { reason: st.reason } : {}) });
          finish(undefined, new PeerpostError('PEERPOST_TIMEOUT', `no answer within ${Math.round(timeoutMs / 1000)} s (message ${id} is ${st?.state ?? 'unknown'}${st?.reason ? `: ${explainReason(st.reason)}` : ''}; it stays in the outbox and is resent next time)`));
        }, timeoutMs);
        const finish = (v?: { id: string; status: string; reason?: string }, err?: Error): void => {
          clearTimeout(timer);
          if (grace) clearTimeout(grace);
          c.off('delivery', onDelivery);
          if (err) reject(err);
          else resolve(v!);
        };
        const onDelivery = (d: { id: string; state: string; reason?: string }): void => {
          if (d.id !== id) return;
          if (d.state === 'delivered') return finish({ id, status: 'delivered' });
          if (d.state === 'failed') return finish(undefined, new PeerpostError('PEERPOST_SEND_FAILED', `message ${id} failed: ${explainReason(d.reason ?? 'unknown reason')}`));
          if (d.state === 'queued' && d.reason && CAUSE_KNOWN.has(d.reason)) {
            // The recipient's peer answered why the message cannot go now: say so at once.
            return finish(undefined, new PeerpostError('PEERPOST_SEND_WAITING', `message ${id} cannot go now: ${explainReason(d.reason)} (it stays in the outbox and is tried again next time)`));
          }
          if (d.state === 'held' && argv.wait === 'held' && !grace) {
            // The recipient's peer has it. If its device already took it, the receipt is close.
            const wait = d.reason === 'delivered-to-device' ? RECEIPT_GRACE_MS : 0;
            grace = setTimeout(() => finish({ id, status: 'held', ...(d.reason ? { reason: d.reason } : {}) }), wait);
          }
        };
        c.on('delivery', onDelivery);
        try {
          [id] = c.send(argv.contact, argv.text) as [string];
        } catch (e) {
          finish(undefined, e as Error);
        }
      }),
    );
    ctx.result(r, [`message ${r.id}: ${r.status}${r.reason ? ` (${r.reason})` : ''}`]);
  },
};

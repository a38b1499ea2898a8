/** `peerpost verify <contact>`: the live 6-digit check with a contact whose client is running. */
import readline from 'node:readline';
import type { CommandModule } from 'yargs';
import { PeerpostError, UsageError } from '../../core/errors.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { oneShotOptions, withClient, type OneShotArgs } from '../session.js';
import { progress } from '../progress.js';

interface Args extends GlobalArgs, OneShotArgs {
  contact: string;
}

function ask(question: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdin.isTTY ? process.stderr : undefined });
  return new Promise((resolve) => {
    let answered = false;
    rl.question(question, (a) => {
      answered = true;
      rl.close();
      resolve(a.trim().toLowerCase());
    });
    rl.on('close', () => {
      if (!answered) resolve('');
    });
  });
}

/** After answering, how long to wait for the other side's answer when it has not come yet. */
export const VERIFY_ANSWER_WAIT_MS = 60_000;

export const verifyCommand: CommandModule<GlobalArgs, Args> = {
  command: 'verify <contact>',
  describe: 'compare a 6-digit code live with an online contact (a man in the middle cannot match it)',
  builder: (y) => oneShotOptions(y).positional('contact', { type: 'string' }).option('timeout', { default: 60 }) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const r = await withClient(ctx.home, argv, ctx.log, async (c, timeoutMs) => {
      const fp = c.resolveFingerprint(argv.contact);
      // The other side may answer before this side does: listen from the start.
      let theirs: boolean | undefined;
      let onTheirs: (() => void) | undefined;
      const onAnswer = (x: { fingerprint: string; match: boolean }): void => {
        if (x.fingerprint !== fp) return;
        theirs = x.match;
        onTheirs?.();
      };
      c.on('verify-answer', onAnswer);
      try {
        const p = progress(ctx, `waiting for ${argv.contact} to answer the live check`, timeoutMs);
        const e = await new Promise<{ contact: string; code: string }>((resolve, reject) => {
          const timer = setTimeout(() => finish(new PeerpostError('PEERPOST_TIMEOUT',
            `${argv.contact} did not answer within ${Math.round(timeoutMs / 1000)} s: their client is not running, or they have not added you as a contact`)), timeoutMs);
          const onCode = (x: { fingerprint: string; contact: string; code: string }): void => {
            if (x.fingerprint === fp) finish(undefined, x);
          };
          const onFail = (x: { fingerprint: string; contact: string; reason: string }): void => {
            if (x.fingerprint === fp) finish(new PeerpostError('PEERPOST_VERIFY_FAILED', `live check with ${x.contact} failed: ${x.reason}`));
          };
          const finish = (err?: Error, v?: { contact: string; code: string }): void => {
            clearTimeout(timer);
            p.done();
            c.off('verify-code', onCode);
            c.off('verify-failed', onFail);
            if (err) reject(err);
            else resolve(v!);
          };
          c.on('verify-code', onCode);
          c.on('verify-failed', onFail);
          try {
            c.verify(argv.contact);
          } catch (err) {
            finish(err as Error);
          }
        });
        if (ctx.json) ctx.io.stdout.write(`${JSON.stringify({ event: 'verify-code', contact: e.contact, code: e.code })}\n`);
        else ctx.io.stdout.write(`code with ${e.contact}: ${e.code}\nCompare it with ${e.contact} (voice, in person). They see the same digits only if nobody is in the middle.\n`);
        const a = await ask('Do the codes match? [yes/no] ');
        if (a !== 'yes' && a !== 'y' && a !== 'no' && a !== 'n') throw new UsageError('PEERPOST_VERIFY_ANSWER', 'no answer (yes or no); nothing recorded');
        const match = a.startsWith('y');
        c.confirmVerification(argv.contact, match);
        if (theirs === undefined) {
          const wait = progress(ctx, `waiting for ${e.contact}'s answer`, VERIFY_ANSWER_WAIT_MS);
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, VERIFY_ANSWER_WAIT_MS);
            onTheirs = () => {
              clearTimeout(t);
              resolve();
            };
          });
          wait.done();
        }
        const verified = match && theirs !== false;
        return { contact: e.contact, fingerprint: fp, code: e.code, verified, answer: match, theirAnswer: theirs ?? null };
      } finally {
        c.off('verify-answer', onAnswer);
      }
    });
    const theirText = r.theirAnswer === null ? `${r.contact} has not answered yet (a no from them will mark a mismatch)` : `${r.contact} answered ${r.theirAnswer ? 'yes' : 'no'}`;
    if (r.verified) ctx.result({ ...r, event: 'verify-done' }, [`${r.contact} is now verified; ${theirText}`]);
    else {
      if (ctx.json) ctx.result({ ...r, event: 'verify-done' }, []);
      throw new PeerpostError('PEERPOST_VERIFY_MISMATCH', `WARNING: the codes did not match (you answered ${r.answer ? 'yes' : 'no'}, ${theirText}): someone may be between you and ${r.contact}; recorded as mismatch`);
    }
  },
};

/**
 * The interactive chat of `peerpost client` and `peerpost node`. On a terminal it shows a prompt
 * and prints incoming messages and delivery states above the line being typed. When stdin is not a
 * terminal it reads the same commands line by line (a script can drive it); with --json every
 * event is printed as one JSON object per line instead of text.
 *
 * Commands: /add /contacts /to /msg /history /search /code /verify /who /group /help /quit; a line without a
 * leading slash goes to the current recipient (/to).
 */
import readline from 'node:readline';
import { PeerpostError } from '../core/errors.js';
import { identityCodeAsync } from '../codes/identity-code.js';
import type { Messenger } from '../api/messenger.js';
import type { CliIo } from './context.js';
import { historyCommand, searchCommand, showRecent, type HistoryView } from './chat-history.js';

export const HELP = [
  '/add FP@HOST:PORT [name]     add a contact (its certificate is fetched and checked)',
  '/contacts                    list contacts with their verification state',
  '/to NAME                     send the lines you type to NAME (a contact or group)',
  '/msg NAME TEXT               send one message to a contact or a group',
  '/history [N]                 the last N messages (default 20) with the current recipient',
  '/search TEXT                 messages with these words (with the current recipient, else all)',
  '/code NAME                   show both 6-digit codes and the safety number',
  '/verify NAME                 live check with an online contact; then /verify yes|no NAME',
  '/who [HOST:PORT]             list the directory of a peer (default: ours)',
  '/who join NAME | /who leave  list yourself in your peer\'s directory, or leave it',
  '/group NAME MEMBER...        create a group; /group list; send with /msg NAME or /to NAME',
  '/help                        this list',
  '/quit                        leave (messages not yet delivered are kept and resent next time)',
];

export interface ChatOptions {
  io: CliIo;
  json: boolean;
  /** Heading printed at start (address, code). */
  title: string;
  input?: NodeJS.ReadableStream;
  interactive?: boolean;
}

function time(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** Run the chat until /quit or `stop` resolves. Resolves when the user leaves. */
export async function runChat(m: Messenger, opts: ChatOptions, stop: Promise<void>): Promise<void> {
  const input = opts.input ?? process.stdin;
  const interactive = opts.interactive ?? (process.stdin.isTTY === true && !opts.json);
  const out = opts.io.stdout;
  const rl = readline.createInterface({ input, output: interactive ? process.stdout : undefined, terminal: interactive });
  let target: string | undefined;
  const short = (id: string): string => id.slice(0, 8);
  const nameOf = (fp: string): string => m.contacts().find((c) => c.fingerprint === fp)?.petname ?? fp.slice(0, 12);

  const setPrompt = (): void => rl.setPrompt(target ? `[${target}]> ` : '> ');
  const say = (line: string): void => {
    if (interactive) {
      readline.clearLine(process.stdout, 0);
      readline.cursorTo(process.stdout, 0);
      out.write(`${line}\n`);
      rl.prompt(true);
    } else {
      out.write(`${line}\n`);
    }
  };
  const event = (type: string, data: Record<string, unknown>, text: string | undefined): void => {
    if (opts.json) out.write(`${JSON.stringify({ event: type, ...data })}\n`);
    else if (text !== undefined) say(text);
  };

  const view: HistoryView = { say, event: (type, data) => event(type, data, undefined), json: opts.json, nameOf };

  const listeners: Array<[string, (...a: never[]) => void]> = [];
  const on = <K extends string>(name: K, f: (e: Record<string, unknown>) => void): void => {
    const g = f as (...a: never[]) => void;
    (m.on as (n: string, f: unknown) => void)(name, g);
    listeners.push([name, g]);
  };
  on('message', (e) => {
    const from = e.fromName as string | undefined ?? nameOf(e.from as string);
    const group = e.group ? ` in ${(e.group as { name: string }).name}` : '';
    event('message', e, `${time(e.sentAt as number)} ${from}${group}: ${e.text as string}`);
  });
  on('delivery', (e) => {
    const st = e.state as string;
    const label = st === 'held' ? (e.reason === 'delivered-to-device' ? 'delivered to device, waiting for receipt' : 'held at peer')
      : st === 'queued' ? `queued${e.reason ? ` (${e.reason as string})` : ''}`
      : st === 'failed' ? `FAILED: ${(e.reason as string | undefined) ?? 'unknown reason'}` : st;
    event('delivery', e, `  [${short(e.id as string)}] to ${nameOf(e.to as string)}: ${label}`);
  });
  on('registered', (e) => event('registered', e, `registered with peer ${e.peer as string}`));
  on('peer-unavailable', (e) => event('peer-unavailable', e, `peer ${e.peer as string} unavailable after ${e.tries as number} tries; still trying`));
  on('peer-identity-changed', (e) => event('peer-identity-changed', e,
    `WARNING: peer ${e.peer as string} now has identity ${e.actual as string}, not ${e.expected as string}; not registering`));
  on('contact-changed', (e) => event('contact-changed', e,
    `WARNING: contact ${e.petname as string} CHANGED identity (was ${(e.previous as string).slice(0, 12)}); verify before trusting it`));
  on('contact-cert', (e) => event('contact-cert', e, e.ok ? undefined : `certificate of ${nameOf(e.fingerprint as string)} not usable: ${e.reason as string}`));
  on('group', (e) => {
    const g = e.group as { name: string; members: Array<{ fingerprint: string }> };
    event('group', e, `group ${g.name}: ${g.members.map((x) => nameOf(x.fingerprint)).join(', ')}`);
  });
  on('directory', (e) => {
    const entries = e.entries as Array<{ name: string; address: string }>;
    const text = e.error === 'disabled' ? `peer ${e.peer as string} keeps no directory`
      : entries.length === 0 ? `nobody is listed at ${e.peer as string}`
      : [`directory of ${e.peer as string} (page ${(e.page as number) + 1} of ${e.pages as number}):`, ...entries.map((x) => `  ${x.name.padEnd(20)} ${x.address}`)].join('\n');
    event('directory', e, text);
  });
  on('rejected', (e) => event('rejected', e, `dropped a message that did not authenticate (${e.reason as string})`));
  on('verify-started', (e) => event('verify-started', e, e.role === 'responder' ? `${e.contact as string} started a live code check` : `live code check with ${e.contact as string} started; waiting for them`));
  on('verify-code', (e) => event('verify-code', e,
    `code with ${e.contact as string}: ${e.code as string}  compare it with them, then /verify yes ${e.contact as string} or /verify no ${e.contact as string}`));
  on('verify-failed', (e) => event('verify-failed', e, `live check with ${e.contact as string} failed: ${e.reason as string}`));
  on('verify-done', (e) => event('verify-done', e, e.verified ? `${e.contact as string} is now VERIFIED`
    : `WARNING: codes with ${e.contact as string} DID NOT MATCH: someone may be in the middle; recorded as mismatch`));

  const sendTo = (name: string, text: string): void => {
    const isGroup = m.groups().some((g) => g.name === name || g.id === name);
    const ids = isGroup ? m.sendGroup(name, text) : m.send(name, text);
    event('sent', { ids, to: name }, `  [${ids.map(short).join(',')}] to ${name}: sending`);
  };

  const commands: Record<string, (args: string[], rest: string) => Promise<boolean | void> | boolean | void> = {
    help: () => void HELP.forEach((l) => say(l)),
    quit: () => true,
    add: (a) => {
      if (!a[0]) return void say('usage: /add FP@HOST:PORT [name]');
      const c = m.addContact(a[0], a[1]);
      event('contact-added', { ...c }, `added ${c.petname} (${c.fingerprint.slice(0, 12)}@${c.peer}); fetching its certificate`);
    },
    contacts: () => {
      const list = m.contacts();
      if (opts.json) return void out.write(`${JSON.stringify({ event: 'contacts', contacts: list })}\n`);
      if (!list.length) say('no contacts yet: /add FP@HOST:PORT name');
      for (const c of list) {
        const flag = c.changed ? ' CHANGED' : c.verification === 'mismatch' ? ' MISMATCH' : c.verification === 'verified' ? ' verified' : '';
        say(`${c.petname.padEnd(16)} ${c.fingerprint}@${c.peer}${flag}${c.cert ? '' : ' (certificate pending)'}`);
      }
    },
    to: (a) => {
      if (!a[0]) return void say('usage: /to NAME');
      target = a[0];
      setPrompt();
      say(`talking to ${target}`);
      showRecent(m, view, target);
    },
    history: (a) => historyCommand(m, view, target, a[0]),
    search: (_a, rest) => searchCommand(m, view, target, rest),
    msg: (a, rest) => {
      const name = a[0];
      const text = rest.slice((name ?? '').length).trim();
      if (!name || !text) return void say('usage: /msg NAME TEXT');
      sendTo(name, text);
    },
    code: async (a) => {
      if (!a[0]) return void say('usage: /code NAME');
      const c = await m.codes(a[0]);
      event('code', { contact: a[0], ...c }, `your code ${c.mine}   ${a[0]}'s code ${c.theirs}\nsafety number ${c.safetyNumber}`);
    },
    verify: (a) => {
      if (a[0] === 'yes' || a[0] === 'no') {
        if (!a[1]) return void say(`usage: /verify ${a[0]} NAME`);
        return void m.confirmVerification(a[1], a[0] === 'yes');
      }
      if (!a[0]) return void say('usage: /verify NAME');
      m.verify(a[0]);
    },
    who: (a) => {
      if (a[0] === 'join') {
        const name = a.slice(1).join(' ');
        if (!name) return void say('usage: /who join NAME');
        m.joinDirectory(name);
        return void event('directory-join', { name }, `listed as "${name}" in your peer's directory (if it keeps one)`);
      }
      if (a[0] === 'leave') {
        m.joinDirectory('');
        return void event('directory-join', { name: '' }, 'left the directory');
      }
      m.listDirectory(a[0]);
    },
    group: (a) => {
      if (a[0] === 'list' || !a[0]) {
        const gs = m.groups();
        if (opts.json) return void out.write(`${JSON.stringify({ event: 'groups', groups: gs })}\n`);
        if (!gs.length) say('no groups: /group NAME MEMBER...');
        for (const g of gs) say(`${g.name}: ${g.members.map((x) => nameOf(x.fingerprint)).join(', ')}`);
        return;
      }
      if (a.length < 2) return void say('usage: /group NAME MEMBER...');
      m.createGroup(a[0], a.slice(1));
      event('group-created', { name: a[0] }, `group ${a[0]} created; /msg ${a[0]} TEXT or /to ${a[0]}`);
    },
  };

  const onLine = async (line: string): Promise<boolean> => {
    const text = line.trim();
    if (!text) return false;
    try {
      if (!text.startsWith('/')) {
        if (!target) say('no recipient: use /to NAME or /msg NAME TEXT (/help lists commands)');
        else sendTo(target, text);
        return false;
      }
      const [cmd = '', ...args] = text.slice(1).split(/\s+/);
      const f = commands[cmd];
      if (!f) {
        say(`unknown command /${cmd}; /help lists the commands`);
        return false;
      }
      return (await f(args, text.slice(1 + cmd.length).trim())) === true;
    } catch (e) {
      const msg = e instanceof PeerpostError ? e.message : `unexpected error: ${(e as Error).message}`;
      if (opts.json) out.write(`${JSON.stringify({ event: 'error', message: msg, code: (e as PeerpostError).code })}\n`);
      else say(`error: ${msg}`);
      return false;
    }
  };

  const code = await identityCodeAsync(m.identity.fingerprint);
  event('ready', { address: m.address, fingerprint: m.fingerprint, code }, `${opts.title}\nyour address  ${m.address}\nyour code     ${code}\ntype /help for commands`);
  showRecent(m, view, undefined);
  setPrompt();
  if (interactive) rl.prompt();

  await new Promise<void>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      rl.close();
      resolve();
    };
    let chain = Promise.resolve();
    rl.on('line', (line) => {
      chain = chain.then(async () => {
        if (done) return;
        if (await onLine(line)) finish();
        else if (interactive) rl.prompt();
      });
    });
    rl.on('close', () => {
      // A closed terminal ends the chat; a closed pipe leaves a node running until a signal.
      if (interactive) finish();
    });
    void stop.then(finish);
  });
  for (const [name, f] of listeners) (m.off as (n: string, f: unknown) => void)(name, f);
}

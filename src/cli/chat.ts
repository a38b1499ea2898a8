/**
 * The interactive chat of `peerpost client` and `peerpost node`. On a terminal it shows a prompt
 * and prints incoming messages and delivery states above the line being typed. When stdin is not a
 * terminal it reads the same commands line by line (a script can drive it from its first line: lines
 * given before the node is ready are kept and run once it is); with --json every event is printed
 * as one JSON object per line instead of text.
 *
 * Commands: see HELP (/history and /search read the message store, src/cli/chat-history.ts); a
 * line without a leading slash goes to the current recipient (/to).
 * Everything from the network (message text, names, group names, directory entries) goes through
 * safeText()/safeLines() before a terminal sees it; --json keeps the exact text. A message from a
 * stranger (not a contact) is a request: shown with the sender's 6-digit code, answered with
 * /accept, /block or a reply. The current /to and the blocked senders are kept in config.json.
 */
import qrcode from 'qrcode-terminal';
import { PeerpostError } from '../core/errors.js';
import { identityCodeAsync } from '../codes/identity-code.js';
import { fingerprintFromHex } from '../identity/certificate.js';
import { readConfig, updateConfig } from '../identity/home.js';
import type { Messenger } from '../api/messenger.js';
import type { CliIo } from './context.js';
import { ChatInput } from './chat-input.js';
import { colourWanted, deliveryLabel, isoLocal, lateMark, localTime, palette } from './format.js';
import { safeLines, safeText } from './safe-text.js';
import { normalizeFingerprint } from './dht.js';
import { historyCommand, searchCommand, showRecent, type HistoryView } from './chat-history.js';
import { changePeers } from './commands/peers.js';
import { resolveHostPort, savePeers } from './session.js';

export const HELP = [
  '/add FP [name]               add a contact found by fingerprint in the DHT (or FP@HOST:PORT)',
  '/contacts                    list contacts with their verification state',
  '/to NAME                     send the lines you type to NAME (a contact or group; remembered)',
  '/msg NAME TEXT               send one message to a contact or a group',
  '/history [N]                 the last N messages (default 20) with the current recipient',
  '/search TEXT                 messages with these words (with the current recipient, else all)',
  '/requests                    list message requests (messages from people who are not contacts)',
  '/accept ID [name]            accept a request: add the sender as a contact (ID: its first hex digits)',
  '/block ID | /unblock ID      drop every message from a sender silently, or stop doing so',
  '/code NAME                   show both 6-digit codes and the safety number',
  '/verify NAME                 live check with an online contact; then /verify yes|no NAME',
  '/who [HOST:PORT]             list the directory of a peer (default: ours)',
  '/who join NAME | /who leave  list yourself in your peer\'s directory, or leave it',
  '/group NAME MEMBER...        create a group; /group list; send with /msg NAME or /to NAME',
  '/peers [add|remove HOST:PORT] list your peers, or register with one more / one fewer (saved)',
  '/id                          your address and code, with a QR code of the address',
  '/help                        this list',
  '/quit                        leave (messages not yet delivered are kept and resent next time)',
];

const COMMANDS = HELP.flatMap((l) => [...l.matchAll(/\/([a-z]+)/g)].map((m) => `/${m[1]!}`)).filter((c, i, a) => a.indexOf(c) === i);
/** Commands whose first argument is a name (contact, group or request). */
const NAME_COMMANDS = new Set(['/to', '/msg', '/code', '/verify', '/accept', '/block', '/unblock', '/group']);
/** Requests remembered in the chat (strangers who wrote); the oldest is forgotten. */
export const CHAT_REQUESTS_MAX = 256;

export interface ChatOptions {
  io: CliIo;
  json: boolean;
  /** Heading printed at start (address, code). */
  title: string;
  input?: NodeJS.ReadableStream;
  interactive?: boolean;
  /** Home folder: the current /to and blocked senders are kept in its config.json. */
  home?: string;
  /** Clock for dates and late marks; default Date.now. */
  now?: () => number;
  /** Colours; default on a terminal unless NO_COLOR. */
  colour?: boolean;
  /** The web page's link (with its token), when --web serves one: in the heading and the ready event. */
  web?: string;
  /** FP (64 hex) to FP@HOST:PORT and its certificate through the DHT; throws a PeerpostError naming why not. None: /add needs FP@HOST:PORT. */
  resolveAddress?: (fp: string) => Promise<{ address: string; cert: Uint8Array }>;
}

interface Request {
  fp: string;
  peer: string;
  count: number;
  code: string;
}

/** Run the chat until /quit or `stop` resolves. Resolves when the user leaves. */
export async function runChat(m: Messenger, opts: ChatOptions, stop: Promise<void>): Promise<void> {
  const inputStream = opts.input ?? process.stdin;
  const interactive = opts.interactive ?? (process.stdin.isTTY === true && !opts.json);
  const now = opts.now ?? Date.now;
  const out = opts.io.stdout;
  const col = palette(opts.colour ?? colourWanted(interactive && process.stdout.isTTY === true));
  const requests = new Map<string, Request>();
  const unread = new Map<string, number>();
  let target: string | undefined;
  let ready = false;
  const input = new ChatInput(inputStream, process.stdout, interactive, (line) => complete(line));
  // readline takes Ctrl-C on a terminal: make it the signal it is, so the first one always stops.
  input.rl.on('SIGINT', () => void process.kill(process.pid, 'SIGINT'));

  const short = (id: string): string => id.slice(0, 8);
  const contactName = (fp: string): string | undefined => m.contacts().find((c) => c.fingerprint === fp)?.petname;
  const nameOf = (fp: string): string => safeText(contactName(fp) ?? `?${fp.slice(0, 12)}`);

  const prompt = (): string => {
    const others = [...unread.entries()].filter(([k, n]) => n > 0 && k !== target);
    const count = others.reduce((a, [, n]) => a + n, 0);
    const note = count ? col.warn(` (${count} unread: ${others.map(([k, n]) => `${k} ${n}`).join(', ')})`) : '';
    return `${target ? `[${safeText(target)}]` : ''}${note}> `;
  };
  const say = (line: string): void => {
    if (interactive && ready) {
      out.write('\r\x1b[2K');
      out.write(`${line}\n`);
      input.rl.setPrompt(prompt());
      input.rl.prompt(true);
    } else {
      out.write(`${line}\n`);
    }
  };
  const event = (type: string, data: Record<string, unknown>, text: string | undefined): void => {
    if (opts.json) out.write(`${JSON.stringify({ event: type, ...data })}\n`);
    else if (text !== undefined) say(text);
  };

  const view: HistoryView = { say, event: (type, data) => event(type, data, undefined), json: opts.json, nameOf };

  const complete = (line: string): [string[], string] => {
    const parts = line.split(' ');
    if (parts.length === 1) {
      const hits = COMMANDS.filter((c) => c.startsWith(line));
      return [hits.length ? hits.map((h) => `${h} `) : COMMANDS, line];
    }
    if (parts.length === 2 && NAME_COMMANDS.has(parts[0]!)) {
      const word = parts[1]!;
      const names = [...m.contacts().map((c) => c.petname), ...m.groups().map((g) => g.name), ...[...requests.keys()].map((fp) => fp.slice(0, 12))];
      if (parts[0] === '/verify') names.push('yes', 'no');
      return [names.filter((n) => n.startsWith(word)).map((n) => `${n} `), word];
    }
    return [[], line];
  };

  /** Save to config.json; resolves once written (or the failure said). */
  const saveConfig = (patch: Record<string, unknown>): Promise<void> => {
    if (!opts.home) return Promise.resolve();
    return updateConfig(opts.home, patch).then(() => undefined, (e: Error) => say(`error: could not save ${Object.keys(patch).join(', ')}: ${e.message}`));
  };

  /** A request's fingerprint from the first hex digits (at least 4) or the whole fingerprint; else undefined. */
  const requestFp = (ref: string): string | undefined => {
    const r = ref.replace(/^\?/, '').toLowerCase();
    if (!/^[0-9a-f]{4,64}$/.test(r)) return undefined;
    const hits = [...requests.keys()].filter((fp) => fp.startsWith(r));
    if (hits.length === 1) return hits[0];
    if (r.length === 64 && fingerprintFromHex(r)) return r;
    return undefined;
  };

  const listeners: Array<[string, (...a: never[]) => void]> = [];
  const on = <K extends string>(name: K, f: (e: Record<string, unknown>) => void | Promise<void>): void => {
    const g = ((e: Record<string, unknown>) => void f(e)) as (...a: never[]) => void;
    (m.on as (n: string, f: unknown) => void)(name, g);
    listeners.push([name, g]);
  };

  on('message', async (e) => {
    const from = e.from as string;
    const group = e.group as { name: string } | undefined;
    const sentAt = e.sentAt as number;
    const at = now();
    const time = localTime(sentAt, at);
    const late = lateMark(sentAt, at, at);
    const iso = { sentAtIso: isoLocal(sentAt), receivedAtIso: isoLocal(at) };
    if (e.request) {
      const known = requests.get(from);
      const code = known?.code ?? (await identityCodeAsync(fingerprintFromHex(from)!));
      if (!known && requests.size >= CHAT_REQUESTS_MAX) requests.delete(requests.keys().next().value!);
      requests.set(from, { fp: from, peer: e.fromPeer as string, count: (known?.count ?? 0) + 1, code });
      const id = from.slice(0, 12);
      const head = `${time} ${col.request(`REQUEST from ?${id}`)} (code ${code})${late}: `;
      event('message', { ...e, ...iso, code }, `${head}${safeLines(e.text as string, '    ')}${known ? '' : `\n    ${col.dim(`not a contact: /accept ${id} NAME, /block ${id}, or reply with /msg ${id} TEXT (nothing is sent to them until you do)`)}`}`);
    } else {
      const name = nameOf(from);
      const where = group ? ` in ${safeText(group.name)}` : '';
      event('message', { ...e, ...iso }, `${time} ${col.name(name)}${where}${late}: ${safeLines(e.text as string, '    ')}`);
    }
    const conversation = group ? group.name : (contactName(from) ?? from.slice(0, 12));
    if (conversation !== target) {
      unread.set(conversation, (unread.get(conversation) ?? 0) + 1);
      if (interactive && !opts.json) out.write('\x07');
      if (interactive && ready) {
        input.rl.setPrompt(prompt());
        input.rl.prompt(true);
      }
    }
  });
  on('delivery', (e) => {
    const label = deliveryLabel(e.state as string, e.reason as string | undefined);
    const coloured = e.state === 'failed' ? col.bad(label) : e.state === 'delivered' ? col.ok(label) : col.dim(label);
    event('delivery', e, `  [${short(e.id as string)}] to ${nameOf(e.to as string)}: ${coloured}`);
  });
  on('registered', (e) => event('registered', e, col.dim(`registered with peer ${e.peer as string}`)));
  on('peer-unavailable', (e) => event('peer-unavailable', e, col.warn(`our peer ${e.peer as string} does not answer (${e.tries as number} tries); still trying`)));
  on('peer-identity-changed', (e) => event('peer-identity-changed', e,
    col.bad(`WARNING: peer ${e.peer as string} now has identity ${e.actual as string}, not ${e.expected as string}; not registering`)));
  on('contact-changed', (e) => event('contact-changed', e,
    col.bad(`WARNING: contact ${safeText(e.petname as string)} CHANGED identity (was ${(e.previous as string).slice(0, 12)}); verify before trusting it`)));
  on('contact-cert', (e) => event('contact-cert', e, e.ok ? undefined : col.warn(`certificate of ${nameOf(e.fingerprint as string)} not usable: ${deliveryLabel('failed', e.reason as string).slice(8)}`)));
  on('group', (e) => {
    const g = e.group as { name: string; members: Array<{ fingerprint: string }> };
    event('group', e, `group ${safeText(g.name)}: ${g.members.map((x) => nameOf(x.fingerprint)).join(', ')}`);
  });
  on('directory', (e) => {
    const entries = e.entries as Array<{ name: string; address: string }>;
    const text = e.error === 'disabled' ? `peer ${e.peer as string} keeps no directory`
      : entries.length === 0 ? `nobody is listed at ${e.peer as string}`
      : [`directory of ${e.peer as string} (page ${(e.page as number) + 1} of ${e.pages as number}):`, ...entries.map((x) => `  ${safeText(x.name).padEnd(20)} ${safeText(x.address)}`)].join('\n');
    event('directory', e, text);
  });
  on('session-restarted', (e) => event('session-restarted', e, col.warn(e.by === 'them'
    ? `${nameOf(e.with as string)} restarted the encrypted session with you (their side was lost or restored); messages they missed are sent again`
    : `encrypted session with ${nameOf(e.with as string)} restarted (our messages stopped getting through); messages they missed are sent again`)));
  on('rejected', (e) => event('rejected', e, col.warn(`dropped a message that did not authenticate (${safeText(e.reason as string)})`)));
  on('verify-started', (e) => event('verify-started', e, e.role === 'responder' ? `${safeText(e.contact as string)} started a live code check` : `live code check with ${safeText(e.contact as string)} started; waiting for them`));
  on('verify-code', (e) => event('verify-code', e,
    `code with ${safeText(e.contact as string)}: ${col.me(e.code as string)}  compare it with them, then /verify yes ${safeText(e.contact as string)} or /verify no ${safeText(e.contact as string)}`));
  on('verify-answer', (e) => event('verify-answer', e, e.match ? `${safeText(e.contact as string)} says the codes match`
    : col.bad(`WARNING: ${safeText(e.contact as string)} says the codes DO NOT MATCH: someone may be in the middle; recorded as mismatch`)));
  on('verify-failed', (e) => event('verify-failed', e, col.warn(`live check with ${safeText(e.contact as string)} failed: ${safeText(e.reason as string)}`)));
  on('verify-done', (e) => {
    const who = safeText(e.contact as string);
    event('verify-done', e, e.verified
      ? col.ok(`${who} is now VERIFIED${e.theirAnswer === true ? ' (both of you said yes)' : ' (waiting for their answer; a no from them undoes it)'}`)
      : col.bad(`WARNING: codes with ${who} DID NOT MATCH${e.by === 'them' ? ` (${who} said no)` : ''}: someone may be in the middle; recorded as mismatch`));
  });

  /** Accept a request (a reply accepts it too): add the stranger as a contact, send the withheld receipts. */
  const accept = (fp: string, name?: string): string => {
    const c = m.acceptRequest(fp, name);
    requests.delete(fp);
    unread.delete(fp.slice(0, 12));
    event('contact-added', { ...c }, `accepted ${safeText(c.petname)} (${c.fingerprint.slice(0, 12)}@${c.peer}); /code ${safeText(c.petname)} to compare codes`);
    return c.petname;
  };
  /** A name as the user typed it: a request's id is accepted first (replying accepts). */
  const recipient = (name: string): string => {
    if (m.contacts().some((c) => c.petname === name || c.fingerprint === name) || m.groups().some((g) => g.name === name || g.id === name)) return name;
    const fp = requestFp(name);
    return fp && requests.has(fp) ? accept(fp) : name;
  };
  const sendTo = (name: string, text: string): void => {
    const to = recipient(name);
    const isGroup = m.groups().some((g) => g.name === to || g.id === to);
    const ids = isGroup ? m.sendGroup(to, text) : m.send(to, text);
    event('sent', { ids, to }, col.dim(`  [${ids.map(short).join(',')}] to ${safeText(to)}: sending`));
  };
  const setTarget = (name: string): void => {
    target = name;
    unread.delete(name);
    input.rl.setPrompt(prompt());
    void saveConfig({ chatTo: name });
  };

  const commands: Record<string, (args: string[], rest: string) => Promise<boolean | void> | boolean | void> = {
    help: () => void HELP.forEach((l) => say(l)),
    quit: () => true,
    id: async () => {
      const code = await identityCodeAsync(m.identity.fingerprint);
      if (opts.json) return void event('id', { address: m.address, fingerprint: m.fingerprint, code }, undefined);
      let qr = '';
      qrcode.generate(m.address, { small: true }, (s) => (qr = s));
      say(`your address  ${m.address}\nyour code     ${code}\n${qr}`);
    },
    add: async (a) => {
      if (!a[0]) return void say('usage: /add FP [name] or /add FP@HOST:PORT [name]');
      let address = a[0];
      let cert: Uint8Array | undefined;
      if (!address.includes('@')) {
        const fp = normalizeFingerprint(address);
        if (!fp) return void say(`"${safeText(address)}" is neither a fingerprint (64 hex) nor FP@HOST:PORT`);
        if (!opts.resolveAddress) return void say('no DHT (--no-dht): /add FP@HOST:PORT [name]');
        say(`looking up ${fp.slice(0, 12)} in the DHT`);
        ({ address, cert } = await opts.resolveAddress(fp));
      } else {
        const fp = normalizeFingerprint(address.slice(0, address.indexOf('@')));
        if (fp) address = `${fp}${address.slice(address.indexOf('@'))}`;
      }
      const c = m.addContact(address, a[1], cert);
      requests.delete(c.fingerprint);
      event('contact-added', { ...c }, `added ${safeText(c.petname)} (${c.fingerprint.slice(0, 12)}@${c.peer}); fetching its certificate`);
    },
    peers: async (a) => {
      if (a[0] === 'add' || a[0] === 'remove') {
        if (!a[1]) return void say(`usage: /peers ${a[0]} HOST:PORT`);
        const next = changePeers(m.peers().map((p) => p.peer), a[0], a[0] === 'add' ? await resolveHostPort(a[1], 'peer address') : a[1]);
        m.setPeers(next);
        if (opts.home) await savePeers(opts.home, next);
      } else if (a[0] !== undefined) {
        return void say('usage: /peers, /peers add HOST:PORT or /peers remove HOST:PORT');
      }
      const list = m.peers();
      if (opts.json) return void out.write(`${JSON.stringify({ event: 'peers', peers: list })}\n`);
      list.forEach((p, i) => say(`${i + 1}. ${safeText(p.peer)}  ${p.registered ? col.ok('registered') : col.dim('registering')}${i === 0 ? col.dim('  (first: named in your messages)') : ''}`));
    },
    contacts: () => {
      const list = m.contacts();
      if (opts.json) return void out.write(`${JSON.stringify({ event: 'contacts', contacts: list })}\n`);
      if (!list.length) say('no contacts yet: /add FP name');
      for (const c of list) {
        const flag = c.changed ? col.bad(' CHANGED') : c.verification === 'mismatch' ? col.bad(' MISMATCH') : c.verification === 'verified' ? col.ok(' verified') : '';
        say(`${col.name(safeText(c.petname).padEnd(16))} ${c.fingerprint}@${c.peer}${flag}${c.cert ? '' : col.dim(' (certificate pending)')}`);
      }
    },
    requests: () => {
      const list = [...requests.values()];
      if (opts.json) return void out.write(`${JSON.stringify({ event: 'requests', requests: list })}\n`);
      if (!list.length) return void say('no message requests');
      for (const r of list) say(`?${r.fp.slice(0, 12)}  code ${r.code}  ${r.count} message${r.count === 1 ? '' : 's'}  via ${r.peer}`);
    },
    accept: (a) => {
      const fp = a[0] ? requestFp(a[0]) : undefined;
      if (!fp) return void say(a[0] ? `no message request matches "${safeText(a[0])}"; /requests lists them` : 'usage: /accept ID [name]');
      accept(fp, a[1]);
    },
    block: async (a) => {
      if (!a[0]) return void say('usage: /block ID');
      const fp = requestFp(a[0]) ?? m.contacts().find((c) => c.petname === a[0])?.fingerprint;
      if (!fp) return void say(`no message request or contact matches "${safeText(a[0])}"`);
      m.block(fp);
      requests.delete(fp);
      // 'blocked' once the block is saved for next time.
      await saveConfig({ blocked: m.blocked() });
      event('blocked', { fingerprint: fp }, `blocked ${fp.slice(0, 12)}: their messages are dropped silently (/unblock ${fp.slice(0, 12)} to undo)`);
    },
    unblock: async (a) => {
      const r = (a[0] ?? '').replace(/^\?/, '');
      const fp = m.blocked().find((x) => r.length >= 4 && x.startsWith(r));
      if (!fp) return void say(a[0] ? `"${safeText(a[0])}" is not blocked` : 'usage: /unblock ID');
      m.unblock(fp);
      await saveConfig({ blocked: m.blocked() });
      event('unblocked', { fingerprint: fp }, `unblocked ${fp.slice(0, 12)}`);
    },
    to: (a) => {
      if (!a[0]) return void say('usage: /to NAME');
      setTarget(recipient(a[0]));
      say(`talking to ${safeText(target!)}`);
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
      const fp = requestFp(a[0]);
      const c = await m.codes(fp && requests.has(fp) ? fp : a[0]);
      event('code', { contact: a[0], ...c }, `your code ${c.mine}   ${safeText(a[0])}'s code ${c.theirs}\nsafety number ${c.safetyNumber}`);
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
        return void event('directory-join', { name }, `listed as "${safeText(name)}" in your peer's directory (if it keeps one)`);
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
        for (const g of gs) say(`${safeText(g.name)}: ${g.members.map((x) => nameOf(x.fingerprint)).join(', ')}`);
        return;
      }
      if (a.length < 2) return void say('usage: /group NAME MEMBER...');
      m.createGroup(a[0], a.slice(1));
      event('group-created', { name: a[0] }, `group ${safeText(a[0])} created; /msg ${safeText(a[0])} TEXT or /to ${safeText(a[0])}`);
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
        say(`unknown command /${safeText(cmd)}; /help lists the commands`);
        return false;
      }
      return (await f(args, text.slice(1 + cmd.length).trim())) === true;
    } catch (e) {
      const msg = e instanceof PeerpostError ? e.message : `unexpected error: ${(e as Error).message}`;
      if (opts.json) out.write(`${JSON.stringify({ event: 'error', message: msg, code: (e as PeerpostError).code })}\n`);
      else say(col.bad(`error: ${msg}`));
      return false;
    }
  };

  // Lines arriving from here on are queued by ChatInput and run after 'ready'.
  const cfg = opts.home ? await readConfig(opts.home).catch(() => ({} as Record<string, unknown>)) : {};
  if (Array.isArray(cfg.blocked)) for (const fp of cfg.blocked) if (typeof fp === 'string' && fingerprintFromHex(fp)) m.block(fp);
  if (typeof cfg.chatTo === 'string' && (m.contacts().some((c) => c.petname === cfg.chatTo) || m.groups().some((g) => g.name === cfg.chatTo))) target = cfg.chatTo;
  const code = await identityCodeAsync(m.identity.fingerprint);
  event('ready', { address: m.address, fingerprint: m.fingerprint, code, ...(target ? { to: target } : {}), ...(opts.web ? { web: opts.web } : {}) },
    `${opts.title}\nyour address  ${m.address}\nyour code     ${code}${opts.web ? `\nweb page      ${opts.web}` : ''}${target ? `\ntalking to    ${safeText(target)}` : ''}\ntype /help for commands (Tab completes)`);
  showRecent(m, view, target);
  ready = true;
  input.rl.setPrompt(prompt());
  if (interactive) input.rl.prompt();

  let stopped = false;
  void stop.then(() => {
    stopped = true;
    input.interrupt();
  });
  for (;;) {
    const line = await input.next();
    if (line === undefined) {
      // A closed terminal ends the chat; a closed pipe leaves a node running until a signal.
      if (stopped || interactive) break;
      await stop;
      break;
    }
    if (stopped) break;
    if (await onLine(line)) break;
    if (interactive) {
      input.rl.setPrompt(prompt());
      input.rl.prompt();
    }
  }
  input.close();
  for (const [name, f] of listeners) (m.off as (n: string, f: unknown) => void)(name, f);
}

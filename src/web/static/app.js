// The peerpost page: plain DOM code, no framework, no build step.
// Rule: text from the network (names, message text, group names) reaches the page only through
// text nodes (el() and textContent), after safeText()/safeLines() made control characters,
// escapes and bidirectional overrides visible; never innerHTML. Every action is a call of the
// local /api/ (the embedding API); live events come over one WebSocket.
import { safeText, safeLines } from '/safe-text.js';

const ACTION_HEADERS = { 'content-type': 'application/json', 'x-peerpost': '1' };
/** Seconds between reconnection attempts of the live feed (doubling up to the last). */
const RECONNECT_DELAYS_S = [1, 2, 5, 10];
/** Certificate checks remembered by the page; the oldest is forgotten. */
const CERT_RESULTS_MAX = 256;
/**
 * Live events kept while a conversation's history loads, to be applied on top of it once shown.
 * Past it the kept ones are dropped and the history is loaded again (nothing is lost).
 */
const LOADING_EVENTS_MAX = 512;

const S = {
  me: null,
  convs: [],
  /** The open screen: { screen: 'chat' | 'codes' | 'me' | 'add' | 'group', key?, ... } */
  view: { screen: 'none' },
  /** Live checks by fingerprint: { role, code?, done?, verified?, failed?, theirAnswer? } */
  checks: new Map(),
  /**
   * Shown sent messages by message id: { el, parts } where parts maps each id of the message (a
   * group message has one per member) to its { state, reason }; the least advanced one is shown.
   */
  stateEls: new Map(),
  /** Ids of the messages shown in the open conversation (a live event never shows one twice). */
  shownIds: new Set(),
  /** The newest message shown in the open conversation: it is read up to there. */
  lastShownId: undefined,
  /** The newest conversation list asked for: an older answer that comes later is dropped. */
  convsAsked: 0,
  /**
   * The newest history load of a conversation: { n, key, events: [] | null (too many) }. Live
   * events of the conversation that come while it loads are kept in `events` and applied once it
   * is shown (the history was read by the server before them, or they repeat what it shows).
   */
  chatLoad: null,
  chatLoads: 0,
  /** Whether the live feed said hello since the page started (the first one loads everything). */
  connected: false,
  pendingAdd: null,
  /** The last certificate check of each fingerprint (contact-cert events), at most CERT_RESULTS_MAX. */
  certResults: new Map(),
};

// ---- helpers ---------------------------------------------------------------------------------

/** An element with properties and children; strings become text nodes. */
function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k.startsWith('data-') || k === 'type' || k === 'name' || k === 'placeholder' || k === 'for' || k === 'id' || k === 'aria-label' || k === 'title' || k === 'autocomplete' || k === 'alt' || k === 'src' || k === 'dir') e.setAttribute(k, String(v));
    else e[k] = v;
  }
  for (const c of kids.flat()) if (c !== undefined && c !== null && c !== false) e.append(c);
  return e;
}

async function api(method, path, body) {
  const init = method === 'GET' ? { method } : { method, headers: ACTION_HEADERS, body: JSON.stringify(body ?? {}) };
  const r = await fetch(path, { ...init, credentials: 'same-origin' });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error?.message ?? `${r.status} ${r.statusText}`);
  return j;
}

function notice(text, action) {
  const n = document.getElementById('notice');
  n.replaceChildren(el('span', {}, text), action ? el('button', { type: 'button', onclick: () => { n.hidden = true; action.run(); } }, action.label) : null,
    el('button', { type: 'button', 'aria-label': 'close', onclick: () => { n.hidden = true; } }, '×'));
  n.hidden = false;
}

function fail(e) {
  notice(`error: ${e.message}`);
}

function timeText(ms) {
  const d = new Date(ms);
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === new Date().toDateString() ? hm : `${d.toLocaleDateString()} ${hm}`;
}

/** Delivery states from the least advanced: a group message shows the member furthest behind. */
const STATE_RANK = { failed: 0, queued: 1, held: 2, delivered: 3 };

function showState(shown) {
  let least;
  for (const p of shown.parts.values()) if (!least || (STATE_RANK[p.state] ?? 1) < (STATE_RANK[least.state] ?? 1)) least = p;
  shown.el.setAttribute('data-state', least.state);
  shown.el.textContent = stateText(least.state, least.reason);
}

function stateText(state, reason) {
  return reason && (state === 'queued' || state === 'failed' || state === 'held') ? `${state} (${reason})` : state;
}

function keyOf(ev) {
  return ev.group ? `g:${ev.group.id}` : ev.from;
}

function contactOf(key) {
  return S.convs.find((c) => c.key === key);
}

function main(...kids) {
  document.getElementById('main').replaceChildren(...kids);
}

// ---- conversations ---------------------------------------------------------------------------

/** Loads the conversation list; of answers that cross, only the one to the newest request is shown. */
async function loadConvs() {
  const n = ++S.convsAsked;
  const { conversations } = await api('GET', '/api/conversations');
  if (n !== S.convsAsked) return;
  S.convs = conversations;
  renderConvs();
}

function chatOpen(key) {
  return S.view.screen === 'chat' && S.view.key === key;
}

function renderConvs() {
  const list = document.getElementById('convs');
  list.replaceChildren(...S.convs.map((c) => el('li', {
    'data-key': c.key, 'data-kind': c.kind, class: chatOpen(c.key) ? 'current' : '',
    onclick: () => openChat(c.key).catch(fail),
  },
  el('span', { class: 'name', dir: 'auto' }, safeText(c.name)),
  // The conversation on screen has nothing unread, whatever an answer from before its read said.
  c.unread > 0 && !chatOpen(c.key) ? el('span', { class: 'unread', 'data-unread': c.unread }, String(c.unread)) : el('span', { class: 'kind' }, c.kind === 'contact' ? '' : c.kind),
  el('span', { class: 'preview', dir: 'auto' }, c.last ? `${c.last.dir === 'out' ? 'you: ' : ''}${safeText(c.last.text.replace(/\r?\n/g, ' '))}` : 'no messages yet'))));
}

async function openChat(key) {
  S.view = { screen: 'chat', key };
  const load = { n: ++S.chatLoads, key, events: [] };
  S.chatLoad = load;
  const c = contactOf(key);
  if (c) c.unread = 0;
  renderConvs();
  const group = key.startsWith('g:');
  const q = group ? `group=${encodeURIComponent(key.slice(2))}` : `with=${encodeURIComponent(key)}`;
  let messages;
  try {
    ({ messages } = await api('GET', `/api/history?${q}&limit=200`));
  } finally {
    // A load that failed, or whose conversation was left, keeps no more events.
    if (S.chatLoad === load && (messages === undefined || !chatOpen(key))) S.chatLoad = null;
  }
  if (S.chatLoad !== load) return;
  S.chatLoad = null;
  if (load.events === null) return openChat(key);
  S.stateEls.clear();
  S.shownIds.clear();
  S.lastShownId = undefined;
  const header = el('header', {},
    el('h2', { dir: 'auto', id: 'chat-title' }, safeText(c?.name ?? key.slice(0, 12))),
    c?.contact ? el('span', { class: `badge ${c.contact.verification}`, id: 'verification' }, c.contact.verification) : null,
    c?.kind === 'contact' ? el('button', { type: 'button', id: 'codes-btn', onclick: () => openCodes(key).catch(fail) }, 'Safety code') : null,
    c?.contact?.changed ? [
      el('span', { class: 'badge mismatch' }, 'their identity changed: nothing is sent until you accept it'),
      el('button', { type: 'button', id: 'confirm-btn', onclick: () => api('POST', '/api/contacts/confirm', { name: c.name }).then(() => loadConvs()).then(() => openChat(key)).catch(fail) }, 'Accept the new identity'),
    ] : null,
    c?.kind === 'request' ? [
      el('span', { class: 'badge' }, 'message request'),
      el('button', { type: 'button', id: 'accept-btn', onclick: () => accept(key).catch(fail) }, 'Accept'),
      el('button', { type: 'button', id: 'block-btn', onclick: () => block(key).catch(fail) }, 'Block'),
    ] : null);
  const list = el('ul', { id: 'messages', 'aria-label': 'Messages', 'data-key': key }, ...messages.map(messageItem));
  const input = el('input', { id: 'text', name: 'text', autocomplete: 'off', placeholder: 'Write a message', 'aria-label': 'Message' });
  const form = el('form', { id: 'composer', 'data-key': key, onsubmit: (e) => { e.preventDefault(); send(key, input).catch(fail); } },
    input, el('button', { type: 'submit', class: 'primary', id: 'send-btn' }, 'Send'));
  main(header, list, form);
  for (const ev of load.events) chatEvent(ev);
  list.scrollTop = list.scrollHeight;
  input.focus();
  renderConvs();
  await markRead(key);
}

/**
 * Tells the server the conversation was read up to the newest message shown, then loads the list
 * again (its counts come after the mark).
 */
async function markRead(key) {
  await api('POST', '/api/read', { key, last: S.lastShownId });
  await loadConvs();
}

/** A live message or delivery state of the open conversation: kept while it loads, else shown. */
function chatEvent(ev) {
  if (S.chatLoad) {
    if (ev.type === 'delivery' || keyOf(ev) === S.chatLoad.key) {
      if (S.chatLoad.events && S.chatLoad.events.length >= LOADING_EVENTS_MAX) S.chatLoad.events = null;
      S.chatLoad.events?.push(ev);
    }
    return false;
  }
  if (ev.type === 'delivery') {
    const shown = S.stateEls.get(ev.id);
    if (shown) {
      shown.parts.set(ev.id, { state: ev.state, reason: ev.reason });
      showState(shown);
    }
    return false;
  }
  const list = document.getElementById('messages');
  if (!chatOpen(keyOf(ev)) || !list || S.shownIds.has(ev.id)) return false;
  list.append(messageItem({ ...ev, dir: 'in', atMs: Date.now() }));
  list.scrollTop = list.scrollHeight;
  return true;
}

function messageItem(m) {
  const out = m.dir === 'out';
  for (const id of m.ids ?? [m.id]) S.shownIds.add(id);
  S.lastShownId = m.id;
  const from = out ? 'you' : safeText(m.fromName ?? m.from ?? m.contact ?? '').slice(0, 40) || 'unknown';
  let state = null;
  if (out) {
    state = el('span', { class: 'state' });
    const shown = { el: state, parts: new Map() };
    for (const p of m.parts ?? [{ id: m.id, state: m.state ?? 'queued', reason: m.reason }]) {
      shown.parts.set(p.id, { state: p.state ?? 'queued', reason: p.reason });
      S.stateEls.set(p.id, shown);
    }
    showState(shown);
  }
  return el('li', { class: out ? 'out' : 'in', 'data-id': m.id },
    el('div', { class: 'meta' }, el('span', { class: 'from', dir: 'auto' }, from), el('time', {}, timeText(m.atMs ?? m.sentAtMs ?? Date.now())), state),
    el('div', { class: 'text', dir: 'auto' }, safeLines(m.text, '')));
}

async function send(key, input) {
  const text = input.value;
  if (!text.trim()) return;
  const body = key.startsWith('g:') ? { group: key.slice(2), text } : { to: key, text };
  await api('POST', '/api/send', body);
  input.value = '';
  await openChat(key);
}

async function accept(key) {
  await api('POST', '/api/requests/accept', { fingerprint: key });
  await loadConvs();
  await openChat(key);
}

async function block(key) {
  await api('POST', '/api/requests/block', { fingerprint: key });
  notice('blocked: their messages are dropped from now on');
  await loadConvs();
}

// ---- safety codes ----------------------------------------------------------------------------

async function openCodes(key) {
  S.view = { screen: 'codes', key };
  const c = contactOf(key);
  const codes = await api('GET', `/api/codes?with=${encodeURIComponent(key)}`);
  if (S.view.screen !== 'codes' || S.view.key !== key) return;
  main(el('section', { class: 'panel', id: 'codes' },
    el('h2', { dir: 'auto' }, 'Safety code with ', safeText(c?.name ?? key.slice(0, 12))),
    el('p', {}, 'Compare these with your contact, in person or on a call you trust. They see the same numbers with the two codes swapped.'),
    el('p', {}, 'Your code ', el('span', { class: 'code', id: 'code-mine' }, codes.mine)),
    el('p', {}, 'Their code ', el('span', { class: 'code', id: 'code-theirs' }, codes.theirs)),
    el('p', {}, 'Safety number'),
    el('p', { class: 'number', id: 'safety-number' }, codes.safetyNumber),
    el('button', { type: 'button', id: 'verify-btn', class: 'primary', onclick: () => api('POST', '/api/verify', { with: key }).catch(fail) }, 'Live check now'),
    el('button', { type: 'button', onclick: () => openChat(key).catch(fail) }, 'Back to the chat'),
    el('div', { class: 'live', id: 'live' }, 'A live check shows a 6-digit code on both screens while you talk; you both say whether it is the same.')));
  renderConvs();
  renderCheck(key);
}

function renderCheck(fp) {
  if (S.view.screen !== 'codes' || S.view.key !== fp) return;
  const live = document.getElementById('live');
  const ch = S.checks.get(fp);
  if (!live || !ch) return;
  // The other side's answer alone does not rebuild the yes/no buttons (a click on them stays valid).
  const phase = ch.failed ? 'failed' : ch.done ? 'done' : ch.code ? `code ${ch.code}` : 'waiting';
  if (live.getAttribute('data-phase') === phase) {
    if (ch.theirAnswer !== undefined) {
      const p = document.getElementById('their-answer') ?? live.appendChild(el('p', { id: 'their-answer' }));
      p.textContent = `they answered: ${ch.theirAnswer ? 'yes' : 'no'}`;
    }
    return;
  }
  live.setAttribute('data-phase', phase);
  const parts = [];
  if (ch.failed) parts.push(el('p', { class: 'bad', id: 'live-result' }, `the check failed: ${ch.failed}`));
  else if (ch.done) parts.push(el('p', { class: ch.verified ? 'ok' : 'bad', id: 'live-result' }, ch.verified ? 'verified: the codes matched on both sides' : 'not verified: a code did not match (someone may be in between)'));
  else if (ch.code) {
    parts.push(el('p', {}, 'Live code ', el('span', { class: 'code', id: 'live-code' }, ch.code)), el('p', {}, 'Does your contact see the same code?'),
      el('button', { type: 'button', id: 'live-yes', class: 'primary', onclick: () => answer(fp, true) }, 'Yes, the same'),
      el('button', { type: 'button', id: 'live-no', onclick: () => answer(fp, false) }, 'No'));
  } else parts.push(el('p', {}, 'waiting for your contact…'));
  if (ch.theirAnswer !== undefined) parts.push(el('p', { id: 'their-answer' }, `they answered: ${ch.theirAnswer ? 'yes' : 'no'}`));
  live.replaceChildren(...parts);
}

function answer(fp, match) {
  api('POST', '/api/verify/answer', { with: fp, match }).catch(fail);
}

function onVerify(ev) {
  const fp = ev.fingerprint;
  const ch = S.checks.get(fp) ?? {};
  if (ev.type === 'verify-started') S.checks.set(fp, { role: ev.role });
  else if (ev.type === 'verify-code') S.checks.set(fp, { ...ch, code: ev.code });
  else if (ev.type === 'verify-answer') S.checks.set(fp, { ...ch, theirAnswer: ev.match });
  else if (ev.type === 'verify-failed') S.checks.set(fp, { ...ch, failed: ev.reason });
  else if (ev.type === 'verify-done') S.checks.set(fp, { ...ch, done: true, verified: ev.verified });
  if (ev.type === 'verify-done') loadConvs().catch(fail);
  if (S.view.screen === 'codes' && S.view.key === fp) renderCheck(fp);
  else if (ev.type === 'verify-started' && ev.role === 'responder') {
    notice(`${safeText(ev.contact)} asks for a live check of your safety code`, { label: 'Compare codes', run: () => openCodes(fp).catch(fail) });
  }
}

// ---- you, adding contacts, groups ------------------------------------------------------------

async function openMe() {
  S.view = { screen: 'me' };
  S.me = await api('GET', '/api/me');
  main(el('section', { class: 'panel', id: 'me' },
    el('h2', {}, 'Your address'),
    el('p', {}, 'Give it to the people who should reach you; they add it as a contact.'),
    el('p', { class: 'address', id: 'my-address' }, S.me.address),
    el('p', {}, 'Your code ', el('span', { class: 'code', id: 'my-code' }, S.me.code)),
    el('img', { class: 'qr', id: 'qr', src: '/api/qr.svg', alt: 'QR code of your address' })));
  renderConvs();
}

function openAdd() {
  S.view = { screen: 'add' };
  const address = el('input', { id: 'add-address', name: 'address', placeholder: 'fingerprint@host:port', autocomplete: 'off', 'aria-label': 'Address' });
  const name = el('input', { id: 'add-name', name: 'name', placeholder: 'name (for you)', autocomplete: 'off', 'aria-label': 'Name' });
  const result = el('p', { id: 'add-result', role: 'status' });
  const form = el('form', { id: 'add-form', onsubmit: (e) => { e.preventDefault(); addContact(address.value, name.value, result).catch((err) => { result.className = 'bad'; result.textContent = err.message; }); } },
    el('label', { for: 'add-address' }, 'Their address (fingerprint@host:port)'), address,
    el('label', { for: 'add-name' }, 'A name for them'), name,
    el('button', { type: 'submit', class: 'primary', id: 'add-submit' }, 'Add contact'), result);
  main(el('section', { class: 'panel', id: 'add' }, el('h2', {}, 'Add a contact'), form));
  renderConvs();
  address.focus();
}

async function addContact(address, name, result) {
  result.className = '';
  result.textContent = 'adding…';
  const { contact } = await api('POST', '/api/contacts', { address, name });
  S.pendingAdd = contact.fingerprint;
  result.setAttribute('data-fingerprint', contact.fingerprint);
  // The check may have ended before this answer came (its event is kept in S.certResults).
  const early = S.certResults.get(contact.fingerprint);
  if (contact.certificate) showCertResult(result, { ok: true });
  else if (early) showCertResult(result, early);
  else result.textContent = `added ${contact.name}: checking their certificate with their peer…`;
  await loadConvs();
}

function showCertResult(result, ev) {
  result.className = ev.ok ? 'ok' : 'bad';
  result.textContent = ev.ok ? 'certificate checked: you can write now' : `their certificate could not be checked: ${ev.reason ?? 'unknown reason'}`;
  result.setAttribute('data-ok', String(ev.ok));
}

function onContactCert(ev) {
  S.certResults.set(ev.fingerprint, ev);
  if (S.certResults.size > CERT_RESULTS_MAX) S.certResults.delete(S.certResults.keys().next().value);
  const result = document.getElementById('add-result');
  if (S.view.screen === 'add' && S.pendingAdd === ev.fingerprint && result) showCertResult(result, ev);
  loadConvs().catch(fail);
}

function openGroup() {
  S.view = { screen: 'group' };
  const name = el('input', { id: 'group-name', placeholder: 'group name', autocomplete: 'off', 'aria-label': 'Group name' });
  const boxes = S.convs.filter((c) => c.kind === 'contact').map((c) => el('label', {}, el('input', { type: 'checkbox', value: c.name }), ' ', safeText(c.name)));
  const result = el('p', { role: 'status' });
  const form = el('form', { id: 'group-form', onsubmit: (e) => {
    e.preventDefault();
    const members = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    api('POST', '/api/groups', { name: name.value, members }).then(async ({ id }) => { await loadConvs(); await openChat(`g:${id}`); })
      .catch((err) => { result.className = 'bad'; result.textContent = err.message; });
  } }, name, el('div', { class: 'members' }, boxes.length ? boxes : 'add contacts first'), el('button', { type: 'submit', class: 'primary' }, 'Create group'), result);
  main(el('section', { class: 'panel', id: 'group' }, el('h2', {}, 'New group'), form));
  renderConvs();
}

// ---- live events -----------------------------------------------------------------------------

function onEvent(ev) {
  switch (ev.type) {
    case 'hello':
      // The first event on every (re)connection: what came before it is loaded now.
      setStatus('online');
      refresh().catch(fail);
      return;
    case 'registered':
      setStatus('online');
      return;
    case 'peer-identity-changed':
      setStatus('your peer\'s identity changed: not registering (see the terminal)');
      return;
    case 'peer-unavailable':
      setStatus(`your peer does not answer (${ev.tries} tries); messages wait`);
      return;
    case 'message':
      // Shown in the open conversation, it is read; elsewhere it counts in the list.
      if (chatEvent(ev)) markRead(keyOf(ev)).catch(fail);
      else loadConvs().catch(fail);
      return;
    case 'delivery':
      chatEvent(ev);
      return;
    case 'contact-cert':
      onContactCert(ev);
      return;
    case 'group':
    case 'contact-changed':
      loadConvs().catch(fail);
      return;
    default:
      if (ev.type.startsWith('verify-')) onVerify(ev);
  }
}

function setStatus(t) {
  document.getElementById('status').textContent = t;
}

function connect(attempt = 0) {
  const ws = new WebSocket(`ws://${location.host}/api/events`);
  let opened = false;
  ws.onopen = () => {
    opened = true;
  };
  ws.onmessage = (m) => {
    try {
      onEvent(JSON.parse(m.data));
    } catch (e) {
      fail(e);
    }
  };
  ws.onclose = () => {
    setStatus('offline: reconnecting…');
    const next = opened ? 0 : Math.min(attempt, RECONNECT_DELAYS_S.length - 1);
    setTimeout(() => connect(attempt + 1), RECONNECT_DELAYS_S[next] * 1000);
  };
}

/** Loads the list (and the open conversation) again; the first time, shows the add screen to a page without contacts. */
async function refresh() {
  const first = !S.connected;
  S.connected = true;
  await loadConvs();
  if (S.view.screen === 'chat') await openChat(S.view.key);
  else if (first && S.view.screen === 'none' && S.convs.length === 0) openAdd();
}

async function start() {
  document.getElementById('me-btn').addEventListener('click', () => openMe().catch(fail));
  document.getElementById('add-btn').addEventListener('click', openAdd);
  document.getElementById('group-btn').addEventListener('click', openGroup);
  // The live feed first, the list on its hello: no event falls between the two.
  connect();
  S.me = await api('GET', '/api/me');
  document.getElementById('me-btn').textContent = `You · ${S.me.code}`;
}

start().catch(fail);

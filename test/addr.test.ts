// Address text: addrKey() and its reverse parseAddrKey(), and addrIs(), which compares a datagram's
// source with a registered client's address text without building the text.
import t from 'tap';
import { addrIs, addrKey, parseAddrKey, type Addr } from '../src/core/types.js';

const cases: Addr[] = [
  { host: '127.0.0.1', port: 7777 },
  { host: '198.18.0.1', port: 1 },
  { host: '::1', port: 65535 },
  { host: 'fe80::1', port: 40000 },
  { host: '::ffff:198.18.0.2', port: 5 },
];

t.test('parseAddrKey reverses addrKey', async (t) => {
  for (const a of cases) t.same(parseAddrKey(addrKey(a)), a, addrKey(a));
});

t.test('addrIs: the same address and no other', async (t) => {
  for (const a of cases) {
    const s = addrKey(a);
    t.ok(addrIs(s, a), `${s} is itself`);
    t.notOk(addrIs(s, { host: a.host, port: a.port + 1 }), `${s}: another port`);
    t.notOk(addrIs(s, { host: a.host, port: a.port * 10 }), `${s}: a longer port`);
    for (const b of cases) if (b !== a) t.notOk(addrIs(s, b), `${s} is not ${addrKey(b)}`);
  }
  t.notOk(addrIs('127.0.0.1:80', { host: '127.0.0.12', port: 80 }), 'a host that extends another');
  t.notOk(addrIs('127.0.0.12:80', { host: '127.0.0.1', port: 280 }), 'a host cut short, its tail read as port');
  t.notOk(addrIs('[::1]:80', { host: '::1]', port: 80 }), 'brackets are not part of a host');
  t.notOk(addrIs('::1:80', { host: '::1', port: 80 }), 'an IPv6 host is written in brackets');
  t.notOk(addrIs('1.2.3.4:', { host: '1.2.3.4', port: 0 }), 'no port');
});

/**
 * The recipient node of the burst benchmark (scripts/bench/store.ts), in a child process so that
 * each node has a core. Argument: its home folder (with its store already filled). It reports its
 * address over IPC, then takes: { contact: ADDRESS } (add the sender as a contact, answer when its
 * certificate is checked), { expect: N } (answer { shown } when N messages were shown), 'exit'.
 */
import { Node } from '../../src/api/node.js';

const home = process.argv[2];
if (!home) throw new Error('burst-child: home folder needed');
const node = await Node.start({ host: '127.0.0.1', port: 0, home, summaryIntervalMs: 0 });
let shown = 0;
let expect = Number.POSITIVE_INFINITY;
node.on('message', () => {
  if (++shown === expect) process.send?.({ shown });
});
node.on('contact-cert', (e) => {
  if (e.ok) process.send?.({ contactReady: true });
});
process.on('message', (m: { contact?: string; expect?: number } | string) => {
  if (m === 'exit') return void node.close().then(() => process.exit(0));
  if (typeof m !== 'object') return;
  if (m.contact) node.addContact(m.contact, 'sender');
  if (m.expect !== undefined) {
    expect = m.expect;
    shown = 0;
  }
});
const wait = (): void => {
  if (node.registered) process.send?.({ address: node.address });
  else setTimeout(wait, 5);
};
wait();

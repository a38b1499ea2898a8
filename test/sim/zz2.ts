import { runSeed } from './scenario.js';
const lim = JSON.parse(process.argv[2] ?? '{}');
const rows: Array<[number, number, number, number, number, number]> = [];
for (let s = 1; s <= 60; s++) {
  const t0 = performance.now();
  const r = runSeed({ seed: s, limits: lim });
  rows.push([s, Math.round(performance.now() - t0), r.clients, r.messages, Math.round(r.virtualMs / 60000), r.steps]);
}
rows.sort((a, b) => b[1] - a[1]);
console.log(rows.slice(0, 15).map((r) => r.join('\t')).join('\n'));
console.log('sum', rows.reduce((a, r) => a + r[1], 0));

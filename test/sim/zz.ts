import { runSeeds, formatSummary } from './report.js';
const lim = JSON.parse(process.argv[2] ?? '{}');
const s = runSeeds(Number(process.argv[3] ?? 1), Number(process.argv[4] ?? 40), lim);
console.log(formatSummary(s, true));

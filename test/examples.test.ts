/** The runnable examples, run as a user would (they import 'peerpost' from the built package). */
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, ensureBuilt } from './helpers/cli.js';

function run(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  ensureBuilt();
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.PEERPOST_HOME;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', file)], { cwd: ROOT, env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

t.test('a peer and two clients in one script', async (t) => {
  const r = await run('peer-and-two-clients.ts');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /bob received from alice: hello Bob, this is Alice/);
  t.match(r.stdout, /alice saw the end-to-end receipt: delivered/);
  t.match(r.stdout, /alice received from bob: hi Alice!/);
  t.match(r.stdout, /safety number (\d{5} ){11}\d{5}/);
  t.match(r.stdout, /^done$/m);
});

t.test('a node embedded in an app', async (t) => {
  const r = await run('embedded-node.ts');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /user got: echo: ping/);
  t.match(r.stdout, /^done$/m);
});

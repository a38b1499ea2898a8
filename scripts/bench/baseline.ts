/**
 * The code the relay is compared with: commit BASELINE_COMMIT (the last one before protocol 2,
 * whose clients are trusted by source address) taken out of this checkout's git history into a
 * temporary directory with `git archive`, with this checkout's node_modules linked in (its
 * dependencies are the same). Its own scripts/bench/server-child.ts runs its peer and its own
 * scripts/bench/relay.ts drives it, both through tsx as this checkout's are, so the two rows of
 * the comparison come from the same measurement of two versions. Nothing is compiled into the
 * checkout and git's worktree list is not touched; remove() deletes the directory.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BASELINE_COMMIT = '1b554c2';

export interface Baseline {
  commit: string;
  dir: string;
  /** Paths of its server-child.ts, relay.ts and relay-inproc.ts. */
  serverChild: string;
  relayModule: string;
  relayInProcessModule: string;
  remove(): void;
}

/** The baseline ready to run, or the reason it cannot be (one line). */
export function prepareBaseline(repo: string, commit = BASELINE_COMMIT): Baseline | string {
  let full: string;
  try {
    full = execFileSync('git', ['-C', repo, 'rev-parse', '--verify', '--quiet', `${commit}^{commit}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return `commit ${commit} is not in this checkout's git history (no .git, or a shallow clone)`;
  }
  if (!existsSync(join(repo, 'node_modules'))) return 'this checkout has no node_modules to lend the baseline (run npm ci)';
  const dir = mkdtempSync(join(tmpdir(), 'peerpost-baseline-'));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    const tar = join(dir, 'baseline.tar');
    execFileSync('git', ['-C', repo, 'archive', '--format=tar', '-o', tar, full, 'package.json', 'tsconfig.json', 'src', 'scripts/bench'], { stdio: 'ignore' });
    execFileSync('tar', ['-xf', tar, '-C', dir], { stdio: 'ignore' });
    rmSync(tar);
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
  } catch (e) {
    remove();
    return `could not extract commit ${commit}: ${(e as Error).message.split('\n')[0]}`;
  }
  return { commit: full.slice(0, 12), dir, serverChild: join(dir, 'scripts', 'bench', 'server-child.ts'), relayModule: join(dir, 'scripts', 'bench', 'relay.ts'), relayInProcessModule: join(dir, 'scripts', 'bench', 'relay-inproc.ts'), remove };
}

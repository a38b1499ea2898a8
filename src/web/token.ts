/**
 * The web page's token: 32 random bytes (base64url), new at every start, saved in the home folder
 * as WEB_TOKEN_FILE with mode 0600 (written atomically: a temporary file created exclusively, then
 * renamed, so no symlink planted at the name is followed). The printed link carries it once; the
 * page then holds it in an HttpOnly cookie.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomic } from '../identity/home.js';

export const WEB_TOKEN_FILE = 'web-token';
export const WEB_TOKEN_BYTES = 32;

export function newWebToken(random: (n: number) => Uint8Array = randomBytes): string {
  return Buffer.from(random(WEB_TOKEN_BYTES)).toString('base64url');
}

/** Save `token` in `home` (mode 0600); returns the file's path. */
export async function saveWebToken(home: string, token: string): Promise<string> {
  const file = join(home, WEB_TOKEN_FILE);
  await writeFileAtomic(file, `${token}\n`, { mode: 0o600 });
  return file;
}

/**
 * The home folder of a node: where its identity (cert.pem, key.pem) and its settings
 * (config.json) live. Resolution order: an explicit option, then $PEERPOST_HOME, then
 * $XDG_CONFIG_HOME/peerpost, then ~/.config/peerpost. The folder is created with mode 0700.
 * Every file is written atomically: a temporary file in the same folder (a random name, created
 * with O_EXCL, so a symlink planted there is never followed), fsync, then rename.
 *
 * A folder that exists is used only when it is this user's and nobody else can write to it
 * (checkHome): otherwise another local user could plant a contact marked verified, or a symlink.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { PeerpostError, UsageError } from '../core/errors.js';

export const HOME_DIR_MODE = 0o700;
export const CONFIG_FILE_NAME = 'config.json';
/** config.json holds a few settings; anything larger is refused rather than read. */
export const CONFIG_FILE_BYTES_MAX = 64 * 1024;

/**
 * The home folder to use: `opt` if given, else $PEERPOST_HOME, else $XDG_CONFIG_HOME/peerpost,
 * else ~/.config/peerpost. Returns an absolute path; creates nothing.
 */
export function resolveHome(opt?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (opt !== undefined) {
    if (typeof opt !== 'string' || opt.trim() === '') {
      throw new UsageError('PEERPOST_BAD_HOME', 'the home folder must be a non-empty path');
    }
    return resolve(opt);
  }
  const fromEnv = env['PEERPOST_HOME'];
  if (fromEnv) return resolve(fromEnv);
  const xdg = env['XDG_CONFIG_HOME'];
  // The XDG spec says relative values are invalid and must be ignored.
  const base = xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.config');
  return resolve(base, 'peerpost');
}

/** Create the home folder (mode 0700) if needed; refuse a path that is not a folder, or one that is not safe (checkHome). */
export async function ensureHome(home: string): Promise<void> {
  try {
    await mkdir(home, { recursive: true, mode: HOME_DIR_MODE });
    const st = await stat(home);
    if (!st.isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
  } catch (e) {
    throw homeError(home, e);
  }
  checkHome(home);
}

/**
 * Refuse an existing home folder that another user owns or that group or others may write to
 * (PEERPOST_HOME_UNSAFE, saying how to fix it). A folder that does not exist yet passes (it is
 * created with mode 0700). `uid` defaults to this process's; on a system without uids nothing is checked.
 */
export function checkHome(home: string, uid: number | undefined = process.getuid?.()): void {
  let st;
  try {
    st = statSync(home);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw homeError(home, e);
  }
  if (!st.isDirectory()) throw homeError(home, Object.assign(new Error('not a folder'), { code: 'ENOTDIR' }));
  if (uid === undefined) return;
  if (st.uid !== uid) {
    throw new PeerpostError('PEERPOST_HOME_UNSAFE',
      `refusing the home folder ${home}: it belongs to another user (uid ${st.uid}; you are uid ${uid}), who could change your contacts; use a folder of your own with --home DIR or PEERPOST_HOME`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new PeerpostError('PEERPOST_HOME_UNSAFE',
      `refusing the home folder ${home}: other users can write to it (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); fix it with: chmod go-w ${home}`);
  }
}

/** Turn a file-system error on the home folder into PEERPOST_HOME_UNREADABLE. */
export function homeError(path: string, e: unknown): PeerpostError {
  const code = (e as NodeJS.ErrnoException)?.code ?? 'unknown';
  return new PeerpostError('PEERPOST_HOME_UNREADABLE', `cannot use ${path}: ${code} (${(e as Error)?.message ?? e})`, {
    cause: e,
  });
}

export interface AtomicWriteOptions {
  /** File mode of the new file; default 0o600. */
  mode?: number;
  /** Fail with EEXIST instead of replacing an existing file (the new file appears by link(2)). */
  exclusive?: boolean;
}

/**
 * Write `data` to `file` atomically: a temporary file beside it (created exclusively with `mode`),
 * fsync, rename over `file`. Readers see either the old or the new content, never a mix.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const mode = opts.mode ?? 0o600;
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // the umask may have narrowed or the mode argument been ignored
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    if (opts.exclusive) {
      await link(tmp, file); // atomic and never replaces: EEXIST if the file is there
      await unlink(tmp);
    } else {
      await rename(tmp, file);
    }
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/** Settings kept in config.json. Unknown keys are kept as they are. */
export interface PeerpostConfig {
  /** The address of this client's own (first) peer, `host:port`. */
  peer?: string;
  /** All of this client's home peers, in order (the first is `peer`). */
  peers?: string[];
  [key: string]: unknown;
}

export function configPath(home: string): string {
  return join(home, CONFIG_FILE_NAME);
}

/**
 * Read config.json from the home folder. A missing file is an empty config. Broken JSON, a value
 * that is not an object, or a file over CONFIG_FILE_BYTES_MAX throws PEERPOST_BAD_CONFIG naming the file.
 */
export async function readConfig(home: string): Promise<PeerpostConfig> {
  const file = configPath(home);
  let text: string;
  try {
    const st = await stat(file);
    if (st.size > CONFIG_FILE_BYTES_MAX) {
      throw new PeerpostError('PEERPOST_BAD_CONFIG', `${file} is ${st.size} bytes, more than ${CONFIG_FILE_BYTES_MAX}`);
    }
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof PeerpostError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw homeError(file, e);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PeerpostError('PEERPOST_BAD_CONFIG', `${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new PeerpostError('PEERPOST_BAD_CONFIG', `${file} must hold a JSON object`);
  }
  const cfg = value as PeerpostConfig;
  if (cfg.peer !== undefined && typeof cfg.peer !== 'string') {
    throw new PeerpostError('PEERPOST_BAD_CONFIG', `${file}: "peer" must be a string`);
  }
  if (cfg.peers !== undefined && (!Array.isArray(cfg.peers) || cfg.peers.length === 0 || !cfg.peers.every((p) => typeof p === 'string'))) {
    throw new PeerpostError('PEERPOST_BAD_CONFIG', `${file}: "peers" must be a non-empty list of strings`);
  }
  return cfg;
}

/** Replace config.json atomically (mode 0600), creating the home folder if needed. */
export async function writeConfig(home: string, cfg: PeerpostConfig): Promise<void> {
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) {
    throw new TypeError('config must be a plain object');
  }
  const text = `${JSON.stringify(cfg, null, 2)}\n`;
  if (Buffer.byteLength(text) > CONFIG_FILE_BYTES_MAX) {
    throw new PeerpostError('PEERPOST_BAD_CONFIG', `config would be larger than ${CONFIG_FILE_BYTES_MAX} bytes`);
  }
  await ensureHome(home);
  await writeFileAtomic(configPath(home), text, { mode: 0o600 });
}

/** Read, merge `patch` into, and write config.json. Keys set to undefined are removed. Returns the result. */
export async function updateConfig(home: string, patch: PeerpostConfig): Promise<PeerpostConfig> {
  const cfg: PeerpostConfig = { ...(await readConfig(home)) };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete cfg[k];
    else cfg[k] = v;
  }
  await writeConfig(home, cfg);
  return cfg;
}

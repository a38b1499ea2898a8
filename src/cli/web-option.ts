/**
 * `--web`, `--web-port N` and `--web-host ADDR` of `node` and `client`: the local web page
 * (src/web). It listens on 127.0.0.1 unless --web-host names another address, which prints a
 * warning: anyone who can reach that address and learns the token can read and send messages.
 */
import type { Argv } from 'yargs';
import type { Messenger } from '../api/messenger.js';
import type { Logger } from '../core/types.js';
import { isLoopback } from '../web/guard.js';
import { WEB_HOST_DEFAULT, WEB_PORT_DEFAULT, type WebServer } from '../web/server.js';
import type { HomeDht } from '../discovery/home-dht.js';
import { portOption } from './session.js';
import { runChat } from './chat.js';
import type { CliContext } from './context.js';
import { resolveAddress } from './dht.js';

export interface WebArgs {
  web: boolean;
  'web-port'?: number;
  'web-host'?: string;
}

export function webOptions<T>(y: Argv<T>): Argv<T & WebArgs> {
  return y
    .option('web', { type: 'boolean', default: false, describe: `serve the chat as a page on http://${WEB_HOST_DEFAULT}:${WEB_PORT_DEFAULT} (the link with its token is printed)` })
    .option('web-port', { type: 'number', describe: `TCP port of the web page (default ${WEB_PORT_DEFAULT}; 0: any free port; implies --web)`, requiresArg: true })
    .option('web-host', { type: 'string', describe: `address the web page listens on (default ${WEB_HOST_DEFAULT}; anything else is reachable from the network; implies --web)`, requiresArg: true }) as never;
}

/** Start the page when --web, --web-port or --web-host was given; undefined otherwise. */
export async function startWeb(m: Messenger, argv: WebArgs, home: string, log: Logger, note: (line: string) => void): Promise<WebServer | undefined> {
  if (!argv.web && argv['web-port'] === undefined && argv['web-host'] === undefined) return undefined;
  const port = argv['web-port'] === undefined ? WEB_PORT_DEFAULT : portOption(argv['web-port']);
  const host = argv['web-host'] ?? WEB_HOST_DEFAULT;
  const { WebServer } = await import('../web/server.js');
  const web = await WebServer.start({ messenger: m, home, host, port, logger: log });
  if (!isLoopback(host)) {
    note(`peerpost: warning: the web page listens on ${host}, reachable from other machines; whoever has its link can read and send your messages`);
  }
  return web;
}

/**
 * The chat of `node` and `client` until `stop`: with the page when --web asks for it (its link in
 * the heading and the ready event), and `/add FP` resolved through `dht` when there is one.
 */
export async function chatWithPage(m: Messenger, argv: WebArgs, ctx: CliContext, title: string, dht: HomeDht | null, stop: Promise<void>): Promise<void> {
  const web = await startWeb(m, argv, ctx.home, ctx.log, ctx.note);
  try {
    await runChat(m, {
      io: ctx.io, json: ctx.json, title, home: ctx.home,
      ...(web ? { web: web.url } : {}),
      ...(dht ? { resolveAddress: (fp: string) => resolveAddress(dht, fp) } : {}),
    }, stop);
  } finally {
    await web?.close();
  }
}

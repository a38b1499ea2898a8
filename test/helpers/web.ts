/**
 * Nodes with their web page for tests: a real Node (peer and client on one UDP socket) on
 * 127.0.0.1 with any free port, and its WebServer on 127.0.0.1 with any free port.
 */
import { join } from 'node:path';
import { Node, type NodeStartOptions } from '../../src/api/node.js';
import { WebServer } from '../../src/web/server.js';
import { ensureBuilt, tempDir } from './cli.js';

export interface WebNode {
  node: Node;
  web: WebServer;
  home: string;
  close(): Promise<void>;
}

/** A node and its page; dist/ is built first (the page imports dist/cli/safe-text.js). */
export async function startWebNode(name: string, clientOptions?: NodeStartOptions['clientOptions']): Promise<WebNode> {
  ensureBuilt();
  const tmp = tempDir(`peerpost-web-${name}-`);
  const home = join(tmp.dir, 'home');
  const node = await Node.start({ host: '127.0.0.1', port: 0, home, ...(clientOptions ? { clientOptions } : {}) });
  let web: WebServer;
  try {
    web = await WebServer.start({ messenger: node, home, port: 0 });
  } catch (e) {
    await node.close();
    tmp.cleanup();
    throw e;
  }
  return {
    node, web, home,
    async close() {
      await web.close();
      await node.close();
      tmp.cleanup();
    },
  };
}

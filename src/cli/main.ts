#!/usr/bin/env node
/**
 * The peerpost command. Each command is one module in ./commands exporting a yargs CommandModule;
 * add a command by adding its module and one entry to `commands`.
 */
import { hideBin } from 'yargs/helpers';
import { idCommand } from './commands/id.js';
import { nodeCommand } from './commands/node.js';
import { peerCommand } from './commands/peer.js';
import { clientCommand } from './commands/client.js';
import { sendCommand } from './commands/send.js';
import { inboxCommand } from './commands/inbox.js';
import { contactsCommand } from './commands/contacts.js';
import { peersCommand } from './commands/peers.js';
import { codeCommand } from './commands/code.js';
import { verifyCommand } from './commands/verify.js';
import { historyCommand } from './commands/history.js';
import { deleteCommand } from './commands/delete.js';
import { backupCommand } from './commands/backup.js';
import { exitQuietlyOnEpipe, runCli, type AnyCommand } from './run.js';

const commands: AnyCommand[] = [
  nodeCommand,
  peerCommand,
  clientCommand,
  idCommand,
  sendCommand,
  inboxCommand,
  contactsCommand,
  peersCommand,
  codeCommand,
  verifyCommand,
  historyCommand,
  deleteCommand,
  backupCommand,
];

exitQuietlyOnEpipe();
process.exitCode = await runCli(commands, hideBin(process.argv));

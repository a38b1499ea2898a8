#!/usr/bin/env node
/**
 * The peerpost command. Each command is one module in ./commands exporting a yargs CommandModule;
 * add a command by adding its module and one entry to `commands`.
 */
import { hideBin } from 'yargs/helpers';
import { idCommand } from './commands/id.js';
import { nodeCommand } from './commands/node.js';
import { runCli, type AnyCommand } from './run.js';

const commands: AnyCommand[] = [
  idCommand,
  nodeCommand,
];

process.exitCode = await runCli(commands, hideBin(process.argv));

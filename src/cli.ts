#!/usr/bin/env node
import { runCli } from './admin/cli.js';

/** Entry of the `grok-gateway` command; the commands, their output and exit statuses live in admin/cli.ts. */
process.exitCode = await runCli(process.argv.slice(2));

#!/usr/bin/env node
import { runCli, USAGE, UsageError } from './admin/cli.js';
import { ConfigError, exitForConfigError } from './config.js';
import { ApiError } from './http/errors.js';

/** Entry of the `grok-gateway` command; the commands themselves live in admin/cli.ts. */
runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ApiError) {
      process.stderr.write(`error: ${err.message}${err.param ? ` (${err.param})` : ''}\n`);
      process.exit(1);
    }
    // Not a usage error: the command line was fine, the environment was not.
    if (err instanceof ConfigError) exitForConfigError('grok-gateway', err);
    const usage = err instanceof UsageError || ((err as { code?: string }).code ?? '').startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`error: ${(err as Error).message}\n${usage ? `\n${USAGE}\n` : ''}`);
    process.exit(2);
  },
);

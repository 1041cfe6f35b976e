#!/usr/bin/env node
// The `keyhold` command. `server` runs the composition root; everything else is a client command.
const [command, ...rest] = process.argv.slice(2);
if (command === 'server') {
  const { serverCommand } = await import('../dist/src/main.js');
  await serverCommand(rest);
} else {
  const { cliMain } = await import('../dist/src/cli/index.js');
  process.exitCode = await cliMain(process.argv.slice(2));
}

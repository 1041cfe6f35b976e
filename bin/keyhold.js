#!/usr/bin/env node
// The `keyhold` command. `server` runs the composition root; so does `audit verify --data-dir`
// (it opens the data dir itself); everything else is a client command.
const [command, ...rest] = process.argv.slice(2);
if (command === 'server') {
  const { serverCommand } = await import('../dist/src/main.js');
  await serverCommand(rest);
} else if (command === 'audit' && rest.some((a) => a === '--data-dir' || a.startsWith('--data-dir='))) {
  const { auditOfflineCommand } = await import('../dist/src/main.js');
  process.exitCode = await auditOfflineCommand(rest);
} else {
  // The AWS SDK warns at every start, on Node 20, that its releases after January 2027 will need
  // Node 22. Keyhold pins its SDK versions, so for a client command that notice is noise on
  // stderr; AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=false brings it back.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { cliMain } = await import('../dist/src/cli/index.js');
  process.exitCode = await cliMain(process.argv.slice(2));
}

/**
 * Runs a script in this process with this process's node flags. startServer's `wrapper` prefixes
 * the server command, so wrapper = [node, '--cpu-prof', ..., profile-shim.js] turns
 *   node bin/keyhold.js server ...   into   node --cpu-prof ... profile-shim.js node bin/keyhold.js server ...
 * which is how run.ts profiles Keyhold: Node refuses --cpu-prof in NODE_OPTIONS.
 */
import { pathToFileURL } from 'node:url';

const [node, , , script, ...rest] = process.argv;
if (!script) {
  process.stderr.write('usage: node [flags] profile-shim.js <node> <script> [args...]\n');
  process.exit(2);
}
// The script sees the argv it would have had if started directly.
process.argv = [node!, script, ...rest];
await import(pathToFileURL(script).href);

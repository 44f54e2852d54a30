/**
 * The `tenantdb` executable (bin of `@org/tenantdb`, built to `dist/cli.js`). Everything it does goes
 * through the public API; see `tenantdb --help` and the README's "CLI" section.
 */
import { runCli } from './run-cli.js';

// The AWS SDK warns once per process that it will need a newer Node; a CLI run is not the place.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
process.exitCode = code;
// The platform is closed; should a dependency still hold a socket open, the command is over all the same.
setTimeout(() => process.exit(code), 1_000).unref();

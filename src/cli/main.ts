// The `livemod` command line: thin commands over the subsystems. Exit codes: 0 ok, 1 failure,
// 2 usage. Errors are one line on stderr (and a JSON object on stdout with --json).
import { Command, CommanderError } from 'commander';
import { inspect } from 'node:util';
import { ErrorCodes, isLivemodError } from '../errors.ts';
import { usage } from './options.ts';
import { describeError } from './output.ts';
import { PACKAGE_VERSION } from '../own.ts';

// Each command's module, loaded only when it is the command given (or for the full --help): a
// `livemod run` should not load the builder, the store's maintenance and the server's commands.
const COMMANDS = {
  keygen: async () => (await import('./keygen.ts')).registerKeygen,
  publish: async () => (await import('./publish.ts')).registerPublish,
  serve: async () => (await import('./serve.ts')).registerServe,
  run: async () => (await import('./run.ts')).registerRun,
  cache: async () => (await import('./cache.ts')).registerCache,
  demo: async () => (await import('./demo.ts')).registerDemo,
  service: async () => (await import('./service.ts')).registerService,
  fleet: async () => (await import('./fleet.ts')).registerFleet,
} as const satisfies Record<string, () => Promise<(program: Command) => void>>;


async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command()
    .name('livemod')
    .description('Live code delivery for Node.js: publish a folder of TS/JS modules as a signed snapshot, serve it, run it anywhere.')
    .version(PACKAGE_VERSION, '-v, --version')
    .option('--verbose', 'on an error, print its stack too (as does env LIVEMOD_DEBUG=1)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  program.addHelpText('after', '\nExit codes: 0 ok, 1 failure, 2 usage error.\nDocs: README.md and docs/ in the livemod package.');
  const first = argv[0];
  const names = first !== undefined && Object.hasOwn(COMMANDS, first) ? [first as keyof typeof COMMANDS] : (Object.keys(COMMANDS) as (keyof typeof COMMANDS)[]);
  for (const register of await Promise.all(names.map((name) => COMMANDS[name]()))) register(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  // Only livemod's own arguments: after `--` they belong to the program `livemod run` runs.
  const separator = argv.indexOf('--');
  const json = (separator === -1 ? argv : argv.slice(0, separator)).includes('--json');
  const debug = process.env.LIVEMOD_DEBUG === '1' || (separator === -1 ? argv : argv.slice(0, separator)).includes('--verbose');
  try {
    // An empty argument is almost always an unset shell variable (`--key "$KEY"`): say so.
    const own = separator === -1 ? argv : argv.slice(0, separator);
    const empty = own.findIndex((arg) => arg === '');
    if (empty !== -1) throw usage(`argument ${empty + 1} is empty${empty > 0 && own[empty - 1]!.startsWith('-') ? ` (the value of ${own[empty - 1]})` : ''}; is a shell variable unset?`);
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      if (json) process.stdout.write(`${JSON.stringify({ error: { code: ErrorCodes.USAGE, message: error.message } })}\n`);
      return 2;
    }
    if (!isLivemodError(error)) {
      // A bug of ours (the program's own throws are printed by `run`): shown as Node shows an
      // uncaught exception, with the stack.
      process.stderr.write(`${inspect(error)}\n`);
      if (json) process.stdout.write(`${JSON.stringify({ error: describeError(error) })}\n`);
      return 1;
    }
    const { code, message } = describeError(error);
    // The code ends the line, so a user (or a script reading stderr) can match on it without --json.
    process.stderr.write(`${message} [${code}]\n`);
    if (debug && error.stack) process.stderr.write(`${error.stack.split('\n').slice(1).join('\n')}\n`);
    if (json) process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`);
    return code === ErrorCodes.USAGE ? 2 : 1;
  }
}

// `livemod … | head` closes stdout early: that ends the output, it is not a crash.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

const status = await main(process.argv.slice(2));
// A program run by `livemod run` may set its own exit code; only a failure of ours overrides it.
if (status !== 0) process.exitCode = status;

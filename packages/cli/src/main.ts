import { type CommandContext, EXIT, StartupError, UsageError } from './command.js';
import { COMMANDS } from './commands/index.js';

const NAME = 'openshell-interceptors';

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `${NAME}: run, check and observe OpenShell gateway interceptors`,
    '',
    `Usage: ${NAME} <command> [options]`,
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    `Run '${NAME} <command> --help' for a command's options.`,
    'Exit codes: 0 ok, 1 denied or failed check, 2 usage, configuration or startup error.',
    '',
  ].join('\n');
}

/** Run the CLI and resolve to its exit code. Never calls process.exit itself. */
export async function main(argv: string[], ctx: CommandContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? ctx.stderr : ctx.stdout).write(help());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    ctx.stderr.write(`${NAME}: unknown command '${name}'\n\n${help()}`);
    return EXIT.usage;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    ctx.stdout.write(`Usage: ${command.usage}\n`);
    return EXIT.ok;
  }
  try {
    return await command.run(rest, ctx);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      ctx.stderr.write(`${NAME} ${name}: ${(err as Error).message}\nUsage: ${command.usage}\n`);
      return EXIT.usage;
    }
    if (err instanceof StartupError) {
      ctx.stderr.write(`${NAME} ${name}: ${err.message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
}

export { main } from './main.js';
export { EXIT, StartupError, UsageError, type Command, type CommandContext } from './command.js';
export { colourizer, formatTable, printJson } from './output.js';

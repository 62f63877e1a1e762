export { type Command, type CommandContext, EXIT, StartupError, UsageError } from './command.js';
export { main } from './main.js';
export { colourizer, formatTable, printJson } from './output.js';

// Appends records and exits at once (process.exit): the exit hook must still write them.
import { AuditLog, FileSink } from '../log.js';

const file = process.argv[2];
if (!file) throw new Error('usage: exit-child.ts <file>');
const log = new AuditLog(new FileSink(file));
for (let i = 1; i <= 3; i++) log.append(JSON.stringify({ seq: i }));
process.exit(0);

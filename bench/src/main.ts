import { serverOverhead } from './comparisons/server-overhead.js';
import { tempDir } from './context.js';

const quick = process.argv.includes('--quick');
const t = await tempDir();
try {
  const r = await serverOverhead({
    quick,
    budget: quick ? { windowMs: 150, rounds: 3, warmup: 1 } : { windowMs: 400, rounds: 5, warmup: 1 },
    dir: t.dir,
    progress: (l) => process.stderr.write(`${l}\n`),
  });
  console.log(JSON.stringify(r, null, 1));
} finally {
  await t.remove();
}

import { ROUTES } from '@openshell-interceptors/protocol';
import type { Command } from '../command.js';

// Placeholder until the scripted demo (issue 6) lands: it shows what the toolkit
// knows of the wire today, and says plainly that the story is still to come.
const command: Command = {
  name: 'demo',
  summary: 'Run the end-to-end demo',
  usage: 'openshell-interceptors demo',
  async run(_argv, ctx) {
    ctx.stdout.write(
      [
        'openshell-interceptors demo (placeholder)',
        '',
        'The scripted demo (interceptors served over gRPC, the gateway runtime, a story of',
        'tenants, quotas and failure policies) is not built yet. What works today is the',
        `wire: ${ROUTES.length} interceptable RPCs, e.g.`,
        ...ROUTES.slice(0, 3).map((r) => `  ${r.rpc}`),
        '',
        "Try 'openshell-interceptors routes' for the full table.",
        '',
      ].join('\n'),
    );
    return 0;
  },
};
export default command;

import { deny, EvaluateError, interceptor } from '@openshell-interceptors/sdk';

declare function countSandboxes(owner: string, signal: AbortSignal): Promise<number>;

export const quota = interceptor('quota').validate(
  'CreateSandbox',
  async ({ principal, signal, annotate }) => {
    if (principal.kind !== 'user') return; // nothing returned = allow
    let count: number;
    try {
      count = await countSandboxes(principal.subject, signal);
    } catch {
      // Choose the status of a failure; the gateway's failure policy decides what happens.
      throw new EvaluateError('UNAVAILABLE', 'quota store unreachable');
    }
    annotate('sandboxes', String(count));
    if (count >= 10) {
      return deny('RESOURCE_EXHAUSTED', `you have ${count} sandboxes, the limit is 10: delete one and retry`);
    }
  },
  { id: 'sandbox-quota' }, // its own binding id, so it composes with other CreateSandbox bindings
);

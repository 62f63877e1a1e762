import { interceptor } from '@openshell-interceptors/sdk';

declare function publishAudit(event: { sandbox: string; by: string }): Promise<void>;

export const audit = interceptor('audit').observe(
  'CreateSandbox',
  async ({ operation, principal, annotate }) => {
    // operation is the committed SandboxResponse (secrets removed).
    const name = operation.sandbox?.metadata?.name ?? '';
    await publishAudit({ sandbox: name, by: principal.kind === 'user' ? principal.subject : principal.kind });
    annotate('audited', name);
  },
);

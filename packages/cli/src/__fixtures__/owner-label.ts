// A small, correct interceptor for the CLI tests: fills and requires an `owner` label.
import { allow, deny, interceptor } from '@openshell-interceptors/sdk';

export default interceptor('owner-label')
  .modify('CreateSandbox', ({ draft, principal }) => {
    if (!draft.labels?.owner && principal.kind === 'user')
      draft.labels = { ...draft.labels, owner: principal.subject };
  })
  .validate('CreateSandbox', ({ operation }) =>
    operation.labels?.owner
      ? allow({ annotations: { owner: 'ok' } })
      : deny('INVALID_ARGUMENT', 'set labels.owner'),
  );

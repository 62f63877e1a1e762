import { allow, deny, interceptor } from '@openshell-interceptors/sdk';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export default interceptor('naming')
  .modify('CreateSandbox', ({ draft, principal }) => {
    draft.name ||= principal.kind === 'user' ? `${principal.subject.split('@')[0]}-sandbox` : 'sandbox';
    draft.name = draft.name.toLowerCase();
  })
  .validate('CreateSandbox', ({ operation }) =>
    DNS_LABEL.test(operation.name ?? '') && (operation.name ?? '').length <= 63
      ? allow()
      : deny(
          'INVALID_ARGUMENT',
          `sandbox name "${operation.name}" must be a DNS label: a-z, 0-9 and '-', at most 63`,
        ),
  );

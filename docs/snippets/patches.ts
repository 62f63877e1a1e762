import { allow, interceptor, patch } from '@openshell-interceptors/sdk';

export const explicit = interceptor('explicit-patches')
  // Return patches directly...
  .modify('CreateSandbox', ({ operation }) =>
    operation.labels
      ? [patch.add(['labels', 'team/id'], 'platform')]
      : [patch.add('/labels', { 'team/id': 'platform' })],
  )
  // ...or inside allow(), with log annotations.
  .modify('UpdateConfig', ({ operation }) =>
    operation.annotations?.['debug'] !== undefined
      ? allow({ patches: [patch.remove(['annotations', 'debug'])], annotations: { stripped: 'debug' } })
      : allow(),
  );

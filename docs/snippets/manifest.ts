import { interceptor } from '@openshell-interceptors/sdk';

export const described = interceptor('platform', { failurePolicy: 'fail_closed' })
  .modify('CreateSandbox', () => {}) // binding "create-sandbox"
  .validate('CreateSandbox', () => {}) // the same binding, second phase
  .validate('UpdateConfig', () => {}, { id: 'config-guard', failurePolicy: 'fail_open' })
  .observe('DeleteSandbox', () => {}); // binding "delete-sandbox-observe", always fail_open

import { interceptor } from '@openshell-interceptors/sdk';

export const labels = interceptor('labels').modify('CreateSandbox', ({ draft, principal }) => {
  // Absent in the request? The SDK sends `add /labels` (never `replace`).
  draft.labels ??= {};
  // Keys are escaped for you: this becomes `add /labels/example.com~1owner`.
  if (principal.kind === 'user') draft.labels['example.com/owner'] = principal.subject;
  // Deleting a field sends `remove`; fields you do not touch are never removed.
  delete draft.annotations?.['debug'];
});

import { deny, interceptor, principalList } from '@openshell-interceptors/sdk';

export const guard = interceptor('guard')
  // Only users without the "admin" role reach this handler; everyone else is allowed untouched.
  .validate(
    'DeleteSandbox',
    ({ operation }) => deny('PERMISSION_DENIED', `ask an admin to delete sandbox "${operation.name}"`),
    { when: { kind: 'user', match: ({ principal }) => !principalList(principal.roles).includes('admin') } },
  )
  // Scope by request labels: only sandboxes labelled tier=gold or tier=silver.
  .modify(
    'CreateSandbox',
    ({ draft }) => {
      draft.annotations = { ...draft.annotations, 'example.com/backup': 'daily' };
    },
    { when: { labels: { tier: ['gold', 'silver'] } } },
  );

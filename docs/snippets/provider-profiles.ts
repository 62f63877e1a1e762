import { interceptor } from '@openshell-interceptors/sdk';

export const catalog = interceptor('catalog').providerProfiles(async () => [
  {
    id: 'github',
    displayName: 'GitHub',
    credentials: [{ name: 'token', envVars: ['GITHUB_TOKEN'], required: true }],
  },
  { id: 'internal-llm', displayName: 'Internal LLM' },
]);
// Without a revision the SDK sends sha256:<digest of the profiles>: stable while they are.

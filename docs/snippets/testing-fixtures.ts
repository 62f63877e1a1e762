import { requestFixture } from '@openshell-interceptors/testing';

requestFixture('CreateSandbox', { name: 'Team-A', labels: { tier: 'gpu' } }); // keeps labels.team
requestFixture('CreateSandbox', (r) => {
  delete r.name;
});

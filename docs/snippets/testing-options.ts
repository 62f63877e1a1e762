import naming from '@openshell-interceptors/example-naming';
import quota from '@openshell-interceptors/example-quota';
import { testGateway } from '@openshell-interceptors/testing';

const gw = await testGateway({
  interceptors: [
    { interceptor: naming, order: 0, failurePolicy: 'fail_closed', timeout: '200ms' },
    {
      interceptor: quota,
      order: 10,
      maxPatches: 4,
      bindings: [{ id: 'create-sandbox', phases: ['validate'] }],
    },
    { name: 'legacy', endpoint: 'http://127.0.0.1:50051', failurePolicy: 'fail_open' },
  ],
  transport: 'grpc',
});
await gw.close();

import { createGateway, loadGatewayConfig } from '@openshell-interceptors/gateway';
import type { JsonObject } from '@openshell-interceptors/protocol';

// Your API server's real handler: stores the sandbox and returns the response ProtoJSON.
declare function createSandboxForReal(request: JsonObject): Promise<JsonObject>;

const gateway = await createGateway(await loadGatewayConfig('/etc/openshell/gateway.toml'));
const outcome = await gateway.intercept({
  method: 'CreateSandbox',
  principal: { kind: 'user', subject: 'alice', provider: 'oidc' },
  request: { name: 'Team-A', spec: { template: { image: 'ubuntu:24.04' } } },
  commit: async (finalRequest) => createSandboxForReal(finalRequest),
});
if (outcome.outcome === 'denied') console.error(outcome.status?.code, outcome.status?.message);
await gateway.close();

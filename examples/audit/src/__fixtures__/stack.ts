// Serve interceptors over real gRPC on 127.0.0.1 and put the gateway runtime in front
// of them, as a deployment would (insecure transport: auth is the SDK's own tests' job).
import { createGateway, type Gateway, gatewayConfigFromObject } from '@openshell-interceptors/gateway';
import { type Interceptor, type RunningServer, serve } from '@openshell-interceptors/sdk';
import pino from 'pino';

export interface Stack {
  readonly gateway: Gateway;
  readonly servers: readonly RunningServer[];
  close(): Promise<void>;
}

export async function startStack(
  entries: readonly { interceptor: Interceptor; config?: Record<string, unknown> }[],
): Promise<Stack> {
  const logger = pino({ level: 'silent' });
  const servers: RunningServer[] = [];
  for (const e of entries)
    servers.push(await serve(e.interceptor, { listen: '127.0.0.1:0', insecure: true, logger }));
  const config = gatewayConfigFromObject({
    interceptors: entries.map((e, i) => ({
      name: e.interceptor.name,
      grpc_endpoint: `http://${servers[i]!.address}`,
      allow_insecure_transport: true,
      timeout: '5s',
      ...e.config,
    })),
  });
  const gateway = await createGateway(config, { logger });
  return {
    gateway,
    servers,
    async close() {
      await gateway.close();
      await Promise.all(servers.map((s) => s.close({ graceMs: 0 })));
    },
  };
}

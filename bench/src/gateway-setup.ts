// Gateways for the runtime comparisons, configured in code, logging to /dev/null.
import { createGateway, type Gateway, gatewayConfigFromObject } from '@openshell-interceptors/gateway';
import { type Logger, pino } from 'pino';

/**
 * A logger that formats every line as production would and drops it: formatting stays in
 * the measurement, the cost of writing depends on where an operator sends logs.
 */
export function nullLogger(level: 'info' | 'warn' = 'info'): Logger {
  return pino({ name: 'openshell-gateway', level }, { write: (_line: string) => {} });
}

export async function startGateway(
  interceptors: readonly Record<string, unknown>[],
  logger: Logger = nullLogger(),
): Promise<Gateway> {
  const config = gatewayConfigFromObject({ interceptors: interceptors.map((i) => ({ ...i })) });
  return createGateway(config, { logger });
}

/** One `[[openshell.gateway.interceptors]]` entry for a bench server at `address`. */
export function interceptorEntry(
  name: string,
  address: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const endpoint = address.startsWith('unix://') ? address : `http://${address}`;
  return { name, grpc_endpoint: endpoint, allow_insecure_transport: true, ...extra };
}

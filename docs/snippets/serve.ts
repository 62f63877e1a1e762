import { serve } from '@openshell-interceptors/sdk';
import { Registry } from 'prom-client';
import naming from './quickstart.js';

const metrics = new Registry();
const server = await serve(naming, {
  listen: '0.0.0.0:50051',
  tls: { cert: process.env.TLS_CERT ?? '', key: process.env.TLS_KEY ?? '' },
  auth: { gatewayId: 'prod', jwksFile: '/etc/openshell/gateway-jwks.json' },
  metrics,
  handleSignals: true, // SIGTERM: NOT_SERVING, drain, exit
  shutdownGraceMs: 5_000,
});
console.log(`listening on ${server.address}`);

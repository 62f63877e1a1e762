import type { INTERCEPTABLE_METHODS, InterceptableRpcTypes } from './gen/json.js';
import { CODECS } from './gen/registry.js';
import { SCHEMA } from './gen/schema.js';
import type { MessageCodec } from './schema-types.js';

export const OPENSHELL_SERVICE = 'openshell.v1.OpenShell';
export type OpenShellService = typeof OPENSHELL_SERVICE;

/** Method name of one of the 25 interceptable RPCs. */
export type InterceptableMethod = (typeof INTERCEPTABLE_METHODS)[number];

/** The ProtoJSON shapes of one interceptable RPC. */
export type RpcTypes<M extends InterceptableMethod> = InterceptableRpcTypes[M];

export interface Route<M extends InterceptableMethod = InterceptableMethod> {
  readonly method: M;
  readonly service: OpenShellService;
  /** Selector form, `service/method`. */
  readonly rpc: `${OpenShellService}/${M}`;
  /** gRPC path, `/service/method`. */
  readonly path: `/${OpenShellService}/${M}`;
  readonly requestType: string;
  readonly responseType: string;
  readonly request: MessageCodec;
  readonly response: MessageCodec;
}

function codec(type: string): MessageCodec {
  const c = CODECS[type];
  if (!c) throw new Error(`no codec for ${type}`);
  return c;
}

const methods = SCHEMA.services[OPENSHELL_SERVICE] ?? [];

/** The route table: the 25 interceptable RPCs in declaration order. */
export const ROUTES: readonly Route[] = methods.map((m) => ({
  method: m.name as InterceptableMethod,
  service: OPENSHELL_SERVICE,
  rpc: `${OPENSHELL_SERVICE}/${m.name}` as Route['rpc'],
  path: `/${OPENSHELL_SERVICE}/${m.name}` as Route['path'],
  requestType: m.request,
  responseType: m.response,
  request: codec(m.request),
  response: codec(m.response),
}));

const BY_METHOD = new Map<string, Route>(ROUTES.map((r) => [r.method, r]));

export function isInterceptableMethod(method: string): method is InterceptableMethod {
  return BY_METHOD.has(method);
}

/** The route of an interceptable method; throws for anything else. */
export function route<M extends InterceptableMethod>(method: M): Route<M> {
  const r = BY_METHOD.get(method);
  if (!r) throw new Error(`${method} is not an interceptable openshell.v1.OpenShell RPC`);
  return r as Route<M>;
}

/** The route for `(service, method)`, or undefined when that pair is not interceptable. */
export function findRoute(service: string, method: string): Route | undefined {
  return service === OPENSHELL_SERVICE ? BY_METHOD.get(method) : undefined;
}

/** An RPC selector that is not `service/method` with both parts non-empty. */
export class RpcSelectorError extends Error {
  constructor(readonly selector: string) {
    super(
      `invalid RPC selector ${JSON.stringify(selector)}: expected "service/method" with both parts non-empty`,
    );
    this.name = 'RpcSelectorError';
  }
}

/** Split `service/method` at the first `/`; both parts must be non-empty. */
export function parseRpcSelector(selector: string): { service: string; method: string } {
  const i = selector.indexOf('/');
  if (i <= 0 || i === selector.length - 1) throw new RpcSelectorError(selector);
  return { service: selector.slice(0, i), method: selector.slice(i + 1) };
}

/** Accept `CreateSandbox`, `openshell.v1.OpenShell/CreateSandbox` or `/openshell.v1.OpenShell/CreateSandbox`. */
export function resolveRoute(nameOrRpc: string): Route | undefined {
  const s = nameOrRpc.startsWith('/') ? nameOrRpc.slice(1) : nameOrRpc;
  if (!s.includes('/')) return BY_METHOD.get(s);
  const { service, method } = parseRpcSelector(s);
  return findRoute(service, method);
}

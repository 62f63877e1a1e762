import { describe, expect, it } from 'vitest';
import { GatewayInterceptorPhase } from './gen/openshell/gateway_interceptor/v1/gateway_interceptor.js';
import { evaluationPayload, evaluationPhaseFields, PHASES, phaseFromWire, phaseToWire } from './phase.js';
import { findRoute, isInterceptableMethod, parseRpcSelector, ROUTES, resolveRoute, route } from './routes.js';
import { denialStatus, GRPC_CODE_NAMES, normalizeStatusCode } from './status.js';
import { encodeMessage, parseProtoJson, toProtoJson } from './view.js';

describe('route table', () => {
  it('lists the 25 interceptable RPCs with full names and codecs', () => {
    expect(ROUTES).toHaveLength(25);
    const r = route('CreateSandbox');
    expect(r.rpc).toBe('openshell.v1.OpenShell/CreateSandbox');
    expect(r.path).toBe('/openshell.v1.OpenShell/CreateSandbox');
    expect(r.requestType).toBe('openshell.v1.CreateSandboxRequest');
    expect(r.responseType).toBe('openshell.v1.SandboxResponse');
    const bytes = encodeMessage(r.requestType, parseProtoJson(r.requestType, { name: 'x' }));
    expect(toProtoJson(r.requestType, r.request.decode(bytes))).toEqual({ name: 'x' });
  });

  it('finds routes by method, selector or path, and nothing else', () => {
    expect(resolveRoute('UpdateConfig')?.method).toBe('UpdateConfig');
    expect(resolveRoute('openshell.v1.OpenShell/UpdateConfig')?.method).toBe('UpdateConfig');
    expect(resolveRoute('/openshell.v1.OpenShell/UpdateConfig')?.method).toBe('UpdateConfig');
    expect(resolveRoute('GetSandbox')).toBeUndefined();
    expect(findRoute('openshell.v1.Other', 'CreateSandbox')).toBeUndefined();
    expect(isInterceptableMethod('ListSandboxes')).toBe(false);
    expect(() => route('ListSandboxes' as never)).toThrow(/not an interceptable/);
  });

  it('splits selectors at the first "/" and requires both parts', () => {
    expect(parseRpcSelector('a.B/C/D')).toEqual({ service: 'a.B', method: 'C/D' });
    expect(() => parseRpcSelector('/C')).toThrow(/both parts non-empty/);
    expect(() => parseRpcSelector('a.B/')).toThrow();
    expect(() => parseRpcSelector('a.B')).toThrow();
  });
});

describe('phases', () => {
  it('maps to the shipped wire numbers 2, 3, 4 and back', () => {
    expect(PHASES.map(phaseToWire)).toEqual([2, 3, 4]);
    expect([2, 3, 4].map(phaseFromWire)).toEqual(PHASES);
    expect(phaseFromWire(0)).toBeUndefined();
    expect(phaseFromWire(1)).toBeUndefined();
    expect(phaseFromWire(GatewayInterceptorPhase.UNRECOGNIZED)).toBeUndefined();
  });

  it('reads the phase oneof of an evaluation', () => {
    const op = { name: 'x' };
    for (const p of PHASES) {
      const ev = {
        interceptorName: '',
        bindingId: '',
        service: '',
        method: '',
        principal: {},
        ...evaluationPhaseFields(p, op),
      };
      expect(evaluationPayload(ev)).toMatchObject({ phase: p, operation: op });
    }
    expect(
      evaluationPayload({ interceptorName: '', bindingId: '', service: '', method: '', principal: {} }),
    ).toBeUndefined();
  });
});

describe('status codes', () => {
  it('knows the 17 canonical names', () => {
    expect(GRPC_CODE_NAMES).toHaveLength(17);
    expect(normalizeStatusCode('  resource_exhausted ')).toBe('RESOURCE_EXHAUSTED');
    expect(normalizeStatusCode('TEAPOT')).toBeUndefined();
  });

  it('maps denials the way the gateway does', () => {
    expect(denialStatus('invalid_argument', 'bad name')).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'bad name',
    });
    expect(denialStatus('', '')).toEqual({
      code: 'PERMISSION_DENIED',
      message: 'operation denied by gateway interceptor',
    });
    expect(denialStatus('NOPE', '  ')).toEqual({
      code: 'PERMISSION_DENIED',
      message: 'operation denied by gateway interceptor',
    });
    expect(denialStatus('OK', 'x').code).toBe('PERMISSION_DENIED');
  });
});

import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SAMPLE_POLICY } from './__fixtures__/policies.js';
import { type ConformanceReport, runDriverConformance } from './conformance.js';
import { PolicyDriverConnection } from './driver/client.js';
import { definePolicyDriver, type PolicyDriverDefinition, UnknownHandleError } from './driver/define.js';
import { type RunningPolicyDriver, servePolicyDriver } from './driver/server.js';
import { generateSigningKey, type SigningKeyPair } from './keys.js';
import { buildProjection } from './projection.js';
import { TrustStore } from './trust-store.js';

let dir: string;
let srv: RunningPolicyDriver | undefined;
let conn: PolicyDriverConnection | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pa-conf-'));
});
afterEach(async () => {
  conn?.close();
  await srv?.close(100);
  srv = undefined;
  conn = undefined;
  await rm(dir, { recursive: true, force: true });
});

type Quirks = {
  sameHandle?: boolean;
  releaseAlwaysTrue?: boolean;
  unknownIsInternal?: boolean;
  signer?: SigningKeyPair;
};

function driver(q: Quirks = {}): PolicyDriverDefinition {
  const held = new Set<string>();
  return {
    capabilities: {
      supportedSurfaces: ['openshell.sandbox.v1'],
      permitsMutation: false,
      driverVersion: '1.0',
      features: q.signer ? ['signed-projections'] : [],
    },
    acquireHandle() {
      const h = q.sameHandle ? 'fixed' : randomUUID();
      held.add(h);
      return h;
    },
    getProjection(handle, surfaceId) {
      if (!held.has(handle)) {
        if (q.unknownIsInternal) throw new Error('boom');
        throw new UnknownHandleError(handle);
      }
      return buildProjection({ surfaceId, policy: SAMPLE_POLICY, ...(q.signer ? { signer: q.signer } : {}) });
    },
    releaseHandle(handle) {
      return held.delete(handle) || q.releaseAlwaysTrue === true;
    },
  };
}

async function check(def: PolicyDriverDefinition, trust?: TrustStore): Promise<ConformanceReport> {
  srv = await servePolicyDriver(definePolicyDriver(def), {
    listen: `unix://${join(dir, 'd.sock')}`,
    logger: pino({ level: 'silent' }),
  });
  conn = new PolicyDriverConnection(srv.address);
  return runDriverConformance(conn, trust ? { trust } : {});
}

const statusOf = (r: ConformanceReport, id: string) => r.findings.find((f) => f.id === id)?.status;

describe('runDriverConformance', () => {
  it('a conforming unsigned driver passes every check', async () => {
    const r = await check(driver());
    expect(r.ok).toBe(true);
    expect(r.counts.fail).toBe(0);
    for (const id of [
      'capabilities.rpc',
      'capabilities.surfaces',
      'acquire.rpc',
      'acquire.distinct',
      'projection.rpc',
      'projection.surface',
      'projection.digest',
      'projection.stable',
      'projection.unknown_handle',
      'projection.unsupported_surface',
      'release.rpc',
      'release.idempotent',
      'release.forgotten',
      'release.unknown',
    ]) {
      expect(statusOf(r, id), id).toBe('pass');
    }
    expect(statusOf(r, 'projection.signature')).toBe('skip');
  });

  it('verifies signatures with a trust store, and fails a driver signing with an untrusted key', async () => {
    const key = await generateSigningKey('good');
    const trust = TrustStore.fromKeys([{ keyId: 'good', publicKey: key.publicKey }]);
    const good = await check(driver({ signer: key }), trust);
    expect(statusOf(good, 'projection.signature')).toBe('pass');
    expect(good.ok).toBe(true);
    await srv?.close();
    conn?.close();
    const rogue = await generateSigningKey('rogue');
    const bad = await check(driver({ signer: rogue }), trust);
    expect(bad.ok).toBe(false);
    expect(bad.findings.find((f) => f.id === 'projection.signature')?.detail).toContain('UNKNOWN_KEY_ID');
  });

  it('an unsigned driver fails when a trust store requires signatures', async () => {
    const key = await generateSigningKey('good');
    const trust = TrustStore.fromKeys([{ keyId: 'good', publicKey: key.publicKey }]);
    const r = await check(driver(), trust);
    expect(statusOf(r, 'projection.signature')).toBe('fail');
    expect(statusOf(r, 'capabilities.features')).toBe('warn');
  });

  it('finds shared handles, non-idempotent release and wrong unknown-handle codes', async () => {
    const r = await check(driver({ sameHandle: true, releaseAlwaysTrue: true, unknownIsInternal: true }));
    expect(r.ok).toBe(false);
    expect(statusOf(r, 'acquire.distinct')).toBe('fail');
    expect(statusOf(r, 'release.idempotent')).toBe('fail');
    expect(statusOf(r, 'release.unknown')).toBe('fail');
    expect(statusOf(r, 'projection.unknown_handle')).toBe('fail');
  });

  it('an unreachable driver is one failed finding', async () => {
    conn = new PolicyDriverConnection(`unix://${join(dir, 'none.sock')}`, { deadlineMs: 500 });
    const r = await runDriverConformance(conn);
    expect(r.ok).toBe(false);
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]?.id).toBe('capabilities.rpc');
  });
});

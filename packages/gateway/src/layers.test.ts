import { getEventListeners } from 'node:events';
import pLimit from 'p-limit';
import { afterEach, describe, expect, it } from 'vitest';
import type { BreakerConfig } from './config.js';
import { TransportError } from './errors.js';
import {
  breakerGateLayer,
  breakerLayer,
  breakerState,
  bulkheadLayer,
  compose,
  createBreaker,
  deadlineLayer,
  type Step,
} from './layers.js';
import type { TransportCall } from './transport.js';

const call = (timeoutMs = 1000, signal = new AbortController().signal): TransportCall => ({
  signal,
  deadline: Date.now() + timeoutMs,
  metadata: {},
  maxResponseBytes: 1024,
});

/** A step that stays pending until released, recording the signal it got. */
function gatedStep() {
  const waiting: { resolve: (v: string) => void; signal: AbortSignal }[] = [];
  const step: Step<string> = (c) =>
    new Promise((resolve) => {
      waiting.push({ resolve, signal: c.signal });
    });
  return { step, waiting };
}

const breakers: { shutdown(): void }[] = [];
afterEach(() => {
  for (const b of breakers.splice(0)) b.shutdown();
});

describe('deadline layer', () => {
  it('fails with DEADLINE_EXCEEDED at the deadline and aborts the inner call', async () => {
    const g = gatedStep();
    const err = await compose([deadlineLayer<string>(20)], g.step)(call(20)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err).toMatchObject({ code: 'DEADLINE_EXCEEDED', layer: 'deadline' });
    expect(g.waiting[0]?.signal.aborted).toBe(true);
  });

  it('leaves no listener on the parent signal at the deadline, even when the inner call never settles', async () => {
    const parent = new AbortController().signal;
    const never: Step<string> = () => new Promise<string>(() => {});
    const err = await compose([deadlineLayer<string>(20)], never)(call(20, parent)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(getEventListeners(parent, 'abort')).toHaveLength(0);
  });

  it('passes the answer through and fails at once when the caller already gave up', async () => {
    expect(await compose([deadlineLayer<string>(1000)], async () => 'ok')(call())).toBe('ok');
    const ac = new AbortController();
    ac.abort();
    await expect(
      compose([deadlineLayer<string>(1000)], async () => 'ok')(call(1000, ac.signal)),
    ).rejects.toMatchObject({
      code: 'CANCELLED',
      layer: 'cancelled',
    });
  });
});

describe('bulkhead layer', () => {
  it('runs at most max_concurrency calls, queues at most max_queue, and sheds the rest at once', async () => {
    const g = gatedStep();
    let shed = 0;
    const step = compose([bulkheadLayer<string>(pLimit(2), 1, () => shed++)], g.step);
    const results = [1, 2, 3, 4, 5].map((i) =>
      step(call()).then(
        (v) => `${i}:${v}`,
        (e: TransportError) => `${i}:${e.layer}`,
      ),
    );
    await Promise.resolve();
    expect(g.waiting).toHaveLength(2);
    expect(shed).toBe(2);
    expect(await results[3]).toBe('4:shed');
    expect(await results[4]).toBe('5:shed');
    g.waiting[0]?.resolve('a');
    expect(await results[0]).toBe('1:a');
    await new Promise((r) => setImmediate(r));
    expect(g.waiting).toHaveLength(3);
    g.waiting[1]?.resolve('b');
    g.waiting[2]?.resolve('c');
    expect(await Promise.all(results.slice(1, 3))).toEqual(['2:b', '3:c']);
  });

  it('with max_queue = 0 sheds whenever every slot is busy', async () => {
    const g = gatedStep();
    let shed = 0;
    const step = compose([bulkheadLayer<string>(pLimit(1), 0, () => shed++)], g.step);
    const first = step(call());
    await expect(step(call())).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED', layer: 'shed' });
    await new Promise((r) => setImmediate(r));
    g.waiting[0]?.resolve('done');
    expect(await first).toBe('done');
    expect(shed).toBe(1);
  });

  it('drops a queued call whose caller gave up before its turn', async () => {
    const g = gatedStep();
    const step = compose([bulkheadLayer<string>(pLimit(1), 5, () => {})], g.step);
    const first = step(call());
    const ac = new AbortController();
    const queued = step(call(1000, ac.signal));
    ac.abort();
    await new Promise((r) => setImmediate(r));
    g.waiting[0]?.resolve('x');
    await first;
    await expect(queued).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(g.waiting).toHaveLength(1);
  });
});

describe('breaker layers', () => {
  const cfg: BreakerConfig = {
    enabled: true,
    errorThresholdPercentage: 50,
    volumeThreshold: 2,
    resetTimeoutMs: 60_000,
    rollingWindowMs: 10_000,
  };

  it('opens after enough failures; then the gate fails at once without calling the service', async () => {
    const breaker = createBreaker<string>('svc', cfg);
    breakers.push(breaker);
    let calls = 0;
    const failing: Step<string> = async () => {
      calls++;
      throw new TransportError('UNAVAILABLE', 'down');
    };
    const step = compose([breakerGateLayer(breaker, 'svc', cfg), breakerLayer(breaker, 'svc', cfg)], failing);
    await expect(step(call())).rejects.toMatchObject({ layer: 'transport' });
    await expect(step(call())).rejects.toMatchObject({ layer: 'transport' });
    expect(breakerState(breaker)).toBe('open');
    await expect(step(call())).rejects.toMatchObject({ code: 'UNAVAILABLE', layer: 'breaker' });
    expect(calls).toBe(2);
  });
});

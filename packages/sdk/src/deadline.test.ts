import { afterEach, describe, expect, it, vi } from 'vitest';
import { callScope, DeadlineQueue, type DueAt } from './deadline.js';
import { EvaluateError } from './errors.js';
import { Cancellation, transportContext } from './internal.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const never = () => new Promise<never>(() => {});

async function rejection(p: Promise<unknown>): Promise<EvaluateError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EvaluateError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('DeadlineQueue', () => {
  const queues: DeadlineQueue[] = [];
  const entries: [DeadlineQueue, DueAt][] = [];
  const track = (q: DeadlineQueue, d: DueAt) => {
    entries.push([q, d]);
    q.add(d);
  };
  afterEach(() => {
    vi.useRealTimers();
    for (const [q, d] of entries.splice(0)) q.delete(d);
    queues.splice(0);
  });

  it('fires every due entry once, in deadline order, never before its time', async () => {
    const q = new DeadlineQueue();
    const fired: { name: string; late: boolean }[] = [];
    const t0 = Date.now();
    for (const [name, ms] of [
      ['c', 60],
      ['a', 20],
      ['b', 40],
    ] as const) {
      const at = t0 + ms;
      track(q, { at, fire: () => fired.push({ name, late: Date.now() >= at }) });
    }
    await vi.waitFor(() => expect(fired).toHaveLength(3), { timeout: 5_000 });
    expect(fired).toEqual([
      { name: 'a', late: true },
      { name: 'b', late: true },
      { name: 'c', late: true },
    ]);
    await sleep(30);
    expect(fired).toHaveLength(3);
  });

  it('never fires an entry deleted before its time, and keeps firing the others', async () => {
    const q = new DeadlineQueue();
    const fired: string[] = [];
    const first = { at: Date.now() + 20, fire: () => fired.push('first') };
    const second = { at: Date.now() + 40, fire: () => fired.push('second') };
    track(q, first);
    track(q, second);
    q.delete(first);
    await vi.waitFor(() => expect(fired).toEqual(['second']), { timeout: 5_000 });
    await sleep(30);
    expect(fired).toEqual(['second']);
  });

  it('re-arms for an entry due before the one its timer waits for', async () => {
    const q = new DeadlineQueue();
    const fired: string[] = [];
    track(q, { at: Date.now() + 60_000, fire: () => fired.push('late') });
    track(q, { at: Date.now() + 20, fire: () => fired.push('soon') });
    await vi.waitFor(() => expect(fired).toEqual(['soon']), { timeout: 5_000 });
  });

  it('holds the process open only while a deadline is pending', () => {
    const q = new DeadlineQueue();
    expect(q.holdsProcess()).toBe(false);
    const a = { at: Date.now() + 60_000, fire: () => {} };
    const b = { at: Date.now() + 61_000, fire: () => {} };
    q.add(a);
    expect(q.holdsProcess()).toBe(true);
    q.delete(a);
    expect(q.holdsProcess()).toBe(false);
    q.add(b); // later than the armed timer: the same timer, held again
    expect(q.holdsProcess()).toBe(true);
    q.delete(b);
    expect(q.holdsProcess()).toBe(false);
  });

  it('takes deadlines beyond the longest Node timer without firing them early or warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const q = new DeadlineQueue();
      const fired: string[] = [];
      track(q, { at: Date.now() + 40 * 24 * 3600 * 1000, fire: () => fired.push('far') });
      await sleep(30);
      expect(fired).toEqual([]);
      expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('does not trust a timer armed by fake timers that have since been removed', async () => {
    const q = new DeadlineQueue();
    const fired: string[] = [];
    vi.useFakeTimers();
    track(q, { at: Date.now() + 10, fire: () => fired.push('under fake timers') });
    vi.useRealTimers();
    track(q, { at: Date.now() + 20, fire: () => fired.push('real') });
    await vi.waitFor(() => expect(fired).toContain('real'), { timeout: 5_000 });
  });
});

describe('callScope', () => {
  it('rejects each of several running evaluations with DEADLINE_EXCEEDED at its own deadline', async () => {
    const t0 = Date.now();
    const order: number[] = [];
    const scopes = [90, 30, 60].map((ms) => {
      const scope = callScope({ deadline: t0 + ms });
      const p = rejection(scope.race(never)).then((err) => {
        order.push(ms);
        expect(Date.now()).toBeGreaterThanOrEqual(t0 + ms);
        return err;
      });
      return { scope, p };
    });
    const errors = await Promise.all(scopes.map((s) => s.p));
    for (const s of scopes) s.scope.dispose();
    expect(errors.map((e) => e.code)).toEqual([
      'DEADLINE_EXCEEDED',
      'DEADLINE_EXCEEDED',
      'DEADLINE_EXCEEDED',
    ]);
    expect(order).toEqual([30, 60, 90]);
  });

  it('gives a signal first read after the near-deadline point already aborted (TimeoutError)', async () => {
    const scope = callScope({ deadline: Date.now() + 40 });
    await sleep(60);
    const signal = scope.signal;
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).name).toBe('TimeoutError');
    scope.dispose();
  });

  it('aborts a signal read early a little before the deadline', async () => {
    const deadline = Date.now() + 300;
    const scope = callScope({ deadline });
    const signal = scope.signal;
    expect(signal.aborted).toBe(false);
    const abortedAt = await new Promise<number>((r) => signal.addEventListener('abort', () => r(Date.now())));
    expect(abortedAt).toBeLessThan(deadline);
    expect((signal.reason as Error).name).toBe('TimeoutError');
    scope.dispose();
  });

  describe('race', () => {
    it('returns what synchronous work returns as is, and lets its throw propagate', () => {
      const scope = callScope({ deadline: Date.now() + 60_000, signal: new AbortController().signal });
      expect(scope.race(() => 5)).toBe(5);
      expect(() =>
        scope.race(() => {
          throw new Error('handler bug');
        }),
      ).toThrow('handler bug');
      scope.dispose();
    });

    it('settles with a thenable that is not a Promise', async () => {
      const scope = callScope({ deadline: Date.now() + 60_000 });
      const thenable: PromiseLike<number> = {
        // biome-ignore lint/suspicious/noThenProperty: a foreign thenable is what this test is about
        then: (resolve) => Promise.resolve(resolve?.(3)) as never,
      };
      expect(await scope.race(() => thenable)).toBe(3);
      scope.dispose();
    });

    it('answers CANCELLED for a cancel during synchronous work, whatever the work did then', async () => {
      for (const work of [() => 1, () => Promise.resolve(1), () => Promise.reject(new Error('late'))]) {
        const c = new Cancellation();
        const scope = callScope(transportContext(c, undefined));
        const err = await rejection(
          Promise.resolve(
            scope.race(() => {
              c.abort(new Error('gone'));
              return work();
            }),
          ),
        );
        expect(err.code).toBe('CANCELLED');
        scope.dispose();
      }
      const c = new Cancellation();
      const scope = callScope(transportContext(c, undefined));
      const err = await rejection(
        Promise.resolve().then(() =>
          scope.race(() => {
            c.abort(new Error('gone'));
            throw new Error('and then a bug');
          }),
        ),
      );
      expect(err.code).toBe('CANCELLED');
      scope.dispose();
    });
  });

  describe('with a transport cancellation', () => {
    /** A Cancellation that counts reads of its AbortSignal. */
    class CountingCancellation extends Cancellation {
      reads = 0;
      override get signal(): AbortSignal {
        this.reads++;
        return super.signal;
      }
    }

    it('follows the cancellation without making its AbortSignal', async () => {
      const c = new CountingCancellation();
      const scope = callScope(transportContext(c, Date.now() + 60_000));
      const pending = rejection(scope.race(never));
      c.abort(new DOMException('the call was cancelled', 'AbortError'));
      expect((await pending).code).toBe('CANCELLED');
      scope.dispose();
      expect(c.reads).toBe(0);
    });

    it('aborts the handler signal with the cancellation reason, read before or after', () => {
      const c = new Cancellation();
      const early = callScope(transportContext(c, undefined));
      const signal = early.signal;
      const reason = new DOMException('the call was cancelled', 'AbortError');
      c.abort(reason);
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toBe(reason);
      const late = callScope(transportContext(c, undefined));
      expect(late.signal.reason).toBe(reason);
      expect(c.signal.reason).toBe(reason);
      early.dispose();
      late.dispose();
    });

    it('refuses to start work on a cancelled call', async () => {
      const c = new Cancellation();
      c.abort(new Error('gone'));
      const scope = callScope(transportContext(c, undefined));
      let ran = false;
      const err = await rejection(
        Promise.resolve(
          scope.race(async () => {
            ran = true;
          }),
        ),
      );
      expect(err.code).toBe('CANCELLED');
      expect(ran).toBe(false);
      scope.dispose();
    });

    it('stops listening once disposed', () => {
      const c = new Cancellation();
      const scope = callScope(transportContext(c, undefined));
      const signal = scope.signal;
      scope.dispose();
      c.abort(new Error('after the call'));
      expect(signal.aborted).toBe(false);
    });
  });
});

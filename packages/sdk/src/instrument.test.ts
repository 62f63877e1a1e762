import type { Span, Tracer } from '@opentelemetry/api';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { evaluation } from './__fixtures__/evaluations.js';
import { instrumentedEvaluate } from './instrument.js';
import { interceptor } from './interceptor.js';
import { deny } from './results.js';

interface Recorded {
  name: string;
  attributes: Record<string, unknown>;
  status?: { code: number; message?: string };
  ended: boolean;
}

/** A tracer that records spans (the API package ships no in-memory exporter). */
function recordingTracer(spans: Recorded[]): Tracer {
  const start = (name: string, opts: { attributes?: Record<string, unknown> }) => {
    const rec: Recorded = { name, attributes: { ...opts.attributes }, ended: false };
    spans.push(rec);
    const span = {
      setAttributes: (a: Record<string, unknown>) => {
        Object.assign(rec.attributes, a);
        return span;
      },
      setStatus: (s: { code: number; message?: string }) => {
        rec.status = s;
        return span;
      },
      recordException: () => undefined,
      end: () => {
        rec.ended = true;
      },
    };
    return span as unknown as Span;
  };
  return {
    startSpan: start,
    startActiveSpan: (
      name: string,
      opts: { attributes?: Record<string, unknown> },
      fn: (s: Span) => unknown,
    ) => fn(start(name, opts)),
  } as unknown as Tracer;
}

describe('evaluation instrumentation', () => {
  const logger = pino({ level: 'silent' });
  const i = interceptor('traced', { logger })
    .validate('CreateSandbox', () => deny('INVALID_ARGUMENT', 'no'))
    .validate('DeleteSandbox', () => {
      throw new Error('boom');
    });

  it('wraps each evaluation in a span with the binding, decision and patch count', async () => {
    const spans: Recorded[] = [];
    await instrumentedEvaluate(i, evaluation('CreateSandbox', 'validate', {}), undefined, {
      logger,
      tracer: recordingTracer(spans),
    });
    expect(spans).toEqual([
      {
        name: 'openshell.interceptor.evaluate CreateSandbox',
        attributes: {
          'openshell.interceptor': 'traced',
          'openshell.rpc.method': 'CreateSandbox',
          'openshell.phase': 'validate',
          'openshell.interceptor.binding_id': 'create-sandbox',
          'openshell.interceptor.decision': 'deny',
          'openshell.interceptor.patch_count': 0,
        },
        ended: true,
      },
    ]);
  });

  it('marks the span as an error with the status code when the evaluation fails', async () => {
    const spans: Recorded[] = [];
    await expect(
      instrumentedEvaluate(i, evaluation('DeleteSandbox', 'validate', {}), undefined, {
        logger,
        tracer: recordingTracer(spans),
      }),
    ).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(spans[0]).toMatchObject({ status: { code: 2, message: 'INTERNAL' }, ended: true });
  });
});

import { describe, expect, it } from 'vitest';
import { roundOrder } from './interleave.js';
import { growthExponent, linearFit, median, pairedRatio, percentile, ratio, summarize } from './stats.js';

describe('runner statistics', () => {
  it('takes medians and percentiles by interpolating between closest ranks, whatever the input order', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(percentile([10, 20, 30, 40, 50], 0)).toBe(10);
    expect(percentile([10, 20, 30, 40, 50], 1)).toBe(50);
    expect(percentile([50, 10, 40, 20, 30], 0.25)).toBe(20);
    expect(
      percentile(
        Array.from({ length: 101 }, (_, i) => 100 - i),
        0.99,
      ),
    ).toBe(99);
    expect(median([])).toBeNaN();
    expect(() => percentile([1], 1.5)).toThrow(RangeError);
  });

  it('summarizes a window without overflowing on large inputs', () => {
    const big = Array.from({ length: 200_000 }, (_, i) => i % 1000);
    const s = summarize(big);
    expect(s.count).toBe(200_000);
    expect(s.max).toBe(999);
    expect(s.p50).toBeCloseTo(499.5, 0);
  });

  it('pairs ratios by round, so a slow round does not skew the comparison', () => {
    // Round 2 ran on a busy machine: both sides are slower, their ratio is not.
    expect(pairedRatio([100, 50, 100], [200, 100, 200])).toBe(0.5);
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(Number.NaN, 1)).toBeNaN();
    expect(() => pairedRatio([1], [1, 2])).toThrow(RangeError);
  });

  it('fits a straight line and reports how well it fits', () => {
    const fit = linearFit([1, 4, 16], [3, 9, 33]);
    expect(fit.slope).toBeCloseTo(2, 10);
    expect(fit.intercept).toBeCloseTo(1, 10);
    expect(fit.r2).toBeCloseTo(1, 10);
    expect(() => linearFit([2, 2], [1, 3])).toThrow(RangeError);
  });

  it('tells linear growth from quadratic growth above a fixed cost', () => {
    const xs = [1, 4, 16, 64];
    expect(
      growthExponent(
        xs,
        xs.map((x) => 500 + 3 * x),
      ),
    ).toBeCloseTo(1, 1);
    expect(
      growthExponent(
        xs,
        xs.map((x) => 500 + 2 * x * x),
      ),
    ).toBeGreaterThan(1.5);
    expect(
      growthExponent(
        xs,
        xs.map((x) => 500 + 10 * Math.sqrt(x)),
      ),
    ).toBeLessThan(1);
  });

  it('rotates which side goes first in each round', () => {
    expect([0, 1, 2, 3].map((r) => roundOrder(2, r))).toEqual([
      [0, 1],
      [1, 0],
      [0, 1],
      [1, 0],
    ]);
    expect(roundOrder(3, 1)).toEqual([1, 2, 0]);
  });
});

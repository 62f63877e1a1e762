// Statistics of the runner: order statistics, paired ratios and a least-squares fit.

/** The q-quantile (0..1) of `values` by linear interpolation between closest ranks; NaN when empty. */
export function percentile(values: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`percentile: q must be in [0, 1], got ${q}`);
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export function median(values: readonly number[]): number {
  return percentile(values, 0.5);
}

/** `a / b`, NaN when either is not a positive finite number (a ratio of nothing is not 0 or ∞). */
export function ratio(a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= 0 || a < 0) return Number.NaN;
  return a / b;
}

/**
 * The median of per-round ratios `a[i] / b[i]`: each pair was measured side by side in one
 * round, so drift of the machine between rounds cancels out of each ratio.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError(`pairedRatio: ${a.length} values vs ${b.length}`);
  const rs = a.map((x, i) => ratio(x, b[i] as number)).filter((r) => !Number.isNaN(r));
  return median(rs);
}

export interface LinearFit {
  /** Cost added per unit of x. */
  readonly slope: number;
  readonly intercept: number;
  /** Coefficient of determination of the straight line. */
  readonly r2: number;
}

/** Ordinary least squares y = intercept + slope·x. Needs two distinct x values. */
export function linearFit(xs: readonly number[], ys: readonly number[]): LinearFit {
  if (xs.length !== ys.length) throw new RangeError(`linearFit: ${xs.length} x values vs ${ys.length} y`);
  const n = xs.length;
  if (n < 2) throw new RangeError('linearFit: needs at least two points');
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    const dy = (ys[i] as number) - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) throw new RangeError('linearFit: all x values are equal');
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { slope, intercept, r2 };
}

/**
 * The growth exponent k of y ∝ x^k between the two largest x values, on the cost above the
 * fixed part (the fitted intercept, floored at 0): k ≈ 1 is linear, k < 1 better, k ≈ 2 quadratic.
 * Using the marginal cost keeps a large constant (the network round trip) from hiding a
 * super-linear term.
 */
export function growthExponent(xs: readonly number[], ys: readonly number[]): number {
  const fit = linearFit(xs, ys);
  const order = xs.map((x, i) => [x, ys[i] as number] as const).sort((p, q) => p[0] - q[0]);
  const [x1, y1] = order[order.length - 2] as readonly [number, number];
  const [x2, y2] = order[order.length - 1] as readonly [number, number];
  const base = Math.max(0, fit.intercept);
  const m1 = y1 - base;
  const m2 = y2 - base;
  if (!(m1 > 0 && m2 > 0 && x1 > 0 && x2 > x1)) return Number.NaN;
  return Math.log(m2 / m1) / Math.log(x2 / x1);
}

/** Summary of one measurement window's latencies (ms). */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export function summarize(latenciesMs: readonly number[]): LatencySummary {
  return {
    count: latenciesMs.length,
    p50: percentile(latenciesMs, 0.5),
    p99: percentile(latenciesMs, 0.99),
    max:
      latenciesMs.length === 0
        ? Number.NaN
        : latenciesMs.reduce((m, x) => Math.max(m, x), Number.NEGATIVE_INFINITY),
  };
}

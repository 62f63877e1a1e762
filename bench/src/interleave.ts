// Rounds of side-by-side measurements: after a warm-up of each side, every round runs every
// side once, rotating which goes first, so drift of a shared machine hits all sides alike.

export interface Side<R> {
  readonly name: string;
  run(): Promise<R>;
}

export interface RoundOptions {
  readonly rounds: number;
  /** Unrecorded runs of each side before the first round. */
  readonly warmup: number;
  /** Progress lines (stderr). */
  readonly progress?: (line: string) => void;
  readonly label?: string;
}

/** The order of the sides in round `round`: rotated by one each round (AB, BA, AB… for two). */
export function roundOrder(sides: number, round: number): number[] {
  return Array.from({ length: sides }, (_, i) => (i + round) % sides);
}

/** Results per side (in the order given), one per round. */
export async function interleave<R>(sides: readonly Side<R>[], opts: RoundOptions): Promise<R[][]> {
  if (sides.length === 0) throw new RangeError('interleave: no sides');
  for (let w = 0; w < opts.warmup; w++) for (const s of sides) await s.run();
  const results: R[][] = sides.map(() => []);
  for (let r = 0; r < opts.rounds; r++) {
    for (const i of roundOrder(sides.length, r)) {
      results[i]?.push(await (sides[i] as Side<R>).run());
    }
    opts.progress?.(`${opts.label ?? 'rounds'}: round ${r + 1}/${opts.rounds}`);
  }
  return results;
}

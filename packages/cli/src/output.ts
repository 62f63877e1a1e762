import type { Writable } from 'node:stream';

/** Print one JSON document followed by a newline. */
export function printJson(out: Writable, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

const ANSI = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
export type Colour = keyof typeof ANSI;

/** Colour only when writing to a terminal and NO_COLOR is not set. */
export function colourizer(
  out: { isTTY?: boolean },
  env: NodeJS.ProcessEnv,
): (c: Colour, s: string) => string {
  const on = out.isTTY === true && env.NO_COLOR === undefined && env.TERM !== 'dumb';
  return (c, s) => (on ? `\u001b[${ANSI[c]}m${s}\u001b[0m` : s);
}

// Visible width, ignoring ANSI colour codes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes start with ESC.
const visible = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length;

/** An aligned text table: a header row, a rule, then the rows. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

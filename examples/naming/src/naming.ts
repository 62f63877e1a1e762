import { randomBytes } from 'node:crypto';
import {
  allow,
  deny,
  type FailurePolicy,
  type Interceptor,
  interceptor,
  type Principal,
} from '@openshell-interceptors/sdk';

/** The longest name allowed: a DNS label. */
export const MAX_NAME_LENGTH = 63;

/** A DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL_HINT = "lower-case letters, digits and '-', starting and ending with a letter or digit";

export const DEFAULT_RESERVED = ['default', 'system', 'admin', 'root', 'openshell', 'gateway'] as const;

export interface NamingOptions {
  /** Interceptor name (default `naming`). */
  readonly name?: string;
  /** Names must match this (default: a DNS label). */
  readonly pattern?: RegExp;
  /** Says in words what `pattern` wants; it goes into the denial reason. */
  readonly patternHint?: string;
  /** Names nobody may use, compared case-insensitively (default DEFAULT_RESERVED). */
  readonly reserved?: readonly string[];
  /** Length of the random suffix of a generated name (default 5, 1-16). */
  readonly suffixLength?: number;
  readonly failurePolicy?: FailurePolicy;
  /** Source of the random suffix (tests). */
  readonly randomSuffix?: (length: number) => string;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function randomSuffix(length: number): string {
  const bytes = randomBytes(length);
  let s = '';
  for (const b of bytes) s += ALPHABET[b % ALPHABET.length];
  return s;
}

/** Turn any text into a DNS-label-safe fragment: lower-case, runs of other characters → '-'. */
export function toLabel(text: string, maxLength: number): string {
  const s = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return s.slice(0, maxLength).replace(/-+$/, '');
}

/** Who a generated name is named after: the user's name part of the subject, the sandbox id, or nobody. */
function ownerOf(p: Principal): string {
  if (p.kind === 'user') return (p.subject.split('@')[0] || p.display_name) ?? '';
  if (p.kind === 'sandbox') return p.sandbox_id;
  return '';
}

/** The generated name for a principal: `<owner>-<suffix>`, a DNS label of at most 63 characters. */
export function generatedName(p: Principal, suffix: string): string {
  const base = toLabel(ownerOf(p), MAX_NAME_LENGTH - suffix.length - 1) || 'sandbox';
  return `${base}-${suffix}`;
}

/** The reason a name is refused (telling the user what to change), or undefined when it is fine. */
export function nameProblem(
  name: string,
  rules: { pattern: RegExp; patternHint: string; reserved: ReadonlySet<string> },
): string | undefined {
  if (name === '') return 'the sandbox name is empty: set a name, or let the naming interceptor generate one';
  if (name.length > MAX_NAME_LENGTH) {
    return `sandbox name "${name.slice(0, 20)}…" is ${name.length} characters long: use at most ${MAX_NAME_LENGTH}`;
  }
  if (rules.reserved.has(name.toLowerCase())) {
    return `sandbox name "${name}" is reserved: choose another name (reserved: ${[...rules.reserved].join(', ')})`;
  }
  rules.pattern.lastIndex = 0;
  if (!rules.pattern.test(name)) {
    const suggestion = toLabel(name, MAX_NAME_LENGTH);
    rules.pattern.lastIndex = 0;
    const hint =
      suggestion && suggestion !== name && rules.pattern.test(suggestion)
        ? `, for example "${suggestion}"`
        : '';
    return `sandbox name "${name}" must be ${rules.patternHint}: rename it${hint}`;
  }
  return undefined;
}

/**
 * The naming interceptor: on CreateSandbox, modify fills a missing name from the
 * caller (`alice-x7k2p`) and lower-cases a given one; validate denies with
 * INVALID_ARGUMENT a name that is too long, reserved, or breaks the pattern.
 */
export function createNamingInterceptor(options: NamingOptions = {}): Interceptor {
  const suffixLength = options.suffixLength ?? 5;
  if (!Number.isInteger(suffixLength) || suffixLength < 1 || suffixLength > 16) {
    throw new RangeError(`naming: suffixLength must be an integer from 1 to 16, got ${suffixLength}`);
  }
  const pattern = options.pattern ?? DNS_LABEL;
  const patternHint =
    options.patternHint ??
    (options.pattern ? `a name matching ${String(options.pattern)}` : `a DNS label (${DNS_LABEL_HINT})`);
  const reserved = new Set(
    (options.reserved ?? DEFAULT_RESERVED).map((w) => w.trim().toLowerCase()).filter(Boolean),
  );
  const suffix = options.randomSuffix ?? randomSuffix;

  return interceptor(
    options.name ?? 'naming',
    options.failurePolicy ? { failurePolicy: options.failurePolicy } : {},
  )
    .modify('CreateSandbox', ({ draft, principal, annotate }) => {
      if (!draft.name) {
        draft.name = generatedName(principal, suffix(suffixLength));
        annotate('naming', 'generated');
        return;
      }
      const lower = draft.name.toLowerCase();
      if (lower !== draft.name) {
        draft.name = lower;
        annotate('naming', 'lower-cased');
      }
    })
    .validate('CreateSandbox', ({ operation }) => {
      const problem = nameProblem(operation.name ?? '', { pattern, patternHint, reserved });
      return problem ? deny('INVALID_ARGUMENT', problem) : allow();
    });
}

/**
 * Options from the environment, for the default export:
 * `NAMING_PATTERN` (a regular expression, anchored for you), `NAMING_PATTERN_HINT`,
 * `NAMING_RESERVED` (comma-separated), `NAMING_SUFFIX_LENGTH`, `NAMING_FAILURE_POLICY`.
 */
export function namingOptionsFromEnv(env: NodeJS.ProcessEnv): NamingOptions {
  const o: { -readonly [K in keyof NamingOptions]: NamingOptions[K] } = {};
  if (env.NAMING_PATTERN) {
    try {
      o.pattern = new RegExp(`^(?:${env.NAMING_PATTERN})$`);
    } catch (err) {
      throw new Error(`NAMING_PATTERN is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  if (env.NAMING_PATTERN_HINT) o.patternHint = env.NAMING_PATTERN_HINT;
  if (env.NAMING_RESERVED !== undefined) o.reserved = env.NAMING_RESERVED.split(',');
  if (env.NAMING_SUFFIX_LENGTH) {
    const n = Number(env.NAMING_SUFFIX_LENGTH);
    if (!Number.isInteger(n) || n < 1 || n > 16) {
      throw new Error(
        `NAMING_SUFFIX_LENGTH must be an integer from 1 to 16, got ${JSON.stringify(env.NAMING_SUFFIX_LENGTH)}`,
      );
    }
    o.suffixLength = n;
  }
  if (env.NAMING_FAILURE_POLICY) {
    const p = env.NAMING_FAILURE_POLICY;
    if (p !== 'fail_closed' && p !== 'fail_open') {
      throw new Error(`NAMING_FAILURE_POLICY must be fail_closed or fail_open, got ${JSON.stringify(p)}`);
    }
    o.failurePolicy = p;
  }
  return o;
}

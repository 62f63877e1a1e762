import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** Copies of the shared spec facts, kept in the repo so a plain clone can test the wire. */
export const TEST_DATA = join(here, '..', 'test-data');
/** The shared spec folder beside the repository, when present (CI has it). */
export const SHARED_SPEC = join(here, '..', '..', '..', '..', 'shared', 'spec');

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export const sharedSpecPresent = existsSync(SHARED_SPEC);

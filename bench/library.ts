/**
 * The library as its users run it: the built package (`dist/`, which `npm run bench` builds first), not
 * the sources through tsx, whose transform keeps function names by wrapping every closure it creates
 * (`__name(...)`, which `--cpu-prof` of the warm benchmark showed among our own frames): a cost the
 * built package does not have.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as Library from '../src/index.js';

const entry = new URL('../dist/index.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) throw new Error('dist/index.js is missing: run `npm run build` (npm run bench does)');

export const { createPlatform } = (await import(entry.href)) as typeof Library;

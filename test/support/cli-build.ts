import { readdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { repoRoot, runProcess } from './spawn.js';

/** The built CLI, as `npm test` leaves it. */
export const cliJs = path.join(repoRoot, 'dist', 'cli.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * `npm test` builds first; when a test file runs alone on newer sources, this builds the CLI entry only
 * (no clean of dist/, which other test files may be reading), with a tsup config written into `work`.
 */
export async function buildCliIfStale(work: string): Promise<void> {
  const built = statSync(cliJs, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (built >= newestSource(path.join(repoRoot, 'src'))) return;
  const config = path.join(work, 'tsup.cli.config.mjs');
  await writeFile(
    config,
    `export default ${JSON.stringify({
      entry: { cli: 'src/cli/main.ts' },
      format: ['esm'],
      banner: { js: '#!/usr/bin/env node' },
      sourcemap: true,
      target: 'node20',
      platform: 'node',
      splitting: false,
      shims: true,
      clean: false,
    })};\n`,
  );
  const build = await runProcess(path.join(repoRoot, 'node_modules', '.bin', 'tsup'), ['--config', config, '--silent'], process.env);
  expect(build.code, build.stderr).toBe(0);
}

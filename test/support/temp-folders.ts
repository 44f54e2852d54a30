import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

/**
 * Per test file (or describe block): returns `folderWith(files)`, which writes `files` (name → content) into a
 * fresh folder under `parent()` (default: the OS temp folder) and returns its path. Every folder it made is
 * removed after the file.
 */
export function useTempFolders(
  tag: string,
  parent: () => string = () => os.tmpdir(),
): (files: Record<string, string>) => Promise<string> {
  const folders: string[] = [];
  afterAll(async () => {
    for (const dir of folders) await rm(dir, { recursive: true, force: true });
  });
  return async (files) => {
    const dir = await mkdtemp(path.join(parent(), `${tag}-`));
    folders.push(dir);
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
    return dir;
  };
}

import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes `contents` readable by this user only, atomically (a reader never sees half a file). */
export async function writePrivateFile(file: string, contents: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, contents, { mode: 0o600 });
  await rename(temp, file);
}

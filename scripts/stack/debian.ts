import { existsSync } from 'node:fs';
import { run } from './process.ts';

let updated = false;

/** True when `binary` is an executable on PATH (or an absolute path that exists). */
export async function hasBinary(binary: string): Promise<boolean> {
  if (binary.startsWith('/')) return existsSync(binary);
  return run('sh', ['-c', `command -v ${binary}`]).then(
    () => true,
    () => false,
  );
}

/**
 * Installs a Debian package when its binary is missing. Only root can do this; anyone else gets
 * told the exact command to run, since a half-installed stack is worse than a clear stop.
 */
export async function ensureDebianPackage(binary: string, pkg: string): Promise<void> {
  if (await hasBinary(binary)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`${binary} is missing; install it with: sudo apt-get install -y ${pkg}`);
  }
  if (!updated) {
    await run('apt-get', ['update'], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
    updated = true;
  }
  await run('apt-get', ['install', '-y', '--no-install-recommends', pkg], {
    env: { DEBIAN_FRONTEND: 'noninteractive' },
  });
}

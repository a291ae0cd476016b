import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ObjectStore } from '../../checkpoints/object-store.ts';

/**
 * An in-memory `ObjectStore` for unit tests: same semantics as S3 for what checkpoint storage
 * uses. `conditional` chooses whether `If-None-Match: *` is honoured (AWS, MinIO) or ignored
 * (S3Proxy 2.6); `failNextPut` injects one failing PUT after the object landed (a lost response).
 */
export class MemoryObjectStore implements ObjectStore {
  readonly url = 's3://memory-bucket';
  readonly objects = new Map<string, Buffer>();
  failNextPutAfterWrite: RegExp | undefined;

  constructor(private readonly conditional: 'supported' | 'ignored' = 'supported') {}

  put(key: string, body: string | Buffer): Promise<void> {
    this.objects.set(key, Buffer.from(body));
    if (this.failNextPutAfterWrite?.test(key) === true) {
      this.failNextPutAfterWrite = undefined;
      return Promise.reject(new Error('socket hang up (the object was stored)'));
    }
    return Promise.resolve();
  }

  async putIfAbsent(key: string, body: string | Buffer): Promise<boolean> {
    if (this.objects.has(key)) return false;
    await this.put(key, body);
    return true;
  }

  async upload(key: string, path: string): Promise<void> {
    await this.put(key, await readFile(path));
  }

  getText(key: string): Promise<string | undefined> {
    return Promise.resolve(this.objects.get(key)?.toString('utf8'));
  }

  async download(key: string, path: string): Promise<boolean> {
    const body = this.objects.get(key);
    if (body === undefined) return false;
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, body);
    return true;
  }

  exists(key: string): Promise<boolean> {
    return Promise.resolve(this.objects.has(key));
  }

  list(prefix: string): Promise<string[]> {
    return Promise.resolve([...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort());
  }

  listFolders(prefix: string): Promise<string[]> {
    const folders = new Set<string>();
    for (const key of this.objects.keys()) {
      if (!key.startsWith(prefix)) continue;
      const slash = key.indexOf('/', prefix.length);
      if (slash >= 0) folders.add(key.slice(0, slash + 1));
    }
    return Promise.resolve([...folders].sort());
  }

  copy(fromKey: string, toKey: string): Promise<void> {
    const body = this.objects.get(fromKey);
    if (body === undefined) return Promise.reject(new Error(`NoSuchKey: ${fromKey}`));
    this.objects.set(toKey, body);
    return Promise.resolve();
  }

  delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.objects.delete(key);
    return Promise.resolve();
  }

  conditionalWrites(_underPrefix?: string): Promise<'supported' | 'ignored'> {
    return Promise.resolve(this.conditional);
  }
}

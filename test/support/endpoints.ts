import { randomUUID } from 'node:crypto';
import { endpointsFromEnv, type ServiceEndpoints } from '../../scripts/stack/endpoints.ts';

/** Where the real services are for this test run (set by the global setup, or by the user). */
export function testEndpoints(): ServiceEndpoints {
  return endpointsFromEnv();
}

/** A name no other test (or earlier run) uses: topics, groups, tables, indices, keys. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`.toLowerCase();
}

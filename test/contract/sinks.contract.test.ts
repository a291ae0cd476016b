/**
 * The sink contract (sink-contract.ts) against every checkpointed sink and its real service:
 * the matrix of sinks × cases in one place.
 */
import { afterAll, describe } from 'vitest';
import { uniqueName } from '../support/endpoints.ts';
import { describeSinkContract } from './sink-contract.ts';
import { elasticsearchTarget, jsonLinesTarget, kafkaTarget, postgresTarget, redisTarget } from './sink-targets.ts';

for (const target of [jsonLinesTarget(), postgresTarget(), kafkaTarget(), redisTarget(), elasticsearchTarget()]) {
  describe(target.name, () => {
    afterAll(async () => {
      await target.close?.();
    });
    describeSinkContract(target, () => uniqueName('contract-job'));
  });
}

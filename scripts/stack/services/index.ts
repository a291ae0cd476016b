import type { StackService } from '../service.ts';
import { elasticsearchService } from './elasticsearch.ts';
import { kafkaService } from './kafka.ts';
import { postgresService } from './postgres.ts';
import { redisService } from './redis.ts';
import { schemaRegistryService } from './schema-registry.ts';

export const allServices: readonly StackService[] = [
  kafkaService,
  postgresService,
  redisService,
  schemaRegistryService,
  elasticsearchService,
];

export function selectServices(names: readonly string[]): readonly StackService[] {
  if (names.length === 0) return allServices;
  return names.map((name) => {
    const found = allServices.find((s) => s.name === name);
    if (found === undefined) throw new Error(`unknown service '${name}'; known: ${allServices.map((s) => s.name).join(', ')}`);
    return found;
  });
}

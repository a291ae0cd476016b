import type { StackService } from '../service.ts';
import { debeziumService } from './debezium.ts';
import { elasticsearchService } from './elasticsearch.ts';
import { kafkaService } from './kafka.ts';
import { postgresService } from './postgres.ts';
import { prometheusService } from './prometheus.ts';
import { redisService } from './redis.ts';
import { s3proxyConditionalService, s3proxyService } from './s3proxy.ts';
import { schemaRegistryService } from './schema-registry.ts';

export const allServices: readonly StackService[] = [
  kafkaService,
  postgresService,
  redisService,
  schemaRegistryService,
  elasticsearchService,
  debeziumService,
  prometheusService,
  s3proxyService,
  s3proxyConditionalService,
];

/**
 * The named services (all when none are named). `withDependencies` adds what they depend on, for
 * `up` only (`up debezium` also brings up Kafka and Postgres); `down debezium` must never stop the
 * Kafka or Postgres other work is using.
 */
export function selectServices(names: readonly string[], withDependencies = false): readonly StackService[] {
  if (names.length === 0) return allServices;
  const selected = new Set<StackService>();
  const add = (name: string): void => {
    const found = allServices.find((s) => s.name === name);
    if (found === undefined)
      throw new Error(`unknown service '${name}'; known: ${allServices.map((s) => s.name).join(', ')}`);
    if (selected.has(found)) return;
    if (withDependencies) for (const dependency of found.dependsOn ?? []) add(dependency);
    selected.add(found);
  };
  for (const name of names) add(name);
  return [...selected];
}

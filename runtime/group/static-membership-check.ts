/**
 * Static membership (KIP-345) needs cdcflow's patch of kafkajs 2.2.4 (scripts/patch-kafkajs.mjs,
 * run on install): unpatched, a consumer given `groupInstanceId` silently joins as a dynamic
 * member and leaves the group when it stops, so every rolling restart rebalances. A group job with
 * an instance id checks the loaded kafkajs once, by behaviour: a ConsumerGroup on a fake
 * coordinator must send the id with JoinGroup, SyncGroup and Heartbeat and send no LeaveGroup,
 * and the broker methods must pass it on to the request encoders.
 */
import { createRequire } from 'node:module';
import { CdcflowError } from '../../state/errors.ts';

export class StaticMembershipUnsupportedError extends CdcflowError {
  constructor(detail: string) {
    super(
      `the installed kafkajs cannot do static group membership (${detail}). ` +
        'Run `node node_modules/cdcflow/scripts/patch-kafkajs.mjs` (or `node scripts/patch-kafkajs.mjs` in a cdcflow checkout), or reinstall so its postinstall step runs; or unset the group instance id (CDCFLOW_GROUP_INSTANCE_ID).',
      { domain: 'user', retriable: false },
    );
  }
}

type Call = { readonly name: string; readonly args: Record<string, unknown> };

interface ConsumerGroupLike {
  joinAndSync(): Promise<void>;
  heartbeat(o: { interval: number }): Promise<void>;
  leave(): Promise<void>;
}
type ConsumerGroupCtor = new (options: Record<string, unknown>) => ConsumerGroupLike;
type BrokerMethod = (this: unknown, args: Record<string, unknown>) => Promise<unknown>;

async function consumerGroupDefect(require: NodeJS.Require): Promise<string | undefined> {
  const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup.js') as ConsumerGroupCtor;
  const calls: Call[] = [];
  const record =
    (name: string, result: unknown = {}) =>
    (args: Record<string, unknown>) => {
      calls.push({ name, args });
      return Promise.resolve(result);
    };
  const coordinator = {
    joinGroup: record('join', { generationId: 1, leaderId: 'other', memberId: 'm-1', members: [], groupProtocol: 'p' }),
    syncGroup: record('sync', { memberAssignment: Buffer.alloc(0) }),
    heartbeat: record('heartbeat'),
    leaveGroup: record('leave'),
  };
  const logger = { info() {}, debug() {}, warn() {}, error() {}, namespace: () => logger };
  const group = new ConsumerGroup({
    retry: { retries: 0 },
    cluster: {
      findGroupCoordinator: () => Promise.resolve(coordinator),
      findTopicPartitionMetadata: () => [],
      refreshMetadata: () => Promise.resolve(),
      committedOffsets: () => ({}),
    },
    groupId: 'cdcflow-static-membership-check',
    topics: [],
    topicConfigurations: {},
    logger,
    instrumentationEmitter: { emit() {} },
    assigners: [],
    sessionTimeout: 10_000,
    rebalanceTimeout: 10_000,
    groupInstanceId: 'instance-1',
  });
  await group.joinAndSync();
  await group.heartbeat({ interval: 0 });
  await group.leave();
  const sent = (name: string) => calls.find((c) => c.name === name)?.args['groupInstanceId'];
  for (const name of ['join', 'sync', 'heartbeat'])
    if (sent(name) !== 'instance-1') return `its ${name} request does not carry groupInstanceId`;
  if (calls.some((c) => c.name === 'leave')) return 'a static member sends LeaveGroup when it stops';
  return undefined;
}

function brokerDefect(require: NodeJS.Require): string | undefined {
  const Broker = require('kafkajs/src/broker/index.js') as { prototype: Record<string | symbol, unknown> };
  const encoded: Call[] = [];
  const fake: Record<string | symbol, unknown> = Object.create(Broker.prototype) as Record<string | symbol, unknown>;
  fake['lookupRequest'] = (_key: unknown, request: { name?: string }) => (args: Record<string, unknown>) => {
    encoded.push({ name: String(request?.name ?? ''), args });
    return {};
  };
  for (const symbol of Object.getOwnPropertySymbols(Broker.prototype))
    if (String(symbol.description).includes('sendRequest')) fake[symbol] = () => Promise.resolve({});
  const methods = ['joinGroup', 'syncGroup', 'heartbeat', 'leaveGroup'] as const;
  for (const method of methods)
    void (Broker.prototype[method] as BrokerMethod).call(fake, {
      groupId: 'g',
      memberId: 'm',
      groupInstanceId: 'instance-1',
      groupProtocols: [],
    });
  const missing = methods.filter((_, i) => encoded[i]?.args['groupInstanceId'] !== 'instance-1');
  return missing.length === 0 ? undefined : `its broker ${missing.join(', ')} drop groupInstanceId`;
}

/** kafka.consumer() and the consumer factory only pass options on: their loaded code must name the option. */
function factoryDefect(require: NodeJS.Require): string | undefined {
  const { Kafka } = require('kafkajs') as { Kafka: { prototype: { consumer: () => unknown } } };
  const createConsumer = require('kafkajs/src/consumer/index.js') as () => unknown;
  if (!String(Kafka.prototype.consumer).includes('groupInstanceId')) return 'kafka.consumer() drops groupInstanceId';
  if (!String(createConsumer).includes('groupInstanceId')) return 'its consumer drops groupInstanceId';
  return undefined;
}

let verdict: Promise<string | undefined> | undefined;

/** Why the kafkajs resolved from `resolveFrom` cannot be a static member, or undefined when it can. */
export async function staticMembershipDefect(resolveFrom: string = import.meta.url): Promise<string | undefined> {
  const require = createRequire(resolveFrom);
  try {
    return factoryDefect(require) ?? brokerDefect(require) ?? (await consumerGroupDefect(require));
  } catch (error) {
    return `checking it failed: ${(error as Error).message}`;
  }
}

/** Throws `StaticMembershipUnsupportedError` unless the loaded kafkajs is patched (checked once per process). */
export async function assertStaticMembershipSupported(): Promise<void> {
  verdict ??= staticMembershipDefect();
  const defect = await verdict;
  if (defect !== undefined) throw new StaticMembershipUnsupportedError(defect);
}

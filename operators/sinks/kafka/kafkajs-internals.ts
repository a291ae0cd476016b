/**
 * The few kafkajs 2.2.4 internals the transactional sink needs, typed, in one place.
 *
 * Why internals: the public producer hides its producer id and epoch and initialises them only
 * once, so it can neither hand out a handle that survives a crash nor start each transaction on a
 * fresh epoch. Its own building blocks can: a `Cluster` (connections, metadata, coordinator
 * lookup), an `EosManager` (producer id/epoch, sequences, AddPartitionsToTxn) and a message
 * producer bound to that manager. kafkajs 2.2.4 is the library's last release, so these shapes
 * do not move; the version check below fails loudly if someone upgrades it anyway.
 */
import { createRequire } from 'node:module';
import { Kafka, Partitioners, logLevel, type Message, type RecordMetadata } from 'kafkajs';
import { kafkaClientConfig, type KafkaConnection } from '../../kafka-connection.ts';
import { KafkaSinkError } from './kafka-sink-error.ts';

const require = createRequire(import.meta.url);
const SUPPORTED_VERSION = '2.2.4';
const COORDINATOR_TYPE_TRANSACTION = 1;

export interface TxnBroker {
  initProducerId(request: {
    transactionalId: string;
    transactionTimeout: number;
  }): Promise<{ producerId: string; producerEpoch: number }>;
  endTxn(request: {
    transactionalId: string;
    producerId: string;
    producerEpoch: number;
    transactionResult: boolean;
  }): Promise<unknown>;
}

export interface InternalCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  refreshMetadata(): Promise<void>;
  findGroupCoordinator(request: { groupId: string; coordinatorType: number }): Promise<TxnBroker>;
  getNodeIds(): string[];
  findBroker(request: { nodeId: string }): Promise<object>;
}

/** kafkajs' per-producer exactly-once state: producer id, epoch, sequences, partitions in the transaction. */
export interface EosManager {
  getProducerId(): string | number;
  getProducerEpoch(): number;
  initProducerId(): Promise<void>;
  beginTransaction(): void;
  isInTransaction(): boolean;
}

export interface TopicMessages {
  readonly topic: string;
  readonly messages: Message[];
}

export interface MessageProducer {
  sendBatch(request: { acks: number; topicMessages: TopicMessages[]; compression?: number }): Promise<RecordMetadata[]>;
}

type CreateEosManager = (options: {
  logger: unknown;
  cluster: InternalCluster;
  transactionTimeout: number;
  transactional: boolean;
  transactionalId: string;
}) => EosManager;

type CreateMessageProducer = (options: {
  logger: unknown;
  cluster: InternalCluster;
  partitioner: unknown;
  eosManager: EosManager;
  idempotent: boolean;
  retrier: unknown;
  getConnectionStatus: () => string;
}) => MessageProducer;

type CreateRetry = (options: Readonly<Record<string, number>>) => unknown;
type ClusterFactory = (options: {
  metadataMaxAge: number;
  allowAutoTopicCreation: boolean;
  maxInFlightRequests: number | null;
  instrumentationEmitter: null;
}) => InternalCluster;

interface Internals {
  readonly createEosManager: CreateEosManager;
  readonly createMessageProducer: CreateMessageProducer;
  readonly createRetry: CreateRetry;
}

let loaded: Internals | undefined;

function internals(): Internals {
  if (loaded !== undefined) return loaded;
  const { version } = require('kafkajs/package.json') as { version: string };
  if (version !== SUPPORTED_VERSION) {
    throw new KafkaSinkError(
      `the Kafka sink drives kafkajs ${SUPPORTED_VERSION} internals but kafkajs ${version} is installed; pin kafkajs to ${SUPPORTED_VERSION}`,
      { domain: 'user' },
    );
  }
  loaded = {
    createEosManager: require('kafkajs/src/producer/eosManager') as CreateEosManager,
    createMessageProducer: require('kafkajs/src/producer/messageProducer.js') as CreateMessageProducer,
    createRetry: require('kafkajs/src/retry') as CreateRetry,
  };
  return loaded;
}

export interface ClientOptions {
  /** Brokers, TLS and SASL (operators/kafka-connection.ts). */
  readonly connection: KafkaConnection;
  readonly clientId: string;
  readonly transactionTimeoutMs: number;
}

/** One connection set to the cluster; transactions of one sink instance share it. */
export class InternalClient {
  readonly cluster: InternalCluster;
  private readonly logger: unknown;
  private connected = false;

  constructor(private readonly options: ClientOptions) {
    const kafka = new Kafka(
      kafkaClientConfig(options.connection, { clientId: options.clientId, logLevel: logLevel.NOTHING }),
    );
    const factory = privateMember<ClusterFactory>(kafka, 'private:Kafka:createCluster');
    this.logger = privateMember<{ namespace(name: string): unknown }>(kafka, 'private:Kafka:logger', false).namespace(
      'TransactionalSink',
    );
    // One request in flight per broker keeps idempotent sequences in order.
    this.cluster = factory({
      metadataMaxAge: 300_000,
      allowAutoTopicCreation: true,
      maxInFlightRequests: 1,
      instrumentationEmitter: null,
    });
  }

  async connect(): Promise<void> {
    if (this.connected) return;
    await this.cluster.connect();
    this.connected = true;
  }

  async disconnect(): Promise<void> {
    this.connected = false;
    await this.cluster.disconnect();
  }

  transactionCoordinator(transactionalId: string): Promise<TxnBroker> {
    return this.cluster.findGroupCoordinator({
      groupId: transactionalId,
      coordinatorType: COORDINATOR_TYPE_TRANSACTION,
    });
  }

  /** A fresh exactly-once manager for `transactionalId`, with a message producer bound to it. */
  transactional(transactionalId: string): { eos: EosManager; producer: MessageProducer } {
    const { createEosManager, createMessageProducer, createRetry } = internals();
    const logger = this.logger;
    const eos = createEosManager({
      logger,
      cluster: this.cluster,
      transactionTimeout: this.options.transactionTimeoutMs,
      transactional: true,
      transactionalId,
    });
    const producer = createMessageProducer({
      logger,
      cluster: this.cluster,
      partitioner: Partitioners.DefaultPartitioner(),
      eosManager: eos,
      idempotent: true,
      // Bounded: a send that cannot get through fails the checkpoint instead of hanging it.
      retrier: createRetry({ retries: 5, initialRetryTime: 100, maxRetryTime: 5_000, factor: 0.2, multiplier: 2 }),
      getConnectionStatus: () => (this.connected ? 'connected' : 'disconnected'),
    });
    return { eos, producer };
  }
}

function privateMember<T>(target: object, description: string, callable = true): T {
  const symbol = Object.getOwnPropertySymbols(target).find((s) => s.description === description);
  const member = symbol === undefined ? undefined : (target as Record<symbol, unknown>)[symbol];
  if (member === undefined || (callable && typeof member !== 'function')) {
    throw new KafkaSinkError(
      `kafkajs no longer has '${description}'; the Kafka sink needs kafkajs ${SUPPORTED_VERSION}`,
      { domain: 'internal' },
    );
  }
  return member as T;
}

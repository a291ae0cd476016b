/**
 * ListTransactions (API key 66, KIP-664, Kafka ≥ 3.0), which kafkajs 2.2.4 does not have: which
 * transactional ids have a transaction open on the cluster, read without touching them (an
 * InitProducerId would abort them). The fresh-start check of the Kafka sink uses it.
 *
 * kafkajs only writes request header v1 and reads response header v0; ListTransactions is a
 * "flexible" API (header v2 / response header v1 = the old header plus a tagged-field section), so
 * the body below starts with the request header's empty tagged fields and the decoder skips the
 * response header's. Every broker coordinates some transactions, so all of them are asked.
 */
import { createRequire } from 'node:module';
import type { InternalCluster } from './kafkajs-internals.ts';
import { KafkaSinkError } from './kafka-sink-error.ts';

const require = createRequire(import.meta.url);
const API_KEY = 66;
const UNSUPPORTED_VERSION = 35;

interface KafkajsEncoder {
  writeInt16(value: number): KafkajsEncoder;
  writeUVarInt(value: number): KafkajsEncoder;
  writeUVarIntString(value: string): KafkajsEncoder;
}

interface KafkajsDecoder {
  readInt16(): number;
  readInt32(): number;
  readInt64(): { toString(): string };
  readUVarInt(): number;
  readUVarIntString(): string;
  readUVarIntArray<T>(reader: (decoder: KafkajsDecoder) => T): T[] | null;
  readBytes(length: number): Buffer;
}

export interface ListedTransaction {
  readonly transactionalId: string;
  readonly producerId: string;
  /** `Ongoing`, `PrepareCommit`, `PrepareAbort`, `CompleteCommit`, `CompleteAbort`, `Empty`, … */
  readonly state: string;
}

interface BrokerWithPool {
  readonly connectionPool: { send(request: unknown): Promise<unknown> };
}

/** Transactions in one of `states` on every broker of the cluster; `undefined` if the brokers do not know ListTransactions. */
export async function listTransactions(
  cluster: InternalCluster,
  states: readonly string[],
): Promise<ListedTransaction[] | undefined> {
  const Encoder = require('kafkajs/src/protocol/encoder') as new () => KafkajsEncoder;
  const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => KafkajsDecoder;
  await cluster.refreshMetadata();
  const found: ListedTransaction[] = [];
  for (const nodeId of cluster.getNodeIds()) {
    const broker = (await cluster.findBroker({ nodeId })) as unknown as BrokerWithPool;
    const request = {
      apiKey: API_KEY,
      apiVersion: 0,
      apiName: 'ListTransactions',
      encode: async () => {
        const body = new Encoder().writeUVarInt(0); // request header v2: no tagged fields
        body.writeUVarInt(states.length + 1);
        for (const state of states) body.writeUVarIntString(state);
        return body.writeUVarInt(1).writeUVarInt(0); // no producer id filter; no tagged fields
      },
    };
    const response = {
      decode: async (payload: Buffer) => {
        const decoder = new Decoder(payload);
        skipTaggedFields(decoder); // response header v1
        decoder.readInt32(); // throttle time
        const errorCode = decoder.readInt16();
        decoder.readUVarIntArray((d) => d.readUVarIntString());
        const transactions = decoder.readUVarIntArray((d) => {
          const transactionalId = d.readUVarIntString();
          const producerId = d.readInt64().toString();
          const state = d.readUVarIntString();
          skipTaggedFields(d);
          return { transactionalId, producerId, state };
        });
        return { errorCode, transactions: transactions ?? [] };
      },
      parse: async (data: unknown) => data,
    };
    let result: { errorCode: number; transactions: ListedTransaction[] };
    try {
      result = (await broker.connectionPool.send({ request, response })) as typeof result;
    } catch (error) {
      // A broker before 3.0 answers an unknown API key by closing the connection or UNSUPPORTED_VERSION.
      if ((error as { type?: unknown }).type === 'UNSUPPORTED_VERSION') return undefined;
      throw error;
    }
    if (result.errorCode === UNSUPPORTED_VERSION) return undefined;
    if (result.errorCode !== 0) {
      throw new KafkaSinkError(
        `ListTransactions on broker ${nodeId} failed with error code ${result.errorCode}; the job needs DESCRIBE on its transactional ids`,
        { retriable: true },
      );
    }
    found.push(...result.transactions);
  }
  return found;
}

function skipTaggedFields(decoder: KafkajsDecoder): void {
  const count = decoder.readUVarInt();
  for (let i = 0; i < count; i++) {
    decoder.readUVarInt();
    decoder.readBytes(decoder.readUVarInt());
  }
}

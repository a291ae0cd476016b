// kafkajs 2.2.4 (unmaintained) lets a read_committed consumer deliver records of an ABORTED
// transaction when the broker lists aborted transactions in abort order rather than by first
// offset — which it does whenever transactions end in another order than they began (two
// producers: A begins, B begins, B commits, A aborts → A's records are delivered). The Java
// client walks them by first offset (a priority queue); this rewrites kafkajs's filter to do the
// same. Idempotent; runs on `npm install` (postinstall) and before `npm test` / `npm run demo`.
// It also patches static membership into the consumer (below).
// The Kafka source checks the loaded filter at start (operators/sources/kafka/aborted-filter-check.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const MARKER = 'cdcflow: aborted transactions by first offset';
const FIXED = `// ${MARKER} (patched by cdcflow's scripts/patch-kafkajs.mjs)
const Long = require('../utils/long')
const ABORTED_MESSAGE_KEY = Buffer.from([0, 0, 0, 0])

const isAbortMarker = ({ key }) => {
  if (!key) return false
  return Buffer.from(key).equals(ABORTED_MESSAGE_KEY)
}

/**
 * Remove messages of aborted transactions and keep the rest. The broker lists aborted
 * transactions in the order they were aborted; walk them by first offset, and enter every one
 * whose first offset a message has reached (not one per message).
 */
module.exports = ({ messages, abortedTransactions }) => {
  if (!abortedTransactions || !abortedTransactions.length) {
    return messages
  }
  const remaining = [...abortedTransactions].sort((a, b) =>
    Long.fromValue(a.firstOffset).compare(Long.fromValue(b.firstOffset))
  )
  const aborting = new Set()

  return messages.filter(message => {
    const offset = Long.fromValue(message.offset)
    while (remaining.length && offset.gte(Long.fromValue(remaining[0].firstOffset))) {
      aborting.add(String(remaining.shift().producerId))
    }
    const { producerId, inTransaction } = message.batchContext
    if (isAbortMarker(message)) {
      aborting.delete(String(producerId))
    } else if (inTransaction && aborting.has(String(producerId))) {
      return false
    }
    return true
  })
}
`;

export function patchKafkajs() {
  let file;
  try {
    file = createRequire(import.meta.url).resolve('kafkajs/src/consumer/filterAbortedMessages.js');
  } catch {
    return 'kafkajs not installed';
  }
  const current = readFileSync(file, 'utf8');
  if (current.includes(MARKER)) return 'already patched';
  if (!current.includes('const remainingAbortedTransactions = [...abortedTransactions]'))
    return `unknown kafkajs filter at ${file}: left as is`;
  writeFileSync(file, FIXED);
  return `patched ${file}`;
}

// Static membership (KIP-345). kafkajs 2.2.4 encodes `groupInstanceId` in JoinGroup v5,
// SyncGroup v3, Heartbeat v3 and LeaveGroup v3, but neither its consumer nor its broker methods
// pass one. These edits thread a consumer option `groupInstanceId` through join, sync and
// heartbeat, keep a static member from sending LeaveGroup when it stops (the broker keeps its
// partitions until the session times out: a restart within it causes no rebalance), and add the
// generation to the GROUP_JOIN event (the sticky assigner orders conflicting claims by it).
// Every edit must find its target exactly once, or the script fails: a kafkajs it does not know
// is never half patched. The group runtime checks the loaded code at start
// (runtime/group/static-membership-check.ts).
export const STATIC_MARKER = 'cdcflow: static membership (KIP-345) v1';

export const STATIC_EDITS = {
  'kafkajs/src/index.js': [
    [
      `    readUncommitted = false,
    rackId = '',
  } = {}) {`,
      `    readUncommitted = false,
    rackId = '',
    groupInstanceId = null,
  } = {}) {`,
    ],
    [
      `      rackId,
      metadataMaxAge,
    })
  }`,
      `      rackId,
      metadataMaxAge,
      groupInstanceId,
    })
  }`,
    ],
  ],
  'kafkajs/src/broker/index.js': [
    [
      `  async heartbeat({ groupId, groupGenerationId, memberId }) {
    const heartbeat = this.lookupRequest(apiKeys.Heartbeat, requests.Heartbeat)
    return await this[PRIVATE.SEND_REQUEST](heartbeat({ groupId, groupGenerationId, memberId }))`,
      `  async heartbeat({ groupId, groupGenerationId, memberId, groupInstanceId = null }) {
    const heartbeat = this.lookupRequest(apiKeys.Heartbeat, requests.Heartbeat)
    return await this[PRIVATE.SEND_REQUEST](
      heartbeat({ groupId, groupGenerationId, memberId, groupInstanceId })
    )`,
    ],
    [
      `    memberId = '',
    protocolType = 'consumer',
    groupProtocols,
  }) {`,
      `    memberId = '',
    groupInstanceId = null,
    protocolType = 'consumer',
    groupProtocols,
  }) {`,
    ],
    [
      `          memberId: assignedMemberId,
          protocolType,`,
      `          memberId: assignedMemberId,
          groupInstanceId,
          protocolType,`,
    ],
    [
      `  async leaveGroup({ groupId, memberId }) {
    const leaveGroup = this.lookupRequest(apiKeys.LeaveGroup, requests.LeaveGroup)
    return await this[PRIVATE.SEND_REQUEST](leaveGroup({ groupId, memberId }))`,
      `  async leaveGroup({ groupId, memberId, groupInstanceId = null }) {
    const leaveGroup = this.lookupRequest(apiKeys.LeaveGroup, requests.LeaveGroup)
    return await this[PRIVATE.SEND_REQUEST](leaveGroup({ groupId, memberId, groupInstanceId }))`,
    ],
    [
      `  async syncGroup({ groupId, generationId, memberId, groupAssignment }) {
    const syncGroup = this.lookupRequest(apiKeys.SyncGroup, requests.SyncGroup)
    return await this[PRIVATE.SEND_REQUEST](
      syncGroup({
        groupId,
        generationId,
        memberId,
        groupAssignment,`,
      `  async syncGroup({ groupId, generationId, memberId, groupInstanceId = null, groupAssignment }) {
    const syncGroup = this.lookupRequest(apiKeys.SyncGroup, requests.SyncGroup)
    return await this[PRIVATE.SEND_REQUEST](
      syncGroup({
        groupId,
        generationId,
        memberId,
        groupInstanceId,
        groupAssignment,`,
    ],
  ],
  'kafkajs/src/consumer/index.js': [
    [
      `  metadataMaxAge,
}) => {`,
      `  metadataMaxAge,
  groupInstanceId = null,
}) => {`,
    ],
    [
      `        autoCommitThreshold,
      })

      runner = new Runner({`,
      `        autoCommitThreshold,
        groupInstanceId,
      })

      runner = new Runner({`,
    ],
  ],
  'kafkajs/src/consumer/consumerGroup.js': [
    [
      `    metadataMaxAge,
  }) {`,
      `    metadataMaxAge,
    groupInstanceId = null,
  }) {`,
    ],
    [
      `    this.metadataMaxAge = metadataMaxAge
`,
      `    this.metadataMaxAge = metadataMaxAge
    this.groupInstanceId = groupInstanceId
`,
    ],
    [
      `          groupGenerationId: generationId,
        }

        await this.coordinator.heartbeat(payload)`,
      `          groupGenerationId: generationId,
          groupInstanceId: this.groupInstanceId,
        }

        await this.coordinator.heartbeat(payload)`,
    ],
    [
      `      memberId: this.memberId || '',
      groupProtocols:`,
      `      memberId: this.memberId || '',
      groupInstanceId: this.groupInstanceId,
      groupProtocols:`,
    ],
    [
      `  async leave() {
    const { groupId, memberId } = this
    if (memberId) {`,
      `  async leave() {
    const { groupId, memberId } = this
    if (memberId && this.groupInstanceId) {
      // A static member does not leave: the broker keeps its partitions until the session times out.
      this.memberId = null
      return
    }
    if (memberId) {`,
    ],
    [
      `      memberId,
      groupAssignment: assignment,
    })`,
      `      memberId,
      groupInstanceId: this.groupInstanceId,
      groupAssignment: assignment,
    })`,
    ],
    [
      `          groupProtocol: this.groupProtocol,
          duration: Date.now() - startJoin,`,
      `          groupProtocol: this.groupProtocol,
          generationId: this.generationId,
          groupInstanceId: this.groupInstanceId,
          duration: Date.now() - startJoin,`,
    ],
  ],
};

export class KafkajsPatchError extends Error {}

/** Applies the static-membership edits (idempotent); throws `KafkajsPatchError` when a target is missing. */
export function patchKafkajsStaticMembership(resolveFrom = import.meta.url) {
  const require = createRequire(resolveFrom);
  try {
    require.resolve('kafkajs/src/consumer/consumerGroup.js');
  } catch {
    return 'kafkajs not installed';
  }
  const outcomes = [];
  for (const [module, edits] of Object.entries(STATIC_EDITS)) {
    const file = require.resolve(module);
    let text = readFileSync(file, 'utf8');
    if (text.includes(STATIC_MARKER)) {
      outcomes.push(`${module}: already patched`);
      continue;
    }
    for (const [from, to] of edits) {
      const at = text.indexOf(from);
      if (at < 0 || text.indexOf(from, at + 1) >= 0)
        throw new KafkajsPatchError(
          `cdcflow cannot patch ${file} for static membership: ${at < 0 ? 'the code it edits is not there' : 'the code it edits is there more than once'} ` +
            `(expected kafkajs 2.2.4, the version cdcflow pins). Reinstall kafkajs 2.2.4 (npm ci), then run node scripts/patch-kafkajs.mjs. Missing:\n${from}`,
        );
      text = text.slice(0, at) + to + text.slice(at + from.length);
    }
    writeFileSync(file, `// ${STATIC_MARKER} (patched by cdcflow's scripts/patch-kafkajs.mjs)\n${text}`);
    outcomes.push(`${module}: patched`);
  }
  return outcomes.join('; ');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const outcome = patchKafkajs();
  if (outcome.startsWith('patched') || outcome.startsWith('unknown'))
    console.log(`[cdcflow] kafkajs aborted-transaction filter: ${outcome}`);
  try {
    const membership = patchKafkajsStaticMembership();
    if (membership.includes(': patched')) console.log(`[cdcflow] kafkajs static membership: ${membership}`);
  } catch (error) {
    console.error(`[cdcflow] ${error.message}`);
    process.exit(1);
  }
}

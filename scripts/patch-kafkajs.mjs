// kafkajs 2.2.4 (unmaintained) lets a read_committed consumer deliver records of an ABORTED
// transaction when the broker lists aborted transactions in abort order rather than by first
// offset — which it does whenever transactions end in another order than they began (two
// producers: A begins, B begins, B commits, A aborts → A's records are delivered). The Java
// client walks them by first offset (a priority queue); this rewrites kafkajs's filter to do the
// same. Idempotent; runs on `npm install` (postinstall) and before `npm test` / `npm run demo`.
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

if (import.meta.url === `file://${process.argv[1]}`) {
  const outcome = patchKafkajs();
  if (outcome.startsWith('patched') || outcome.startsWith('unknown'))
    console.log(`[cdcflow] kafkajs aborted-transaction filter: ${outcome}`);
}

/**
 * Group membership against the real Kafka: the sticky assigner and static membership (KIP-345).
 *
 * 1. Two group-job processes own 4 partitions (2 each); a third joins. Every partition an
 *    existing process still owns afterwards was already its own, and its task was never
 *    restarted (same epoch, no new task started): only the partition the newcomer needs moves.
 *    With kafkajs's round robin (CDCFLOW_GROUP_ASSIGNER=round-robin) this fails: the join
 *    reshuffles partitions between the existing processes.
 * 2. Rolling restart: a static process stops gracefully (no LeaveGroup) and starts again within
 *    the session timeout: the others see no rebalance (no new assignment, same epochs), and it
 *    gets the same partitions back, claiming new epochs for them.
 * 3. A second member with the same instance id fences the first: its group job fails with
 *    `GroupInstanceFencedError` instead of taking the id back in a loop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveKafkaConnection } from '../../operators/kafka-connection.ts';
import { GroupJob } from '../../runtime/group/group-job.ts';
import { GroupInstanceFencedError, GroupMembership } from '../../runtime/group/group-membership.ts';
import { collectSink, debeziumSource } from '../../runtime/index.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { createTopic, testKafka } from '../support/source-jobs.ts';

const dir = mkdtempSync(join(tmpdir(), 'cdcflow-group-membership-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SESSION_MS = 10_000;

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

interface Process {
  readonly name: string;
  readonly job: GroupJob;
  /** Assignments this process received. */
  readonly assignments: string[];
}

describe('group membership: sticky assignment and static members', () => {
  const jobName = uniqueName('group-members');
  const topic = `${jobName}-orders`;
  const running: Process[] = [];

  afterAll(async () => {
    await Promise.all(running.map((p) => p.job.stop().catch(() => undefined)));
  });

  async function start(name: string): Promise<Process> {
    const assignments: string[] = [];
    const job = await GroupJob.start({
      jobName,
      topics: [topic],
      sessionTimeoutMs: SESSION_MS,
      groupInstanceId: `${jobName}-${name}`,
      handleSignals: false,
      log: (line) => {
        if (line.startsWith('assignment:')) assignments.push(line);
      },
      environment: {
        checkpoints: { dir: join(dir, 'checkpoints'), intervalMs: 1_000 },
        state: { backend: 'memory', dir: join(dir, 'state', name) },
        log: () => undefined,
      },
      build: (env, task) =>
        env
          .fromSource(
            debeziumSource<unknown>({ topics: [task.topic], groupId: task.groupId, partitionTask: task.source }),
          )
          .sinkTo(collectSink([])),
    });
    const process = { name, job, assignments };
    running.push(process);
    return process;
  }

  /** Partition → epoch of every task the process runs. */
  const owned = (p: Process) => new Map(p.job.owned().map((t) => [t.partition, t.epoch]));
  /** Once the processes together run exactly one task per partition, with the given counts. */
  const settled = (processes: Process[], counts: number[]) => () => {
    const all = processes.flatMap((p) => [...owned(p).keys()]);
    const ok = new Set(all).size === 4 && all.length === 4 && processes.every((p, i) => owned(p).size === counts[i]);
    return ok ? processes.map(owned) : undefined;
  };

  it('a join moves only what the newcomer needs; a static restart within the session moves nothing', async () => {
    await createTopic(testKafka(jobName), topic, 4);
    const a = await start('a');
    await waitFor('a owns all 4', settled([a], [4]));
    const b = await start('b');
    const [beforeA, beforeB] = await waitFor('a and b own 2 each', settled([a, b], [2, 2]));
    const startedBefore = [a, b].map((p) => p.job.owned().length);
    expect(startedBefore).toEqual([2, 2]);

    const c = await start('c');
    const stable = (await waitFor('c owns one', () => {
      const counts = [a, b, c].map((p) => owned(p).size).sort();
      return counts.join() === '1,1,2' ? settled([a, b, c], [owned(a).size, owned(b).size, 1])() : undefined;
    }))!;
    // Every partition a and b still run was theirs, in the same task (same epoch).
    for (const [now, before, name] of [
      [stable[0]!, beforeA!, 'a'],
      [stable[1]!, beforeB!, 'b'],
    ] as const)
      for (const [partition, epoch] of now)
        expect(
          before.get(partition),
          `${name} runs partition ${partition}: ${[...before.keys()].join(',')} before`,
        ).toBe(epoch);

    // Rolling restart of a: gracefully stopped (no LeaveGroup), started again within the session.
    const assignmentsOfOthers = [b, c].map((p) => p.assignments.length);
    const aOwned = owned(a);
    const stoppedAt = Date.now();
    await a.job.stop();
    running.splice(running.indexOf(a), 1);
    const a2 = await start('a');
    const back = await waitFor('a has its partitions back', () =>
      owned(a2).size === aOwned.size ? owned(a2) : undefined,
    );
    expect(Date.now() - stoppedAt, 'restart took longer than the session timeout').toBeLessThan(SESSION_MS);
    expect([...back.keys()].sort()).toEqual([...aOwned.keys()].sort());
    // A restarted static member still claims a new epoch for each partition.
    for (const [partition, epoch] of back) expect(epoch).toBeGreaterThan(aOwned.get(partition)!);
    // Beyond the session timeout of the old member: still no rebalance for the others.
    await new Promise((resolve) => setTimeout(resolve, SESSION_MS + 2_000 - (Date.now() - stoppedAt)));
    expect([b, c].map((p) => p.assignments.length)).toEqual(assignmentsOfOthers);
    expect([owned(b), owned(c)]).toEqual([stable[1], stable[2]]);
    expect(a2.assignments).toHaveLength(1);

    // A second member with c's instance id fences c: a typed failure, not a restart loop.
    const intruder = new GroupMembership({
      connection: resolveKafkaConnection({ brokers: testEndpoints().kafkaBrokers.split(',') }),
      groupId: jobName,
      topics: [topic],
      clientId: `${jobName}-intruder`,
      sessionTimeoutMs: SESSION_MS,
      groupInstanceId: `${jobName}-c`,
      onAssignment: () => undefined,
      onFatal: () => undefined,
    });
    try {
      await intruder.start();
      const failure = await c.job.done.then(
        () => new Error('c ended without an error'),
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(GroupInstanceFencedError);
      expect((failure as Error).message).toMatch(/CDCFLOW_GROUP_INSTANCE_ID/);
      running.splice(running.indexOf(c), 1);
    } finally {
      await intruder.stop();
    }
  }, 120_000);
});

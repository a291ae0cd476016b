/**
 * Readiness and health of a group-mode process (runtime/group/group-http-server.ts): what a
 * Kubernetes probe is told, from the group's state and each task's status.
 */
import { describe, expect, it } from 'vitest';
import {
  groupHealth,
  groupReadiness,
  type GroupTaskView,
  type GroupView,
} from '../../../runtime/group/group-http-server.ts';
import type { StreamEnvironment } from '../../../runtime/index.ts';

interface FakeTask {
  readonly partition: number;
  readonly state?: string;
  readonly running?: boolean;
  readonly healthy?: boolean;
  readonly sloFailing?: readonly string[];
}

function task(t: FakeTask): GroupTaskView {
  const healthy = t.healthy ?? true;
  const reasons = healthy ? [] : ['4 consecutive failures'];
  const env = {
    status: () => ({
      state: t.state ?? 'running',
      running: t.running ?? true,
      healthy,
      reasons,
      slo: t.sloFailing === undefined ? undefined : { ok: t.sloFailing.length === 0, failing: t.sloFailing },
    }),
    health: () => ({ healthy, reasons }),
  } as unknown as StreamEnvironment;
  return { topic: 'orders', partition: t.partition, epoch: 3, env };
}

function view(o: {
  joined?: boolean;
  assigned: number[];
  tasks: FakeTask[];
  failure?: string;
  ending?: boolean;
}): GroupView {
  return {
    jobName: 'j',
    groupId: 'g',
    joined: () => o.joined ?? true,
    ending: () => ({ ending: o.ending ?? o.failure !== undefined, failure: o.failure }),
    assigned: () => o.assigned.map((p) => `orders-${p}`),
    tasks: () => o.tasks.map(task),
  };
}

describe('group readiness', () => {
  it('is ready when every assigned partition runs a task within its SLOs', () => {
    expect(
      groupReadiness(view({ assigned: [0, 1], tasks: [{ partition: 0 }, { partition: 1, sloFailing: [] }] })),
    ).toEqual({
      ok: true,
      reasons: [],
    });
    // A member beyond the partition count owns nothing and is ready.
    expect(groupReadiness(view({ assigned: [], tasks: [] })).ok).toBe(true);
  });

  it('names each reason: not joined, a partition still claiming or restoring, an SLO missed, stopping', () => {
    expect(groupReadiness(view({ joined: false, assigned: [], tasks: [] })).reasons).toEqual([
      'not yet assigned partitions by consumer group g',
    ]);
    const r = groupReadiness(
      view({
        assigned: [0, 1, 2],
        tasks: [
          { partition: 1, state: 'restoring', running: false },
          { partition: 2, sloFailing: ['freshness'] },
        ],
      }),
    );
    expect(r.ok).toBe(false);
    expect(r.reasons).toEqual([
      'partition orders-0: assigned, task not started (claiming or waiting for its previous owner)',
      'partition orders-1: restoring',
      'partition orders-2: SLO not met: freshness',
    ]);
    expect(groupReadiness(view({ ending: true, assigned: [], tasks: [] })).reasons).toEqual(['stopping']);
  });

  it('is unhealthy only for a failed group job or a task that cannot make progress', () => {
    expect(
      groupHealth(view({ assigned: [0], tasks: [{ partition: 0, running: false, state: 'restoring' }] })).healthy,
    ).toBe(true);
    expect(groupHealth(view({ assigned: [0], tasks: [{ partition: 0, healthy: false }] })).reasons).toEqual([
      'partition orders-0: 4 consecutive failures',
    ]);
    expect(groupHealth(view({ failure: 'Kafka unreachable', assigned: [], tasks: [] })).reasons).toEqual([
      'group job failed: Kafka unreachable',
    ]);
  });
});

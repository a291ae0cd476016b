/**
 * The HTTP server of a group-mode process: what Kubernetes probes and Prometheus scrape. A
 * process runs one environment per partition task, each with its own metrics, health and SLOs,
 * and none serves HTTP (they would share one port): this server answers for all of them.
 *
 * - `/metrics`: every task's series (their `job` label is the task, `<job>.<topic>-<partition>`),
 *   the process's own metrics once, and the group's (`cdcflow_group_*`).
 * - `/livez`: the process answers.
 * - `/healthz`: 503 when the group job failed or a task is unhealthy (crash loop, no checkpoint).
 * - `/readyz`: 200 once the process joined the group and every partition assigned to it runs a
 *   restored task whose SLOs hold; a StatefulSet's rolling update waits for it before the next pod.
 * - `/api/group`: membership (static id, assigner, generation), tasks, epochs and their checkpoints as JSON.
 *
 * Read-only on purpose (no stop/savepoint/cancel routes): a savepoint of one partition task is
 * not a savepoint of the job. So it needs no token, on any address.
 */
import Fastify from 'fastify';
import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Registry,
  collectDefaultMetrics,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';
import type { StreamEnvironment } from '../environment.ts';
import { replyHealth, type HealthVerdict } from '../rest/rest-api.ts';

/** One running partition task, as the server sees it. */
export interface GroupTaskView {
  readonly topic: string;
  readonly partition: number;
  readonly epoch: number;
  readonly env: StreamEnvironment;
}

/** What the group job tells the server. */
export interface GroupView {
  readonly jobName: string;
  readonly groupId: string;
  /** Joined the group and received an assignment. */
  joined(): boolean;
  /** The group job failed (its reason) or is stopping. */
  ending(): { readonly ending: boolean; readonly failure: string | undefined };
  /** Partitions of the latest assignment, `<topic>-<partition>`. */
  assigned(): readonly string[];
  /** How the process takes part in the group: static member id (if any), the assigner the group chose, generation of the latest assignment. */
  membership?(): {
    readonly groupInstanceId: string | undefined;
    readonly assigner: string;
    readonly generation: number;
  };
  tasks(): readonly GroupTaskView[];
}

export interface GroupHttpServer {
  readonly port: number;
  readonly url: string;
  /** Counts an assignment (a rebalance this process took part in). */
  assignmentReceived(): void;
  taskStarted(): void;
  taskFenced(): void;
  close(): Promise<void>;
}

type Metric = MetricObjectWithValues<MetricValue<string>>;

/** The tasks' registries each carry the process's default metrics; they are served once, from the group's. */
const PROCESS_PREFIX = 'cdcflow_process_';

export interface GroupVerdict {
  readonly ok: boolean;
  readonly reasons: readonly string[];
}

/** Why the process is not ready: pure, from the view, for the probe and its test. */
export function groupReadiness(view: GroupView): GroupVerdict {
  const reasons: string[] = [];
  const { ending, failure } = view.ending();
  if (failure !== undefined) reasons.push(`group job failed: ${failure}`);
  else if (ending) reasons.push('stopping');
  if (!view.joined()) reasons.push(`not yet assigned partitions by consumer group ${view.groupId}`);
  const running = new Map(view.tasks().map((t) => [`${t.topic}-${t.partition}`, t]));
  for (const p of view.assigned()) {
    const task = running.get(p);
    if (task === undefined) {
      reasons.push(`partition ${p}: assigned, task not started (claiming or waiting for its previous owner)`);
      continue;
    }
    const status = task.env.status();
    if (!status.running)
      reasons.push(`partition ${p}: ${status.state}${status.healthy ? '' : ` (${status.reasons.join('; ')})`}`);
    if (status.slo !== undefined && !status.slo.ok)
      reasons.push(`partition ${p}: SLO not met: ${status.slo.failing.join(', ')}`);
  }
  return { ok: reasons.length === 0, reasons };
}

/** Unhealthy means "restart me would help": a failed group job or a task that cannot make progress. */
export function groupHealth(view: GroupView): HealthVerdict {
  const reasons: string[] = [];
  const { failure } = view.ending();
  if (failure !== undefined) reasons.push(`group job failed: ${failure}`);
  for (const t of view.tasks()) {
    const health = t.env.health();
    if (!health.healthy) reasons.push(`partition ${t.topic}-${t.partition}: ${health.reasons.join('; ')}`);
  }
  return { healthy: reasons.length === 0, reasons };
}

export async function startGroupHttpServer(
  view: GroupView,
  o: { readonly host: string; readonly port: number },
): Promise<GroupHttpServer> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PROCESS_PREFIX });
  const labels = { job: view.jobName };
  new Gauge({
    name: 'cdcflow_group_partitions_owned',
    help: 'Source partitions this process runs a task for',
    labelNames: ['job'],
    registers: [registry],
    collect() {
      this.set(labels, view.tasks().length);
    },
  });
  new Gauge({
    name: 'cdcflow_group_owner_epoch',
    help: 'Owner epoch of each partition task this process runs (a newer one elsewhere fences it)',
    labelNames: ['job', 'topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of view.tasks()) this.set({ ...labels, topic: t.topic, partition: String(t.partition) }, t.epoch);
    },
  });
  new Gauge({
    name: 'cdcflow_group_ready',
    help: '1 while /readyz answers 200 (joined, every assigned partition restored and within its SLOs)',
    labelNames: ['job'],
    registers: [registry],
    collect() {
      this.set(labels, groupReadiness(view).ok ? 1 : 0);
    },
  });
  const counter = (name: string, help: string) => {
    const c = new Counter({ name, help, labelNames: ['job'], registers: [registry] });
    c.inc(labels, 0);
    return () => c.inc(labels);
  };
  const assignmentReceived = counter('cdcflow_group_assignments_total', 'Assignments received (rebalances joined)');
  const taskStarted = counter('cdcflow_group_tasks_started_total', 'Partition tasks started (claims made)');
  const taskFenced = counter(
    'cdcflow_group_tasks_fenced_total',
    'Partition tasks dropped because a newer owner fenced them (nothing committed)',
  );

  const exposition = async (): Promise<string> => {
    const parts: Metric[][] = [await registry.getMetricsAsJSON()];
    for (const t of view.tasks()) {
      const own = (await (await t.env.metrics.aggregated()).getMetricsAsJSON()) as Metric[];
      parts.push(own.filter((m) => !m.name.startsWith(PROCESS_PREFIX)));
    }
    // Task series differ by their `job` label, so aggregating only concatenates them.
    return AggregatorRegistry.aggregate(parts).metrics();
  };

  const app = Fastify({ logger: false });
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await exposition()));
  app.get('/livez', (_request, reply) => reply.type('text/plain').send('ok\n'));
  app.get('/healthz', (_request, reply) => replyHealth(reply, groupHealth(view)));
  app.get('/readyz', (_request, reply) => {
    const verdict = groupReadiness(view);
    return reply.code(verdict.ok ? 200 : 503).send({ ready: verdict.ok, reasons: verdict.reasons });
  });
  app.get('/api/group', () => ({
    job: view.jobName,
    group: view.groupId,
    pid: process.pid,
    ...view.ending(),
    ...(view.membership === undefined ? {} : { membership: view.membership() }),
    assigned: view.assigned(),
    readiness: groupReadiness(view),
    tasks: view.tasks().map((t) => {
      const status = t.env.status();
      return {
        topic: t.topic,
        partition: t.partition,
        epoch: t.epoch,
        job: status.job,
        state: status.state,
        running: status.running,
        healthy: status.healthy,
        reasons: status.reasons,
        restoredFrom: status.restoredFrom,
        lastCompletedCheckpoint: status.lastCompletedCheckpoint,
        slo: status.slo,
      };
    }),
  }));
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send({ errors: [`no such resource: ${request.url}. Try GET /metrics, /livez, /healthz, /readyz, /api/group`] }),
  );
  await app.listen({ host: o.host, port: o.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : o.port;
  return {
    port,
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    assignmentReceived,
    taskStarted,
    taskFenced,
    close: () => app.close(),
  };
}

/**
 * Group mode: many processes, one job, scaled by Kafka's consumer-group protocol in the Kafka
 * Streams model. Each process joins the job's consumer group (group-membership.ts); every source
 * partition it is assigned becomes a *partition task*: a pipeline of its own (its own
 * StreamEnvironment, keyed state, checkpoint lineage and sink transactions), restored from that
 * partition's latest completed checkpoint when assigned (claims: partition-claims.ts on a shared
 * filesystem, s3-claim-store.ts under an `s3://` root) and stopped with a
 * final checkpoint when revoked. Each claim carries an owner epoch that two-phase sinks check in
 * the same transaction as their writes (operators/sinks/owner-epoch.ts), so a process that lost a
 * partition (paused past its session timeout) can never commit for it. See docs/group-mode.md.
 */
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { localCheckpointPath } from '../../checkpoints/checkpoint-storage-for.ts';
import { CheckpointNotFoundError } from '../../checkpoints/errors.ts';
import { isS3Url } from '../../checkpoints/s3-location.ts';
import { causedBy } from '../../state/errors.ts';
import { resolveKafkaConnection, type KafkaSaslConfig, type KafkaSsl } from '../../operators/kafka-connection.ts';
import { firstCheckpointIdOfEpoch, isOwnershipLost, registerOwnerEpoch } from '../../operators/sinks/owner-epoch.ts';
import type { PartitionTaskRef } from '../../operators/sources/kafka/partition-task-assignment.ts';
import { defaultCheckpointRoot, defaultStateDir } from '../config/index.ts';
import { JOB_DEFAULTS } from '../config/defaults.ts';
import { StreamEnvironment } from '../environment.ts';
import { httpPortOf, type EnvironmentOptions } from '../job-options.ts';
import { startGroupHttpServer, type GroupHttpServer, type GroupView } from './group-http-server.ts';
import { GroupMembership, type OwnedPartition } from './group-membership.ts';
import { openClaimStore, type OpenedClaimStore } from './claim-store-for.ts';
import type { PartitionClaim } from './partition-claims.ts';

/** What the job's builder gets for each partition task. */
export interface PartitionTask {
  readonly topic: string;
  readonly partition: number;
  /** The owner epoch of this claim. */
  readonly epoch: number;
  /** The task's job name, `<job>.<topic>-<partition>`: names its sink transactions and transactional ids. */
  readonly jobName: string;
  /** The job's consumer group. */
  readonly groupId: string;
  /** Give it to the source: `debeziumSource({ topics: [task.topic], groupId: task.groupId, partitionTask: task.source })`. */
  readonly source: PartitionTaskRef;
}

export interface GroupJobOptions {
  readonly jobName: string;
  /** The consumer group the processes of this job share. @default jobName */
  readonly groupId?: string;
  readonly topics: readonly string[];
  /** Options of every partition task's environment (checkpoint root, intervals, state, log...). */
  readonly environment?: Omit<EnvironmentOptions, 'jobName' | 'restore' | 'parallelism'>;
  /** Builds the pipeline of one partition task: read `task.source`, then as any job. */
  readonly build: (env: StreamEnvironment, task: PartitionTask) => void;
  /** The group's session timeout: how long a dead or paused process keeps its partitions. @default 30000 */
  readonly sessionTimeoutMs?: number;
  readonly brokers?: readonly string[];
  readonly ssl?: KafkaSsl;
  readonly sasl?: KafkaSaslConfig;
  /**
   * Static group membership (KIP-345): an id unique to this process and stable across its
   * restarts (a StatefulSet's pod name). A static process that stops does not leave the group:
   * the broker keeps its partitions for the session timeout, so a restart within it gets them
   * back with no rebalance (its tasks still claim new epochs). A second process with the same id
   * fences the first, which then fails with `GroupInstanceFencedError`. `false`: dynamic even if
   * the environment sets one. @default CDCFLOW_GROUP_INSTANCE_ID, else dynamic membership
   */
  readonly groupInstanceId?: string | false;
  /**
   * How the group spreads partitions: 'sticky' moves the fewest on a join or leave; 'round-robin'
   * is kafkajs's (every process of a group must agree). @default CDCFLOW_GROUP_ASSIGNER, else 'sticky'
   */
  readonly partitionAssigner?: 'sticky' | 'round-robin';
  /**
   * How often the process deletes the superseded owner epochs of the partitions it runs (their
   * claims, checkpoints and state files; runtime/group/epoch-gc.ts). 0 turns it off.
   * @default CDCFLOW_EPOCH_GC_MS, else 60000
   */
  readonly epochGcIntervalMs?: number;
  /** SIGTERM/SIGINT stop every task with a final checkpoint, then leave the group (a static member does not leave). @default true */
  readonly handleSignals?: boolean;
  readonly log?: (line: string) => void;
}

export interface GroupJobResult {
  /** Partition tasks this process ran. */
  readonly tasksStarted: number;
  /** Tasks dropped because a newer owner fenced them. */
  readonly tasksFenced: number;
}

interface RunningTask {
  readonly claim: PartitionClaim;
  readonly env: StreamEnvironment;
  readonly done: Promise<void>;
  readonly stateDir: string;
}

const key = (p: OwnedPartition) => `${p.topic}-${p.partition}`;

/** The option, else CDCFLOW_GROUP_INSTANCE_ID; undefined: dynamic membership. */
export function groupInstanceIdOf(o: Pick<GroupJobOptions, 'groupInstanceId'>): string | undefined {
  if (o.groupInstanceId === false) return undefined;
  const id = o.groupInstanceId ?? process.env['CDCFLOW_GROUP_INSTANCE_ID'];
  return id === undefined || id.trim() === '' ? undefined : id.trim();
}

export class GroupJob {
  private readonly tasks = new Map<string, RunningTask>();
  private readonly membership: GroupMembership;
  private readonly log: (line: string) => void;
  private readonly groupId: string;
  private readonly checkpointRoot: string;
  private readonly stateRoot: string;
  /** Opened (and, under `s3://`, probed) by `start` before the process joins the group. */
  private claims!: OpenedClaimStore;
  private queue: Promise<void> = Promise.resolve();
  /** Claims made again because the chosen checkpoint vanished before the restore read it, by partition. */
  private readonly restoreRetries = new Map<string, number>();
  /** Revoked tasks still stopping (final checkpoint), by partition. */
  private readonly stopping = new Map<string, Promise<void>>();
  /** The latest assignment: a task that ends by itself (fenced) while its partition is still ours is claimed again. */
  private assigned = new Map<string, OwnedPartition>();
  /** When `assigned` arrived. */
  private assignedAtMs = 0;
  private ending = false;
  private failure: string | undefined;
  private joined = false;
  private http: GroupHttpServer | undefined;
  private started = 0;
  private fenced = 0;
  /** Superseded owner epochs this process deleted (epoch-gc.ts). */
  epochsCollected = 0;
  private settle!: { resolve: (r: GroupJobResult) => void; reject: (e: unknown) => void };
  readonly done: Promise<GroupJobResult>;

  private constructor(private readonly o: GroupJobOptions) {
    this.log = o.log ?? ((line) => console.log(`[${o.jobName} ${process.pid}] ${line}`));
    this.groupId = o.groupId ?? o.jobName;
    const root = o.environment?.checkpoints?.dir ?? defaultCheckpointRoot();
    this.checkpointRoot = isS3Url(root) ? root.replace(/\/+$/, '') : localCheckpointPath(root);
    this.stateRoot = resolve(o.environment?.state?.dir ?? defaultStateDir());
    this.done = new Promise((res, rej) => (this.settle = { resolve: res, reject: rej }));
    const connection = resolveKafkaConnection({
      ...(o.brokers === undefined ? {} : { brokers: o.brokers }),
      ...(o.ssl === undefined ? {} : { ssl: o.ssl }),
      ...(o.sasl === undefined ? {} : { sasl: o.sasl }),
    });
    this.membership = new GroupMembership({
      connection,
      groupId: this.groupId,
      topics: o.topics,
      clientId: `${o.jobName}-group`,
      sessionTimeoutMs: o.sessionTimeoutMs ?? 30_000,
      groupInstanceId: groupInstanceIdOf(o),
      assigner:
        o.partitionAssigner ?? (process.env['CDCFLOW_GROUP_ASSIGNER'] === 'round-robin' ? 'round-robin' : 'sticky'),
      onAssignment: (owned) => this.enqueue(() => this.apply(owned)),
      onFatal: (error) => this.fail(error),
    });
  }

  /** Joins the group; tasks start as partitions are assigned. `done` settles when the job ends. */
  static async start(options: GroupJobOptions): Promise<GroupJob> {
    const job = new GroupJob(options);
    // A store that cannot fence (S3Proxy) fails here, before the process joins the group.
    job.claims = await openClaimStore(job.checkpointRoot, options.jobName);
    void job.done.finally(() => job.claims.close()).catch(() => undefined);
    if (options.handleSignals ?? true) {
      const onSignal = (signal: NodeJS.Signals) => {
        job.log(`${signal}: stopping every partition task with a final checkpoint, then leaving the group`);
        void job.stop();
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      void job.done
        .finally(() => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
        })
        .catch(() => undefined);
    }
    await job.startHttp();
    job.scheduleEpochGc();
    await job.membership.start();
    const instance = groupInstanceIdOf(options);
    job.log(
      `joined consumer group ${job.groupId} for ${options.topics.join(', ')}${instance === undefined ? '' : ` as static member ${instance}`}`,
    );
    return job;
  }

  /** Where /metrics, /readyz and /api/group answer (undefined without a port). */
  get httpUrl(): string | undefined {
    return this.http?.url;
  }

  /**
   * One server for the process (the tasks serve none): port from `environment.rest.port`,
   * `environment.metricsPort` or CDCFLOW_METRICS_PORT, like a single-process job's.
   */
  private async startHttp(): Promise<void> {
    const env = this.o.environment;
    const port = httpPortOf(env ?? {});
    if (port === undefined) return;
    const host = env?.rest?.host ?? JOB_DEFAULTS.restHost;
    this.http = await startGroupHttpServer(this.view(), { host, port });
    this.log(`/metrics, /healthz, /readyz and /api/group on ${this.http.url}`);
    void this.done.catch(() => undefined).finally(() => void this.http?.close().catch(() => undefined));
  }

  private view(): GroupView {
    return {
      jobName: this.o.jobName,
      groupId: this.groupId,
      joined: () => this.joined,
      ending: () => ({ ending: this.ending, failure: this.failure }),
      assigned: () => [...this.assigned.keys()],
      membership: () => this.membership.describe(),
      tasks: () =>
        [...this.tasks.values()].map(({ claim, env }) => ({
          topic: claim.topic,
          partition: claim.partition,
          epoch: claim.epoch,
          env,
        })),
    };
  }

  private scheduleEpochGc(): void {
    const fromEnv = Number(process.env['CDCFLOW_EPOCH_GC_MS']);
    const every = this.o.epochGcIntervalMs ?? (Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : 60_000);
    if (every === 0) return;
    const timer = setInterval(() => void this.collectSupersededEpochs(), every);
    timer.unref();
    void this.done.finally(() => clearInterval(timer)).catch(() => undefined);
  }

  /**
   * Deletes what older owners of this process's partitions left behind once nothing can restore
   * from it (epoch-gc.ts). Each store re-reads the claims, so two processes doing it at once, or a
   * run cut short, delete nothing that is needed; a failure is logged and retried next time.
   */
  async collectSupersededEpochs(): Promise<number> {
    let removed = 0;
    for (const { claim } of [...this.tasks.values()]) {
      if (this.ending) break;
      const k = key(claim);
      try {
        const epochs = await this.claims.store.collectSuperseded(
          `${this.o.jobName}.${k}`,
          claim.topic,
          claim.partition,
        );
        if (epochs.length > 0) this.log(`partition ${k}: deleted superseded epochs ${epochs.join(', ')}`);
        removed += epochs.length;
      } catch (error) {
        this.log(`partition ${k}: superseded epochs not deleted this time (${(error as Error).message})`);
      }
    }
    this.epochsCollected += removed;
    return removed;
  }

  /** The partitions this process runs tasks for, with their epochs. */
  owned(): { topic: string; partition: number; epoch: number }[] {
    return [...this.tasks.values()].map(({ claim }) => ({
      topic: claim.topic,
      partition: claim.partition,
      epoch: claim.epoch,
    }));
  }

  /** Graceful: every task stops with a final checkpoint (its sinks commit), then the process leaves the group. */
  async stop(): Promise<GroupJobResult> {
    if (!this.ending) {
      this.ending = true;
      this.enqueue(async () => {
        const began = Date.now();
        await Promise.all([...this.tasks.keys()].map((k) => this.revoke(k)));
        await Promise.all(this.stopping.values());
        const stopped = Date.now();
        await this.membership.stop();
        this.log(
          `tasks stopped in ${stopped - began} ms, ${this.membership.isStatic ? 'disconnected (a static member: its partitions wait for it until the session times out)' : 'left the group'} in ${Date.now() - stopped} ms`,
        );
        this.settle.resolve({ tasksStarted: this.started, tasksFenced: this.fenced });
      });
    }
    return this.done;
  }

  private enqueue(step: () => Promise<void>): void {
    this.queue = this.queue.then(step).catch((error: unknown) => this.fail(error));
  }

  private fail(error: unknown): void {
    if (this.ending) return;
    this.ending = true;
    this.failure = (error as Error).message ?? String(error);
    this.log(`group job failed: ${this.failure}`);
    for (const task of this.tasks.values()) void task.env.cancel();
    void this.membership.stop().finally(() => this.settle.reject(error));
  }

  /** A new assignment: stop what was revoked (final checkpoints), start what is new (restore). */
  private async apply(owned: readonly OwnedPartition[]): Promise<void> {
    if (this.ending) return;
    const wanted = new Map(owned.map((p) => [key(p), p]));
    this.assigned = wanted;
    this.assignedAtMs = Date.now();
    this.joined = true;
    this.http?.assignmentReceived();
    const revoked = [...this.tasks.keys()].filter((k) => !wanted.has(k));
    const added = [...wanted].filter(([k]) => !this.tasks.has(k)).map(([, p]) => p);
    this.log(
      `assignment: ${owned.map(key).join(', ') || 'nothing'}${revoked.length > 0 ? `; revoked ${revoked.join(', ')}` : ''}`,
    );
    // Revoked tasks stop (final checkpoint) in the background: the group may already have handed
    // their partitions on, and what this assignment adds (a dead member's partitions) must not
    // wait behind their stop deadlines. A partition handed back while its old task still stops is
    // started once that task has ended (startTask waits for it).
    for (const k of revoked) void this.revoke(k);
    // Partitions whose previous task here is still stopping go last: the others need not wait for it.
    added.sort((a, b) => Number(this.stopping.has(key(a))) - Number(this.stopping.has(key(b))));
    for (const p of added) await this.startTask(p);
  }

  private async revoke(k: string): Promise<void> {
    const task = this.tasks.get(k);
    if (task === undefined) return;
    this.tasks.delete(k);
    this.stopping.set(k, task.done);
    void task.done.finally(() => {
      if (this.stopping.get(k) === task.done) this.stopping.delete(k);
    });
    await task.env
      .stop()
      .catch((error: unknown) =>
        this.log(`partition ${k}: the stop did not end with a final checkpoint (${(error as Error).message})`),
      );
    await task.done;
  }

  /**
   * A fenced task whose partition our latest assignment still names. If that assignment came
   * after the claim that fenced us, the group gave the partition (back) to us while the old task
   * still ran: claim it again. If it came before, it is stale (this process was paused past its
   * session or cut off) and claiming would fence the rightful owner: the next assignment decides.
   */
  private async reclaimIfReassigned(p: OwnedPartition): Promise<void> {
    const newest = await this.claims.store.newest(p.topic, p.partition).catch(() => undefined);
    if (newest !== undefined && newest.claimedAtMs > this.assignedAtMs) {
      this.log(`partition ${key(p)}: our assignment predates epoch ${newest.epoch}'s claim; waiting for the group`);
      return;
    }
    this.log(`partition ${key(p)}: still assigned here; claiming it again`);
    this.enqueue(() => this.startTask(p));
  }

  private async startTask(p: OwnedPartition): Promise<void> {
    // This process's previous task of the partition first ends (its final checkpoint commits or is void).
    await this.stopping.get(key(p));
    if (this.ending || !this.assigned.has(key(p)) || this.tasks.has(key(p))) return;
    const jobName = `${this.o.jobName}.${key(p)}`;
    const claim = await this.claims.store.claim(jobName, p.topic, p.partition);
    const store = this.claims.store;
    const unregister = registerOwnerEpoch(jobName, {
      epoch: claim.epoch,
      owner: claim.owner,
      successor: () => store.successor(p.topic, p.partition, claim.epoch),
    });
    // No HTTP server per task (they would share one port): the process's serves them all (group-http-server.ts).
    const { metricsPort: _port, rest: _rest, ...base } = this.o.environment ?? {};
    // A working directory per claim: a paused older owner on this machine keeps its RocksDB lock.
    const stateDir = join(this.stateRoot, this.o.jobName, 'partitions', `${key(p)}-epoch-${claim.epoch}`);
    const env = StreamEnvironment.create({
      ...base,
      jobName,
      parallelism: 1,
      checkpoints: {
        ...base.checkpoints,
        dir: claim.directory,
        firstId: firstCheckpointIdOfEpoch(claim.epoch),
        // An object-store lineage stages its state files (and keeps its lease) per claim too.
        ...(isS3Url(claim.directory) ? { stagingDir: `${stateDir}-staging` } : {}),
      },
      state: { ...base.state, dir: stateDir },
      restore: claim.restoreFrom === undefined ? 'none' : { path: claim.restoreFrom },
      // Leftovers of an older owner that never completed a checkpoint belong to no checkpoint.
      discardSinkTransactions: true,
      lifecycle: { ...base.lifecycle, handleSignals: false },
    });
    this.o.build(env, {
      topic: p.topic,
      partition: p.partition,
      epoch: claim.epoch,
      jobName,
      groupId: this.groupId,
      source: { partition: p.partition, epoch: claim.epoch },
    });
    this.started += 1;
    this.http?.taskStarted();
    this.log(
      `partition ${key(p)}: claimed epoch ${claim.epoch}, ${claim.restoreFrom === undefined ? 'fresh start' : `restoring ${claim.restoreFrom}`}`,
    );
    const k = key(p);
    const restoreRetries = (partition: string) => this.restoreRetries.get(partition) ?? 0;
    let fenced = false;
    let restoreRaced = false;
    const done = env
      .execute()
      .then((result) =>
        this.log(
          `partition ${k}: task ${result.state}${result.finalCheckpoint === undefined ? '' : ` at checkpoint ${result.finalCheckpoint.checkpointId}`}`,
        ),
      )
      .catch((error: unknown) => {
        if (isOwnershipLost(error)) {
          fenced = true;
          this.fenced += 1;
          this.http?.taskFenced();
          this.log(
            `partition ${k}: fenced by a newer owner (epoch ${claim.epoch} is stale); task dropped, nothing committed`,
          );
          return;
        }
        // The previous owner, still stopping, completed newer checkpoints and its retention removed
        // the one our claim chose before we read it: claim again (the next claim sees the newer one).
        if (claim.restoreFrom !== undefined && causedBy(error, CheckpointNotFoundError) && restoreRetries(k) < 5) {
          restoreRaced = true;
          this.log(`partition ${k}: ${claim.restoreFrom} was removed before the restore read it; claiming again`);
          return;
        }
        this.fail(error);
      })
      .finally(async () => {
        unregister();
        const self = this.tasks.get(k);
        if (self?.env === env) this.tasks.delete(k);
        await rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
        await rm(`${stateDir}-staging`, { recursive: true, force: true }).catch(() => undefined);
        if (fenced && !this.ending && this.assigned.has(k)) await this.reclaimIfReassigned(p);
        if (restoreRaced && !this.ending && this.assigned.has(k)) {
          this.restoreRetries.set(k, restoreRetries(k) + 1);
          this.enqueue(() => this.startTask(p));
        }
      });
    this.tasks.set(k, { claim, env, done, stateDir });
  }
}

/** Joins the group and runs partition tasks until SIGTERM/SIGINT (or `stop()`); resolves when all stopped. */
export async function runGroupJob(options: GroupJobOptions): Promise<GroupJobResult> {
  const job = await GroupJob.start(options);
  return job.done;
}

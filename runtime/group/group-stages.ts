/**
 * A group job of several stages joined by repartition topics (repartition-topic.ts): each stage is
 * a group job of its own (its own consumer group `<group>-<stage>`, partition tasks named
 * `<job>.<stage>.<topic>-<p>`, claims and checkpoints under `<root>/<job>.<stage>/`), all running
 * in every process. The stages share nothing but Kafka: a stage's task commits what it wrote to
 * the internal topic when its own checkpoint completes, and the next stage sees it read_committed.
 */
import { GroupJob, type GroupJobOptions, type GroupJobResult } from './group-job.ts';

export interface GroupStage {
  /** Names the stage's consumer group and task names: letters, digits, '.', '_' and '-'. */
  readonly name: string;
  readonly topics: readonly string[];
  readonly build: GroupJobOptions['build'];
}

export interface GroupStagesOptions extends Omit<GroupJobOptions, 'topics' | 'build'> {
  readonly stages: readonly GroupStage[];
}

export interface GroupStagesResult {
  readonly stages: Readonly<Record<string, GroupJobResult>>;
}

/** The options of one stage's group job. */
export function stageOptions(options: GroupStagesOptions, stage: GroupStage): GroupJobOptions {
  const { stages: _stages, ...common } = options;
  return {
    ...common,
    jobName: `${options.jobName}.${stage.name}`,
    groupId: `${options.groupId ?? options.jobName}-${stage.name}`,
    topics: stage.topics,
    build: stage.build,
  };
}

/**
 * Starts every stage in this process; resolves when all have stopped (SIGTERM/SIGINT stop each
 * with final checkpoints). If one stage fails, the others stop gracefully and the failure is thrown.
 */
export async function runGroupStages(options: GroupStagesOptions): Promise<GroupStagesResult> {
  const names = new Set(options.stages.map((s) => s.name));
  if (names.size !== options.stages.length || options.stages.length === 0)
    throw new RangeError('runGroupStages needs at least one stage, each with its own name');
  const jobs: GroupJob[] = [];
  try {
    for (const stage of options.stages) jobs.push(await GroupJob.start(stageOptions(options, stage)));
  } catch (error) {
    await Promise.allSettled(jobs.map((job) => job.stop()));
    throw error;
  }
  const settled = await Promise.allSettled(
    jobs.map((job) =>
      job.done.catch(async (error: unknown) => {
        await Promise.allSettled(jobs.filter((other) => other !== job).map((other) => other.stop()));
        throw error;
      }),
    ),
  );
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  const stages: Record<string, GroupJobResult> = {};
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') stages[(options.stages[i] as GroupStage).name] = s.value;
  });
  return { stages };
}

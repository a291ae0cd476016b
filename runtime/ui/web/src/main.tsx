/**
 * The cdcflow web UI: one page per job, polling `GET /jobs/:name/overview` every second. Status
 * and anything failing first (state, readiness, SLOs, lost connection), then the job graph,
 * checkpoints, sinks, sources, late events, dead letters and exceptions.
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import type { JobOverview } from '../../overview-types.ts';
import { Chart, colorAt } from './chart.tsx';
import {
  clockTime,
  delta,
  formatBytes,
  formatCount,
  formatRate,
  formatSeconds,
  labelValues,
  quantile,
  rate,
  samples,
  seriesOf,
  total,
  type Labels,
} from './derive.ts';
import { JobGraph, type OperatorFigures } from './graph.tsx';
import { SeriesHistory } from './history.ts';

const POLL_MS = 1000;

interface Live {
  readonly now: JobOverview;
  readonly before: JobOverview | undefined;
  readonly history: SeriesHistory;
  readonly updatedAtMs: number;
}

function App() {
  const [live, setLive] = useState<Live | undefined>(undefined);
  const [error, setError] = useState<{ message: string; sinceMs: number } | undefined>(undefined);
  const [, tick] = useState(0);
  const history = useRef(new SeriesHistory());
  const previous = useRef<JobOverview | undefined>(undefined);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    let job: string | undefined;
    const poll = async (): Promise<void> => {
      try {
        if (job === undefined) {
          const jobs = (await getJson('/jobs')) as { jobs: { name: string }[] };
          job = jobs.jobs[0]?.name;
          if (job === undefined) throw new Error('this server runs no job');
          document.title = `${job} · cdcflow`;
        }
        const now = (await getJson(`/jobs/${encodeURIComponent(job)}/overview`)) as JobOverview;
        const before = previous.current;
        history.current.push(now, pointsOf(now, before));
        previous.current = now;
        setLive({ now, before, history: history.current, updatedAtMs: Date.now() });
        setError(undefined);
      } catch (e) {
        setError((old) => ({
          message: e instanceof Error ? e.message : String(e),
          sinceMs: old?.sinceMs ?? Date.now(),
        }));
      }
      if (!stopped) timer = window.setTimeout(() => void poll(), POLL_MS);
    };
    void poll();
    const clock = window.setInterval(() => tick((n) => n + 1), 1000);
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      window.clearInterval(clock);
    };
  }, []);

  if (live === undefined) {
    return (
      <main class="loading">
        {error === undefined ? (
          'Connecting to the job…'
        ) : (
          <div class="banner bad">Cannot reach the job: {error.message}</div>
        )}
      </main>
    );
  }
  return (
    <main>
      <StatusBar live={live} error={error} />
      <Problems live={live} />
      <Slos live={live} />
      <section class="panel wide">
        <h2>Job graph</h2>
        <div class="graph-scroll">
          <JobGraph plan={live.now.plan} figures={figuresOf(live.now, live.before)} />
        </div>
        <Subtasks live={live} />
      </section>
      <div class="grid">
        <Checkpoints live={live} />
        <Sinks live={live} />
        <Sources live={live} />
        <Throughput live={live} />
        <LateEvents live={live} />
        <DeadLetters live={live} />
        <Exceptions live={live} />
      </div>
    </main>
  );
}

async function getJson(path: string): Promise<unknown> {
  const response = await fetch(path, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

const GOOD_STATES = new Set(['running', 'finished', 'stopped']);
const BAD_STATES = new Set(['failed', 'cancelled']);

function StatusBar({
  live,
  error,
}: {
  readonly live: Live;
  readonly error: { message: string; sinceMs: number } | undefined;
}) {
  const { now } = live;
  const stateClass = BAD_STATES.has(now.state) ? 'bad' : GOOD_STATES.has(now.state) ? 'good' : 'warn';
  const last = now.lastCompletedCheckpoint;
  const checkpointAge = last === undefined ? undefined : (now.nowMs - last.completedAtMs) / 1000;
  const dead = total(now.metrics, 'cdcflow_dead_letters_total');
  const lag = total(now.metrics, 'cdcflow_source_lag_records');
  const failingSlos = samples(now.metrics, 'cdcflow_slo_ok').filter((s) => s.value === 0).length;
  const ready = now.health.healthy && failingSlos === 0;
  return (
    <header class="status" data-testid="status-bar">
      <div class="job-name">{now.job}</div>
      <span class={`pill ${stateClass}`} data-testid="job-state">
        {now.state.toUpperCase()}
      </span>
      <span class={`pill ${ready ? 'good' : 'bad'}`} data-testid="job-ready">
        {ready ? 'HEALTHY' : 'UNHEALTHY'}
      </span>
      <dl class="facts">
        <Fact
          label="last checkpoint"
          value={last === undefined ? 'none yet' : `#${last.checkpointId}, ${formatSeconds(checkpointAge)} ago`}
          bad={checkpointAge !== undefined && checkpointAge > 60}
        />
        <Fact
          label="source lag"
          value={lag === undefined ? 'no data' : `${formatCount(lag)} records`}
          bad={(lag ?? 0) > 100_000}
        />
        <Fact label="restarts" value={String(now.restarts)} bad={now.restarts > 0} />
        <Fact label="dead letters" value={formatCount(dead ?? 0)} bad={(dead ?? 0) > 0} />
        <Fact label="parallelism" value={String(now.parallelism)} />
        <Fact
          label="up"
          value={now.startedAtMs === undefined ? '–' : formatSeconds((now.nowMs - now.startedAtMs) / 1000)}
        />
        <Fact label="updated" value={clockTime(live.updatedAtMs)} bad={error !== undefined} />
      </dl>
      {error === undefined ? null : (
        <div class="banner bad" data-testid="connection-lost">
          No answer from the job for {formatSeconds((Date.now() - error.sinceMs) / 1000)} ({error.message}): the figures
          below are stale.
        </div>
      )}
    </header>
  );
}

function Fact({ label, value, bad }: { readonly label: string; readonly value: string; readonly bad?: boolean }) {
  return (
    <div class={bad === true ? 'fact bad' : 'fact'}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

function Problems({ live }: { readonly live: Live }) {
  const reasons = live.now.health.healthy ? [] : live.now.health.reasons;
  if (reasons.length === 0) return null;
  return (
    <div class="banner bad" data-testid="health-reasons">
      {reasons.map((r) => (
        <div key={r}>⚠ {r}</div>
      ))}
    </div>
  );
}

function Slos({ live }: { readonly live: Live }) {
  const { metrics } = live.now;
  const names = labelValues(metrics, 'cdcflow_slo_ok', 'slo');
  return (
    <section class={names.length === 0 ? 'panel wide slim' : 'panel wide'} data-testid="slos">
      <h2>SLOs</h2>
      {names.length === 0 ? (
        <p class="no-data">none configured for this job (no cdcflow_slo_ok series)</p>
      ) : (
        <div class="slo-cards">
          {names.map((slo) => {
            const ok = total(metrics, 'cdcflow_slo_ok', { slo });
            const value = total(metrics, 'cdcflow_slo_value', { slo });
            const state = ok === undefined ? 'unknown' : ok === 1 ? 'ok' : 'failing';
            return (
              <div key={slo} class={`slo ${state}`} data-testid="slo">
                <div class="slo-name">{slo}</div>
                <div class="slo-state">{state === 'ok' ? 'OK' : state === 'failing' ? 'FAILING' : 'no data'}</div>
                <div class="slo-value">{value === undefined ? 'no data' : formatSloValue(slo, value)}</div>
              </div>
            );
          })}
        </div>
      )}
    </section>
  );
}

function formatSloValue(slo: string, value: number): string {
  return /fresh|age|silence|seconds|latency/i.test(slo) ? formatSeconds(value) : formatCount(value);
}

/** Per-operator rates and ratios between the last two snapshots. */
function figuresOf(now: JobOverview, before: JobOverview | undefined): Map<string, OperatorFigures> {
  const figures = new Map<string, OperatorFigures>();
  const seconds = before === undefined ? 0 : (now.nowMs - before.nowMs) / 1000;
  for (const op of now.plan) {
    const match = { operator: op.uid };
    const ratio = (name: string): number | undefined => {
      const d = before === undefined ? undefined : delta(now, before, name, match);
      return d === undefined || seconds <= 0 ? undefined : d / seconds / Math.max(1, op.parallelism);
    };
    const watermarks = watermarksOf(now, op.uid);
    const slowest =
      watermarks.length === 0 ? undefined : Math.min(...watermarks.map((w) => w ?? Number.POSITIVE_INFINITY));
    figures.set(op.uid, {
      inRate: rate(now, before, 'cdcflow_records_in_total', match),
      outRate: rate(now, before, 'cdcflow_records_out_total', match),
      busy: ratio('cdcflow_operator_busy_seconds_total'),
      backpressure: ratio('cdcflow_operator_backpressured_seconds_total'),
      watermarkLag:
        slowest === undefined || !Number.isFinite(slowest) ? undefined : Math.max(0, (now.nowMs - slowest) / 1000),
    });
  }
  return figures;
}

/** Each subtask's watermark of an operator (undefined where that subtask has none yet). */
function watermarksOf(now: JobOverview, uid: string): (number | undefined)[] {
  const parts = now.subtasks.length > 0 ? now.subtasks : [now.metrics];
  return parts.map((m) => total(m, 'cdcflow_watermark_ms', { operator: uid }));
}

function Subtasks({ live }: { readonly live: Live }) {
  const { now, before } = live;
  const count = Math.max(1, now.subtasks.length);
  const parts = now.subtasks.length > 0 ? now.subtasks : [now.metrics];
  const beforeParts =
    before === undefined ? undefined : before.subtasks.length > 0 ? before.subtasks : [before.metrics];
  const seconds = before === undefined ? 0 : (now.nowMs - before.nowMs) / 1000;
  return (
    <table class="table subtasks" data-testid="subtasks">
      <thead>
        <tr>
          <th>operator</th>
          {Array.from({ length: count }, (_, i) => (
            <th key={i}>subtask {i}: watermark lag · in</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {now.plan.map((op) => (
          <tr key={op.uid}>
            <td>{op.name}</td>
            {parts.map((m, i) => {
              const wm = total(m, 'cdcflow_watermark_ms', { operator: op.uid });
              const recordsIn = total(
                m,
                op.kind === 'source' ? 'cdcflow_records_out_total' : 'cdcflow_records_in_total',
                { operator: op.uid },
              );
              const prior =
                beforeParts?.[i] === undefined
                  ? undefined
                  : total(
                      beforeParts[i],
                      op.kind === 'source' ? 'cdcflow_records_out_total' : 'cdcflow_records_in_total',
                      { operator: op.uid },
                    );
              const r =
                recordsIn === undefined || prior === undefined || seconds <= 0
                  ? undefined
                  : Math.max(0, (recordsIn - prior) / seconds);
              return (
                <td key={i}>
                  {wm === undefined ? 'no watermark' : formatSeconds((now.nowMs - wm) / 1000)} · {formatRate(r)}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Checkpoints({ live }: { readonly live: Live }) {
  const { checkpoints } = live.now;
  const completed = total(live.now.metrics, 'cdcflow_checkpoints_total', { status: 'completed' }) ?? 0;
  const aborted = total(live.now.metrics, 'cdcflow_checkpoints_total', { status: 'aborted' }) ?? 0;
  const recent = checkpoints.slice(-40);
  const data = [
    recent.map((c) => c.id),
    recent.map((c) => (c.status === 'completed' ? c.durationMs / 1000 : null)),
    recent.map((c) => (c.syncMs === undefined ? null : c.syncMs / 1000)),
    recent.map((c) => (c.asyncMs === undefined ? null : c.asyncMs / 1000)),
  ];
  return (
    <section class="panel" data-testid="checkpoints">
      <h2>
        Checkpoints{' '}
        <span class="sub" data-testid="checkpoint-counts">
          {completed} completed · <span class={aborted > 0 ? 'bad-text' : ''}>{aborted} aborted</span>
        </span>
      </h2>
      <Chart
        testId="checkpoint-chart"
        title="duration per checkpoint (bars), mean sync and async part per task snapshot"
        time={false}
        data={data}
        format={(v) => formatSeconds(v)}
        series={[
          { label: 'duration', color: '#2563eb', bars: true },
          { label: 'sync', color: '#d97706' },
          { label: 'async', color: '#059669' },
        ]}
      />
      <table class="table" data-testid="checkpoint-table">
        <thead>
          <tr>
            <th>id</th>
            <th>status</th>
            <th>finished</th>
            <th>duration</th>
            <th>sync</th>
            <th>async</th>
            <th>size</th>
          </tr>
        </thead>
        <tbody>
          {checkpoints.length === 0 ? (
            <tr>
              <td colSpan={7} class="no-data">
                no checkpoint finished since this server started
              </td>
            </tr>
          ) : null}
          {[...checkpoints]
            .reverse()
            .slice(0, 8)
            .map((c) => (
              <tr key={c.id} class={c.status === 'aborted' ? 'bad-row' : ''} data-testid="checkpoint-row">
                <td>
                  {c.id}
                  {c.kind === 'savepoint' ? ' (savepoint)' : ''}
                </td>
                <td title={c.failureReason ?? ''}>
                  {c.status === 'completed' ? 'completed' : `ABORTED: ${c.failureReason ?? ''}`}
                </td>
                <td>{clockTime(c.atMs)}</td>
                <td>{formatSeconds(c.durationMs / 1000)}</td>
                <td>{c.syncMs === undefined ? '–' : formatSeconds(c.syncMs / 1000)}</td>
                <td>{c.asyncMs === undefined ? '–' : formatSeconds(c.asyncMs / 1000)}</td>
                <td>{formatBytes(c.bytes)}</td>
              </tr>
            ))}
        </tbody>
      </table>
    </section>
  );
}

/**
 * A sink is a sink operator of the plan (its uid). Its series carry `operator="<uid>"` and
 * `sink="<kind>"` (operators/sinks/sink-metrics.ts); a job-level series may name it by uid or,
 * when the job has one sink of that kind, by kind.
 */
interface SinkRef {
  readonly uid: string;
  readonly kind: string | undefined;
}

function sinksOf(now: JobOverview): SinkRef[] {
  const kindOf = (uid: string): string | undefined => {
    for (const name of [
      'cdcflow_sink_records_committed_total',
      'cdcflow_sink_freshness_seconds_count',
      'cdcflow_sink_commit_seconds_count',
    ]) {
      const found = samples(now.metrics, name).find((s) => s.labels['operator'] === uid)?.labels['sink'];
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return now.plan.filter((op) => op.kind === 'sink').map((op) => ({ uid: op.uid, kind: kindOf(op.uid) }));
}

/** The labels that select one sink's series of `metric` (undefined when it has none). */
function sinkMatch(now: JobOverview, sinks: readonly SinkRef[], metric: string, sink: SinkRef): Labels | undefined {
  const series = samples(now.metrics, metric);
  if (series.some((s) => s.labels['operator'] === sink.uid)) return { operator: sink.uid };
  if (series.some((s) => s.labels['sink'] === sink.uid)) return { sink: sink.uid };
  const sameKind = sinks.filter((s) => s.kind === sink.kind).length;
  if (
    sink.kind !== undefined &&
    sameKind === 1 &&
    series.some((s) => s.labels['sink'] === sink.kind && s.labels['operator'] === undefined)
  )
    return { sink: sink.kind };
  return undefined;
}

function sinkQuantile(
  now: JobOverview,
  before: JobOverview | undefined,
  sinks: readonly SinkRef[],
  metric: string,
  sink: SinkRef,
): number | undefined {
  const match = sinkMatch(now, sinks, `${metric}_bucket`, sink);
  return match === undefined ? undefined : quantile(0.99, now.metrics, before?.metrics, metric, match);
}

function sinkValue(now: JobOverview, sinks: readonly SinkRef[], metric: string, sink: SinkRef): number | undefined {
  const match = sinkMatch(now, sinks, metric, sink);
  return match === undefined ? undefined : total(now.metrics, metric, match);
}

function Sinks({ live }: { readonly live: Live }) {
  const { now, before, history } = live;
  const sinks = sinksOf(now);
  const freshness = history.aligned('fresh:');
  const commit = history.aligned('commit:');
  return (
    <section class="panel" data-testid="sinks">
      <h2>Sinks</h2>
      <table class="table">
        <thead>
          <tr>
            <th>sink</th>
            <th>kind</th>
            <th>replay safety</th>
            <th>backlog</th>
            <th>freshness p99</th>
            <th>commit p99</th>
            <th>committed</th>
          </tr>
        </thead>
        <tbody>
          {sinks.map((sink) => {
            const infoMatch = sinkMatch(now, sinks, 'cdcflow_sink_info', sink);
            const info =
              infoMatch === undefined
                ? undefined
                : samples(now.metrics, 'cdcflow_sink_info').find((s) =>
                    Object.entries(infoMatch).every(([k, v]) => s.labels[k] === v),
                  )?.labels;
            const backlog = sinkValue(now, sinks, 'cdcflow_sink_backlog_records', sink);
            const safety = info?.['replay_safety'];
            return (
              <tr key={sink.uid} data-testid="sink-row">
                <td>{sink.uid}</td>
                <td>{info?.['kind'] ?? sink.kind ?? '–'}</td>
                <td class={safety === 'at-least-once' ? 'warn-text' : ''}>{safety ?? 'no data'}</td>
                <td>{backlog === undefined ? 'no data' : formatCount(backlog)}</td>
                <td>
                  {formatSeconds(
                    sinkQuantile(now, before, sinks, 'cdcflow_sink_freshness_seconds', sink) ??
                      sinkQuantile(now, undefined, sinks, 'cdcflow_sink_freshness_seconds', sink),
                  )}
                </td>
                <td>
                  {formatSeconds(
                    sinkQuantile(now, before, sinks, 'cdcflow_sink_commit_seconds', sink) ??
                      sinkQuantile(now, undefined, sinks, 'cdcflow_sink_commit_seconds', sink),
                  )}
                </td>
                <td>{formatCount(sinkValue(now, sinks, 'cdcflow_sink_records_committed_total', sink))}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <Chart
        testId="freshness-chart"
        title="freshness p99 (source commit → visible), per sink"
        data={freshness.data}
        format={(v) => formatSeconds(v)}
        series={freshness.names.map((n, i) => ({ label: n, color: colorAt(i) }))}
      />
      <Chart
        testId="commit-chart"
        title="commit latency p99 (barrier → committed), per sink"
        data={commit.data}
        format={(v) => formatSeconds(v)}
        series={commit.names.map((n, i) => ({ label: n, color: colorAt(i) }))}
      />
    </section>
  );
}

function Sources({ live }: { readonly live: Live }) {
  const { now, history } = live;
  const partitions = seriesOf(now.metrics, 'cdcflow_source_lag_records', ['topic', 'partition']);
  const bases = labelValues(now.metrics, 'cdcflow_source_silence_seconds', 'basis');
  const lag = history.aligned('lag:');
  return (
    <section class="panel" data-testid="sources">
      <h2>Source partitions: lag and time to catch up</h2>
      {partitions.length === 0 ? (
        <p class="no-data">no data (no cdcflow_source_lag_records series: a Kafka source reports them)</p>
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th>topic</th>
              <th>partition</th>
              <th>lag (records)</th>
              <th>time to catch up</th>
              {bases.map((b) => (
                <th key={b}>silence ({b})</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {partitions.map((p) => {
              const l = total(now.metrics, 'cdcflow_source_lag_records', p);
              const catchUp = total(now.metrics, 'cdcflow_source_catch_up_seconds', p);
              return (
                <tr key={`${p['topic']}/${p['partition']}`} data-testid="partition-row">
                  <td>{p['topic']}</td>
                  <td>{p['partition']}</td>
                  <td class={(l ?? 0) > 10000 ? 'warn-text' : ''}>{formatCount(l)}</td>
                  <td>{catchUp === undefined ? 'no data' : formatSeconds(catchUp)}</td>
                  {bases.map((basis) => (
                    <td key={basis}>
                      {formatSeconds(total(now.metrics, 'cdcflow_source_silence_seconds', { ...p, basis }))}
                    </td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <Chart
        testId="lag-chart"
        title="lag per partition (records)"
        data={lag.data}
        format={(v) => formatCount(v)}
        series={lag.names.map((n, i) => ({ label: n, color: colorAt(i) }))}
      />
    </section>
  );
}

function Throughput({ live }: { readonly live: Live }) {
  const rates = live.history.aligned('rate:');
  return (
    <section class="panel" data-testid="throughput">
      <h2>Throughput</h2>
      <Chart
        testId="throughput-chart"
        title="records per second out of each source and into each sink"
        data={rates.data}
        format={(v) => formatRate(v)}
        series={rates.names.map((n, i) => ({ label: n, color: colorAt(i) }))}
      />
    </section>
  );
}

function LateEvents({ live }: { readonly live: Live }) {
  const { now, before } = live;
  const rows = [
    ...samples(now.metrics, 'cdcflow_late_events_total').map((s) => ({ metric: 'late', s })),
    ...samples(now.metrics, 'cdcflow_late_events_dropped_total').map((s) => ({ metric: 'dropped', s })),
  ];
  return (
    <section class="panel" data-testid="late-events">
      <h2>Late events</h2>
      {rows.length === 0 ? (
        <p class="no-data">no late events recorded (no windowed operator, or none late yet)</p>
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th>operator</th>
              <th>what</th>
              <th>total</th>
              <th>per second</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(({ metric, s }) => {
              const { operator, ...rest } = s.labels;
              const name = metric === 'late' ? 'cdcflow_late_events_total' : 'cdcflow_late_events_dropped_total';
              return (
                <tr key={`${metric}${JSON.stringify(s.labels)}`}>
                  <td>{operator ?? '–'}</td>
                  <td>
                    {metric}{' '}
                    {Object.entries(rest)
                      .map(([k, v]) => `${k}=${v}`)
                      .join(' ')}
                  </td>
                  <td>{formatCount(s.value)}</td>
                  <td>{formatRate(rate(now, before, name, s.labels))}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function DeadLetters({ live }: { readonly live: Live }) {
  const { now, before } = live;
  const rows = samples(now.metrics, 'cdcflow_dead_letters_total').filter((s) => (s.value ?? 0) > 0);
  const letters = [...now.deadLetters].reverse().slice(0, 6);
  return (
    <section class="panel" data-testid="dead-letters">
      <h2>Dead letters</h2>
      {rows.length === 0 ? (
        <p class="no-data">none: every record so far was processed</p>
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th>stage</th>
              <th>reason</th>
              <th>total</th>
              <th>new</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => {
              const d = before === undefined ? undefined : delta(now, before, 'cdcflow_dead_letters_total', s.labels);
              return (
                <tr key={JSON.stringify(s.labels)} data-testid="dead-letter-row" class="bad-row">
                  <td>{s.labels['stage'] ?? s.labels['operator']}</td>
                  <td>{s.labels['reason']}</td>
                  <td>{formatCount(s.value)}</td>
                  <td>{d === undefined || d === 0 ? '' : `+${formatCount(d)}`}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {letters.length === 0 ? null : (
        <>
          <h3>Recent letters</h3>
          <ul class="samples" data-testid="dead-letter-samples">
            {letters.map((l, i) => (
              <li key={i}>
                <span class="when">{clockTime(l.atMs)}</span> <b>{l.stage}</b> {l.kind} at {l.topic}/{l.partition}@
                {l.offset}:{' '}
                <span class="reason">
                  {l.errorClass}: {l.reason}
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

function Exceptions({ live }: { readonly live: Live }) {
  const { now } = live;
  const restarts = total(now.metrics, 'cdcflow_job_restarts_total') ?? now.restarts;
  const list = [...now.exceptions].reverse().slice(0, 5);
  return (
    <section class="panel" data-testid="exceptions">
      <h2>
        Exceptions and restarts <span class="sub">{formatCount(restarts)} restarts</span>
      </h2>
      {list.length === 0 ? (
        <p class="no-data">no exception since the job started</p>
      ) : (
        <ul class="exceptions">
          {list.map((e, i) => (
            <li key={i}>
              <span class="when">{clockTime(e.atMs)}</span>
              <pre>{e.message}</pre>
            </li>
          ))}
        </ul>
      )}
      {now.restoredFrom === undefined ? null : <p class="sub">restored from {now.restoredFrom}</p>}
    </section>
  );
}

/** The points one snapshot adds to the charts. */
function pointsOf(now: JobOverview, before: JobOverview | undefined): Map<string, number | undefined> {
  const points = new Map<string, number | undefined>();
  const sinks = sinksOf(now);
  for (const sink of sinks) {
    points.set(`fresh:${sink.uid}`, sinkQuantile(now, before, sinks, 'cdcflow_sink_freshness_seconds', sink));
    points.set(`commit:${sink.uid}`, sinkQuantile(now, before, sinks, 'cdcflow_sink_commit_seconds', sink));
  }
  for (const p of seriesOf(now.metrics, 'cdcflow_source_lag_records', ['topic', 'partition']).slice(0, 8))
    points.set(`lag:${p['topic']}/${p['partition']}`, total(now.metrics, 'cdcflow_source_lag_records', p));
  for (const op of now.plan) {
    if (op.kind === 'source')
      points.set(`rate:${op.uid} (out)`, rate(now, before, 'cdcflow_records_out_total', { operator: op.uid }));
    if (op.kind === 'sink')
      points.set(`rate:${op.uid} (in)`, rate(now, before, 'cdcflow_records_in_total', { operator: op.uid }));
  }
  return points;
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);

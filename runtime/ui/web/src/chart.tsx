/** A uPlot line chart that follows its data; re-created only when its series change. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartSeries {
  readonly label: string;
  readonly color: string;
  /** Drawn as bars (checkpoint durations) instead of a line. */
  readonly bars?: boolean;
}

export interface ChartProps {
  readonly title: string;
  /** x values first (epoch seconds for `time`, plain numbers otherwise), then one array per series. */
  readonly data: readonly (readonly (number | null)[])[];
  readonly series: readonly ChartSeries[];
  readonly format: (v: number) => string;
  readonly time?: boolean;
  readonly height?: number;
  readonly testId: string;
}

const COLORS = ['#2563eb', '#d97706', '#059669', '#7c3aed', '#db2777', '#0891b2', '#65a30d', '#dc2626'];
export const colorAt = (i: number): string => COLORS[i % COLORS.length] as string;

export function Chart(p: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const shape = p.series.map((s) => `${s.label}|${s.bars === true}`).join(',');
  const empty = p.data.slice(1).every((ys) => ys.every((v) => v === null));

  useEffect(() => {
    const el = box.current;
    if (el === null) return undefined;
    const bars = uPlot.paths.bars?.({ size: [0.6, 40] });
    const options: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: p.height ?? 180,
      // Counts, rates and durations: from zero, so a small wobble does not look like a cliff.
      scales: { x: { time: p.time !== false }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      axes: [
        {
          stroke: '#475569',
          grid: { stroke: '#e2e8f0' },
          ...(p.time === false
            ? { incrs: [1, 2, 5, 10, 20, 50, 100] }
            : {
                space: 70,
                incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600],
                values: (_u: uPlot, ticks: number[]) =>
                  ticks.map((t) => new Date(t * 1000).toISOString().slice(11, 19)),
              }),
        },
        {
          stroke: '#475569',
          grid: { stroke: '#e2e8f0' },
          size: 70,
          values: (_u, ticks) => ticks.map((t) => p.format(t)),
        },
      ],
      series: [
        {},
        ...p.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          ...(s.bars === true && bars !== undefined ? { paths: bars, fill: `${s.color}99` } : {}),
          points: { show: s.bars !== true },
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => (v === null ? '–' : p.format(v)),
        })),
      ],
    };
    const chart = new uPlot(options, p.data as uPlot.AlignedData, el);
    plot.current = chart;
    const resize = new ResizeObserver(() =>
      chart.setSize({ width: Math.max(200, el.clientWidth), height: p.height ?? 180 }),
    );
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = undefined;
    };
    // The chart is rebuilt when its series change; data flows through setData below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(p.data as uPlot.AlignedData);
  }, [p.data]);

  if (p.series.length === 0) {
    return (
      <figure class="chart" data-testid={p.testId}>
        <figcaption>{p.title}</figcaption>
        <div class="no-data chart-empty">no data</div>
      </figure>
    );
  }
  return (
    <figure class="chart" data-testid={p.testId}>
      <figcaption>{p.title}</figcaption>
      <div ref={box} class="chart-body" />
      {empty ? <div class="no-data">no data yet</div> : null}
    </figure>
  );
}

/// <reference lib="dom" />
/**
 * The operator dashboard's charts, drawn with uPlot on canvas: one chart per figure, x = the minute, updated in
 * place (`setData`) when new points arrive. Pure data shaping is in {@link chartData} (unit-tested).
 */
import uPlot from "uplot";
import type { SeriesPoint } from "./ops_api.ts";

/** What one chart shows: its title, unit and the point fields drawn as lines. */
export interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  lines: Array<{ label: string; field: keyof SeriesPoint; color: string; scale?: number }>;
}

export const CHARTS: ChartSpec[] = [
  {
    id: "rps",
    title: "Requests per second",
    unit: "req/s",
    lines: [{ label: "req/s", field: "requests_per_second", color: "#1f6feb" }],
  },
  {
    id: "errors",
    title: "Error rate",
    unit: "%",
    lines: [{ label: "failed %", field: "error_rate", color: "#cf222e", scale: 100 }],
  },
  {
    id: "provider",
    title: "Provider time",
    unit: "ms",
    lines: [
      { label: "p50", field: "provider_p50_ms", color: "#1f6feb" },
      { label: "p95", field: "provider_p95_ms", color: "#bf8700" },
    ],
  },
  {
    id: "overhead",
    title: "Bus overhead",
    unit: "ms",
    lines: [
      { label: "p50", field: "overhead_p50_ms", color: "#1a7f37" },
      { label: "p95", field: "overhead_p95_ms", color: "#8250df" },
    ],
  },
  {
    id: "ttft",
    title: "Time to first token",
    unit: "ms",
    lines: [
      { label: "p50", field: "ttft_p50_ms", color: "#0969da" },
      { label: "p95", field: "ttft_p95_ms", color: "#bc4c00" },
    ],
  },
  {
    id: "bytes",
    title: "Payload bytes per minute",
    unit: "B",
    lines: [{ label: "bytes", field: "payload_bytes", color: "#57606a" }],
  },
];

/** uPlot's columnar data for `spec`: x in Unix seconds, then one column per line (null where there is no value). */
export function chartData(spec: ChartSpec, points: readonly SeriesPoint[]): uPlot.AlignedData {
  const xs = points.map((p) => Date.parse(p.minute) / 1000);
  const ys = spec.lines.map((l) =>
    points.map((p) => {
      const v = p[l.field];
      return typeof v === "number" ? v * (l.scale ?? 1) : null;
    })
  );
  return [xs, ...ys];
}

/** Creates the charts inside `container` and returns a function that redraws them with new points. */
export function createCharts(container: HTMLElement): (points: readonly SeriesPoint[]) => void {
  const plots = CHARTS.map((spec) => {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.chart = spec.id;
    container.append(box);
    const plot = new uPlot(
      {
        title: `${spec.title} (${spec.unit})`,
        width: 360,
        height: 200,
        scales: { x: { time: true } },
        // Points as well as lines: a minute with traffic between quiet ones has no neighbour to draw a line to.
        series: [
          {},
          ...spec.lines.map((l) => ({
            label: l.label,
            stroke: l.color,
            width: 2,
            spanGaps: true,
            points: { show: true, size: 5, fill: l.color },
          })),
        ],
        axes: [{}, { size: 60 }],
      },
      chartData(spec, []),
      box,
    );
    return { spec, plot };
  });
  return (points) => {
    for (const { spec, plot } of plots) plot.setData(chartData(spec, points));
  };
}

// One chart of the Reports section (issue 19), drawn by Apache ECharts. Only the parts the
// reports use are imported (echarts/core and the bar and line charts, SVG renderer), and
// the Reports section is loaded on demand, so the app's first load does not carry them.
// The numbers are also in the table under every chart: the chart is for the eye, the
// table for reading (and for screen readers).
import { useEffect, useRef } from "react";
import * as echarts from "echarts/core";
import { BarChart, LineChart } from "echarts/charts";
import { GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import { SVGRenderer } from "echarts/renderers";
import type { BarSeriesOption, LineSeriesOption } from "echarts/charts";
import type { GridComponentOption, LegendComponentOption, TooltipComponentOption } from "echarts/components";

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, TooltipComponent, SVGRenderer]);

export type ChartOption = echarts.ComposeOption<
  BarSeriesOption | LineSeriesOption | GridComponentOption | LegendComponentOption | TooltipComponentOption
>;

export interface Series {
  name: string;
  values: (number | null)[];
  kind?: "bar" | "line";
  stack?: string;
}

/** A category axis (periods, operators, labels) and one or more series over it. */
export function chartOption(categories: string[], series: Series[], opts: { horizontal?: boolean; unit?: string } = {}): ChartOption {
  const valueAxis = { type: "value" as const, minInterval: opts.unit ? undefined : 1, name: opts.unit ?? "" };
  const categoryAxis = { type: "category" as const, data: categories, axisLabel: { hideOverlap: true } };
  return {
    animationDuration: 300,
    grid: { left: 8, right: 16, top: 34, bottom: 8, containLabel: true },
    legend: { top: 0, type: "scroll" },
    tooltip: { trigger: "axis", confine: true },
    xAxis: opts.horizontal ? valueAxis : categoryAxis,
    yAxis: opts.horizontal ? { ...categoryAxis, inverse: true } : valueAxis,
    series: series.map((s) =>
      s.kind === "line"
        ? { type: "line", name: s.name, data: s.values, connectNulls: false, showSymbol: categories.length <= 62 }
        : { type: "bar", name: s.name, data: s.values, stack: s.stack, barMaxWidth: 28 },
    ),
  };
}

export function Chart({ option, testId, height = 260, label }: { option: ChartOption; testId: string; height?: number; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts | null>(null);

  useEffect(() => {
    const c = echarts.init(box.current!, undefined, { renderer: "svg" });
    chart.current = c;
    const ro = new ResizeObserver(() => c.resize());
    ro.observe(box.current!);
    return () => {
      ro.disconnect();
      c.dispose();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    // replaced whole: a series that is gone (a label no longer in the period) goes too
    chart.current?.setOption(option, { notMerge: true });
  }, [option]);

  return <div ref={box} className="chart" style={{ height }} role="img" aria-label={label} data-testid={testId} />;
}

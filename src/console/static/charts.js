// Charts as inline SVG, drawn from the dashboards' one generic shape: {kind, columns, rows}, where
// the first column is the x axis or category (a day, a weekday, a step) and the rest are series.
// Colours come from style.css classes (series-0 … series-5, heat) so the page needs no inline style.

import { formatNumber, h, s } from './dom.js';

const WIDTH = 640;
const SERIES_CLASSES = 6;
const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);

/** The chart as a DOM element, whatever its kind; an unknown kind falls back to a table. */
export function renderChart(chart) {
  const body = chart.rows.length === 0 ? h('p', { class: 'chart-empty' }, 'No data for this chart in this range.') : draw(chart);
  return h('figure', { class: `chart chart-${chart.kind}`, dataset: { chartId: chart.id, kind: chart.kind } }, h('figcaption', {}, chart.title), body);
}

function draw(chart) {
  const hasNumbers = chart.rows.some((r) => r.slice(1).some(isNumber));
  if (!hasNumbers && chart.kind !== 'table') return h('p', { class: 'chart-empty' }, 'No data for this chart in this range.');
  switch (chart.kind) {
    case 'line':
      return lineChart(chart);
    case 'bar':
      return barChart(chart);
    case 'heatmap':
      return heatmap(chart);
    case 'funnel':
      return funnelChart(chart);
    default:
      return table(chart);
  }
}

/** A round step for about `ticks` intervals up to `max`: 1, 2, 2.5 or 5 × 10^k (whole steps for counts). */
export function niceStep(max, ticks, integers) {
  if (!(max > 0)) return 1;
  const raw = max / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  let step = 10 * magnitude;
  for (const m of [1, 2, 2.5, 5]) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  return integers ? Math.max(1, Math.ceil(step)) : step;
}

/** The axis for these values: a round maximum split into at most four round steps. */
function valueAxis(values) {
  const max = Math.max(0, ...values);
  const step = niceStep(max, 4, values.every(Number.isInteger));
  return { max: Math.max(step, Math.ceil(max / step) * step), step };
}

function legend(series) {
  if (series.length < 2) return null;
  return h(
    'ul',
    { class: 'legend' },
    series.map((name, i) => h('li', {}, h('span', { class: `swatch series-${i % SERIES_CLASSES}` }), name)),
  );
}

function svgRoot(height, label) {
  return s('svg', { viewBox: `0 0 ${WIDTH} ${height}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'xMidYMid meet' });
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "2026-11-02" → "Nov 2" (axis labels); anything else as it is. */
function shortDay(v) {
  const m = /^\d{4}-(\d{2})-(\d{2})$/.exec(String(v));
  return m ? `${MONTHS[Number(m[1]) - 1]} ${Number(m[2])}` : String(v);
}

/** Daily series: one polyline per series, y from 0 to a round maximum, a few x labels. */
function lineChart(chart) {
  const series = chart.columns.slice(1);
  const height = 240;
  const m = { left: 52, right: 16, top: 12, bottom: 30 };
  const plotW = WIDTH - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const { max, step } = valueAxis(chart.rows.flatMap((r) => r.slice(1)).filter(isNumber));
  const n = chart.rows.length;
  const x = (i) => m.left + (n === 1 ? plotW / 2 : (i * plotW) / (n - 1));
  const y = (v) => m.top + plotH - (v / max) * plotH;
  const svg = svgRoot(height, chart.title);

  for (let k = 0; k * step <= max + step / 2; k++) {
    const v = k * step;
    svg.append(
      s('line', { class: 'grid', x1: m.left, x2: WIDTH - m.right, y1: y(v), y2: y(v) }),
      s('text', { class: 'axis-label', x: m.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, formatNumber(v)),
    );
  }
  // About six x labels; the first and last are anchored inward so they stay inside the chart.
  const labelEvery = Math.max(1, Math.ceil(n / 6));
  chart.rows.forEach((r, i) => {
    const last = i === n - 1;
    if ((i % labelEvery === 0 && n - 1 - i >= labelEvery) || last) {
      const anchor = n > 1 && i === 0 ? 'start' : n > 1 && last ? 'end' : 'middle';
      svg.append(s('text', { class: 'axis-label', x: x(i), y: height - 10, 'text-anchor': anchor }, shortDay(r[0])));
    }
  });
  series.forEach((name, si) => {
    const cls = `series-${si % SERIES_CLASSES}`;
    let d = '';
    let pen = 'M';
    chart.rows.forEach((r, i) => {
      const v = r[si + 1];
      if (!isNumber(v)) {
        pen = 'M'; // a gap in the data is a gap in the line
        return;
      }
      d += `${pen}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      pen = 'L';
    });
    svg.append(s('path', { class: `line ${cls}`, d: d.trim() }));
    chart.rows.forEach((r, i) => {
      const v = r[si + 1];
      if (isNumber(v)) svg.append(s('circle', { class: `point ${cls}`, cx: x(i), cy: y(v), r: 3 }, s('title', {}, `${r[0]} · ${name}: ${formatNumber(v)}`)));
    });
  });
  return h('div', { class: 'chart-body' }, svg, legend(series));
}

/**
 * Horizontal bars (category labels stay readable however many there are), grouped by series.
 * Each series is scaled to its own maximum: series often differ in unit (a count and a share in
 * %), and what a bar chart compares is the categories within one series; the values are printed.
 */
function barChart(chart) {
  const series = chart.columns.slice(1);
  const barH = 16;
  const groupH = barH * series.length + 10;
  const m = { left: 150, right: 70, top: 6 };
  const height = m.top + groupH * chart.rows.length + 6;
  const plotW = WIDTH - m.left - m.right;
  const maxima = series.map((_, si) => valueAxis(chart.rows.map((r) => r[si + 1]).filter(isNumber)).max);
  const unit = series.map((name) => (/%/.test(name) ? '%' : ''));
  const svg = svgRoot(height, chart.title);
  chart.rows.forEach((r, i) => {
    const top = m.top + i * groupH;
    const label = String(r[0] ?? '(none)');
    svg.append(
      s('text', { class: 'axis-label', x: m.left - 8, y: top + (barH * series.length) / 2 + 4, 'text-anchor': 'end' },
        label.length > 22 ? label.slice(0, 21) + '…' : label, s('title', {}, label)),
    );
    series.forEach((name, si) => {
      const v = isNumber(r[si + 1]) ? r[si + 1] : 0;
      const w = Math.max((v / maxima[si]) * plotW, v > 0 ? 1 : 0);
      const y = top + si * barH;
      const text = isNumber(r[si + 1]) ? formatNumber(r[si + 1], 1) + unit[si] : '—';
      svg.append(
        s('rect', { class: `bar series-${si % SERIES_CLASSES}`, x: m.left, y, width: w, height: barH - 3 }, s('title', {}, `${label} · ${name}: ${text}`)),
        s('text', { class: 'value-label', x: m.left + w + 6, y: y + barH - 5 }, text),
      );
    });
  });
  return h('div', { class: 'chart-body' }, svg, legend(series));
}

/**
 * Weekday × hour grid shaded by value. Takes either the wide form (one row per weekday, a column
 * per hour) or the long form (columns [weekday, hour, value], one row per cell).
 */
function heatmap(chart) {
  const grid = heatGrid(chart);
  const cell = Math.min(22, Math.floor((WIDTH - 90) / Math.max(1, grid.cols.length)));
  const m = { left: 84, top: 20 };
  const height = m.top + cell * grid.rowLabels.length + 6;
  const max = Math.max(0, ...grid.values.flat().filter(isNumber));
  const svg = svgRoot(height, chart.title);
  grid.cols.forEach((c, j) => {
    if (grid.cols.length <= 12 || j % 3 === 0) {
      svg.append(s('text', { class: 'axis-label', x: m.left + j * cell + cell / 2, y: m.top - 6, 'text-anchor': 'middle' }, c));
    }
  });
  grid.rowLabels.forEach((label, i) => {
    svg.append(s('text', { class: 'axis-label', x: m.left - 6, y: m.top + i * cell + cell / 2 + 4, 'text-anchor': 'end' }, label));
    grid.cols.forEach((c, j) => {
      const v = grid.values[i][j];
      const share = max > 0 && isNumber(v) ? v / max : 0;
      svg.append(
        s('rect', {
          class: share > 0 ? 'heat' : 'heat-empty',
          x: m.left + j * cell,
          y: m.top + i * cell,
          width: cell - 2,
          height: cell - 2,
          'fill-opacity': share > 0 ? (0.15 + 0.85 * share).toFixed(2) : undefined,
        }, s('title', {}, `${label} ${c}: ${formatNumber(v ?? 0)}`)),
      );
    });
  });
  return h('div', { class: 'chart-body' }, svg, h('p', { class: 'chart-note' }, `Darker = more (max ${formatNumber(max)}).`));
}

function heatGrid(chart) {
  const longForm = chart.columns.length === 3 && chart.rows.length > 7;
  if (!longForm) {
    return { rowLabels: chart.rows.map((r) => String(r[0])), cols: chart.columns.slice(1), values: chart.rows.map((r) => r.slice(1)) };
  }
  const rowLabels = [...new Set(chart.rows.map((r) => String(r[0])))];
  const cols = [...new Set(chart.rows.map((r) => String(r[1])))];
  const values = rowLabels.map(() => cols.map(() => null));
  for (const [row, col, v] of chart.rows) values[rowLabels.indexOf(String(row))][cols.indexOf(String(col))] = v;
  return { rowLabels, cols, values };
}

/** Funnel steps: bars as a share of the first step, with the drop-off between each pair. */
function funnelChart(chart) {
  const counts = chart.rows.map((r) => (isNumber(r[1]) ? r[1] : 0));
  const first = counts[0] ?? 0;
  const rowH = 46;
  const m = { left: 150, right: 16, top: 6 };
  const plotW = WIDTH - m.left - m.right;
  const height = m.top + rowH * chart.rows.length;
  const svg = svgRoot(height, chart.title);
  chart.rows.forEach((r, i) => {
    const y = m.top + i * rowH;
    const share = first > 0 ? counts[i] / first : 0;
    const w = Math.max(share * plotW, counts[i] > 0 ? 1 : 0);
    const label = String(r[0]);
    const completion = `${formatNumber(counts[i])} (${formatNumber(share * 100, 1)}%)`;
    svg.append(
      s('text', { class: 'axis-label', x: m.left - 8, y: y + 16, 'text-anchor': 'end' }, label.length > 22 ? label.slice(0, 21) + '…' : label, s('title', {}, label)),
      s('rect', { class: 'bar series-0', x: m.left, y: y + 2, width: w, height: 20 }, s('title', {}, `${label}: ${completion}`)),
      // The figure goes inside a bar wide enough to hold it (in white), else just after the bar.
      w > plotW * 0.4
        ? s('text', { class: 'value-label inside', x: m.left + w - 8, y: y + 16, 'text-anchor': 'end' }, completion)
        : s('text', { class: 'value-label', x: m.left + w + 6, y: y + 16 }, completion),
    );
    if (i > 0) {
      const prev = counts[i - 1];
      const drop = prev > 0 ? ((prev - counts[i]) / prev) * 100 : 0;
      svg.append(s('text', { class: 'drop-off', x: m.left, y: y - 3 }, `▼ drop-off ${formatNumber(drop, 1)}% from previous step`));
    }
  });
  return h('div', { class: 'chart-body' }, svg, table(chart));
}

function table(chart) {
  return h(
    'table',
    { class: 'data' },
    h('thead', {}, h('tr', {}, chart.columns.map((c, j) => h('th', { class: isNumber(chart.rows[0]?.[j]) ? 'num' : undefined }, c)))),
    h('tbody', {}, chart.rows.map((r) => h('tr', {}, r.map((v) => h('td', { class: isNumber(v) ? 'num' : undefined }, isNumber(v) ? formatNumber(v) : v ?? '—'))))),
  );
}

// The site power chart in plain SVG: measured power (step line and area), the limit and the plan ahead.
// Every series is a step function: a list of [time in ms, kW] points, each value holding until the next.

const NS = "http://www.w3.org/2000/svg";
const MARGIN = { top: 20, right: 12, bottom: 24, left: 44 };

function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

/** A "nice" step for about `count` ticks over `span`. */
function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power;
  return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power;
}

/** The path of a step function clipped to [start, end] ("null" values break the line). */
function stepPath(points, x, y, start, end) {
  let d = "";
  let pen = false;
  for (let i = 0; i < points.length; i += 1) {
    const [t, value] = points[i];
    const next = i + 1 < points.length ? points[i + 1][0] : end;
    if (next <= start || t >= end) continue;
    if (value === null || value === undefined || !Number.isFinite(value)) { pen = false; continue; }
    const from = Math.max(t, start);
    const to = Math.min(next, end);
    d += `${pen ? "L" : "M"}${x(from).toFixed(1)},${y(value).toFixed(1)}L${x(to).toFixed(1)},${y(value).toFixed(1)}`;
    pen = true;
  }
  return d;
}

function timeLabel(ms) {
  const date = new Date(ms);
  return `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}`;
}

/** The largest value of the series within [start, end]. */
function peak(series, start, end) {
  let top = 0;
  for (const points of series) {
    for (let i = 0; i < points.length; i += 1) {
      const [t, value] = points[i];
      const next = i + 1 < points.length ? points[i + 1][0] : end;
      if (next > start && t < end && Number.isFinite(value)) top = Math.max(top, value);
    }
  }
  return top;
}

/**
 * Draw into `svg` (keeps its <title> and <desc>).
 * data: { start, now, end (ms), power, limit, plan (step points) }
 */
export function drawChart(svg, data) {
  for (const node of [...svg.childNodes]) {
    if (node.nodeName !== "title" && node.nodeName !== "desc") svg.removeChild(node);
  }
  const width = Math.max(svg.clientWidth || 600, 200);
  const height = Math.max(svg.clientHeight || 260, 120);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const { start, now, end } = data;
  const top = Math.max(peak([data.power, data.limit, data.plan], start, end) * 1.1, 1);
  const step = niceStep(top, 4);
  const yMax = Math.ceil(top / step) * step;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const x = (t) => MARGIN.left + ((t - start) / (end - start)) * plotW;
  const y = (v) => MARGIN.top + plotH - (v / yMax) * plotH;

  const grid = el("g", { class: "grid" }, svg);
  const axis = el("g", { class: "axis" }, svg);
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    el("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v) }, grid);
    const label = el("text", { x: MARGIN.left - 6, y: y(v) + 4, "text-anchor": "end" }, axis);
    label.textContent = `${Number(v.toFixed(2))}`;
  }
  const unit = el("text", { x: MARGIN.left - 6, y: 11, "text-anchor": "end" }, axis);
  unit.textContent = "kW";
  const quarter = 15 * 60 * 1000;
  const every = (end - start) / quarter > 12 ? 4 * quarter : (end - start) / quarter > 6 ? 2 * quarter : quarter;
  for (let t = Math.ceil(start / every) * every; t <= end; t += every) {
    el("line", { x1: x(t), x2: x(t), y1: MARGIN.top, y2: MARGIN.top + plotH }, grid);
    const label = el("text", { x: x(t), y: height - 6, "text-anchor": "middle" }, axis);
    label.textContent = timeLabel(t);
  }

  const power = data.power.length ? [...data.power, [now, data.power[data.power.length - 1][1]]] : [];
  const line = stepPath(power, x, y, start, now);
  if (line) {
    const base = y(0).toFixed(1);
    const first = line.slice(1, line.indexOf(","));
    const last = x(Math.min(now, end)).toFixed(1);
    el("path", { class: "power-area", d: `M${first},${base}${line.replace(/^M/, "L")}L${last},${base}Z` }, svg);
    el("path", { id: "power-line", class: "power-line", d: line, "data-points": data.power.length }, svg);
  }
  const limit = stepPath(data.limit, x, y, start, end);
  if (limit) el("path", { id: "limit-line", class: "limit-line", d: limit }, svg);
  const plan = stepPath(data.plan, x, y, now, end);
  if (plan) el("path", { id: "plan-line", class: "plan-line", d: plan }, svg);
  el("line", { class: "now-line", x1: x(now), x2: x(now), y1: MARGIN.top, y2: MARGIN.top + plotH }, svg);
}

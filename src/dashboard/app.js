// The live dashboard: polls /api/state once a second and redraws in place. Every value from
// the run is set as text (textContent), never parsed as HTML.
"use strict";
const COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00"];
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw * 0.999) return m * p;
  return 10 * p;
}

function fmt(v) {
  if (Math.abs(v) >= 10000) return (v / 1000).toFixed(0) + "k";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return String(Math.round(v * 10) / 10);
  return String(Math.round(v * 1000) / 1000);
}

// A line chart of series [{name, points: [[x, y]]}] with axes and units.
function drawChart(svg, legend, series, xLabel, yLabel) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  while (legend.firstChild) legend.removeChild(legend.firstChild);
  const W = 640, H = 300, L = 64, R = 16, T = 12, B = 48;
  const xs = [], ys = [];
  for (const s of series) for (const [x, y] of s.points) { xs.push(x); ys.push(y); }
  const xmin = xs.length ? Math.min(...xs) : 0, xmax = xs.length ? Math.max(...xs) : 1;
  const ystep = niceStep((ys.length ? Math.max(...ys) : 1) / 4);
  const ymax = Math.max(ystep, Math.ceil((ys.length ? Math.max(...ys) : 1) / ystep) * ystep);
  const px = (x) => L + (xmax > xmin ? (x - xmin) / (xmax - xmin) : 0.5) * (W - L - R);
  const py = (y) => H - B - (y / ymax) * (H - B - T);
  svg.appendChild(el("svg:rect", { x: L, y: T, width: W - L - R, height: H - B - T, fill: "#fff", stroke: "#999" }));
  for (let v = 0; v <= ymax + ystep * 1e-6; v += ystep) {
    svg.appendChild(el("svg:line", { x1: L, x2: W - R, y1: py(v), y2: py(v), stroke: "#e5e5e5" }));
    svg.appendChild(el("svg:text", { x: L - 5, y: py(v) + 4, "text-anchor": "end", class: "tick" }, fmt(v)));
  }
  const xstep = niceStep((xmax - xmin) / 5 || 1);
  for (let v = Math.ceil(xmin / xstep) * xstep; v <= xmax + 1e-9; v += xstep) {
    svg.appendChild(el("svg:text", { x: px(v), y: H - B + 15, "text-anchor": "middle", class: "tick" }, fmt(v)));
  }
  svg.appendChild(el("svg:text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle", class: "axis-label" }, xLabel));
  svg.appendChild(el("svg:text", { transform: `translate(14,${(T + H - B) / 2}) rotate(-90)`, "text-anchor": "middle", class: "axis-label" }, yLabel));
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const g = el("svg:g", { class: "series", "data-series": s.name, "data-points": s.points.length });
    if (s.points.length > 1) {
      const d = s.points.map(([x, y], j) => `${j ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
      g.appendChild(el("svg:path", { d, fill: "none", stroke: colour, "stroke-width": 2 }));
    } else if (s.points.length === 1) {
      g.appendChild(el("svg:circle", { cx: px(s.points[0][0]), cy: py(s.points[0][1]), r: 3, fill: colour }));
    }
    svg.appendChild(g);
    const li = el("li");
    li.appendChild(el("span", { style: `display:inline-block;width:18px;height:4px;background:${colour}` }));
    li.appendChild(document.createTextNode(s.name));
    legend.appendChild(li);
  });
}

function pick(points, key) {
  return points.filter((p) => p[key] !== null && p[key] !== undefined).map((p) => [p.t_s, p[key]]);
}

function render(s) {
  const status = $("run-status");
  status.textContent = s.status || "starting";
  status.className = "badge " + (s.status === "running" ? "status-ok" : "status-none");
  $("run-id").textContent = s.run_id || "";
  $("run-kind").textContent = s.kind ? `(${s.kind})` : "";
  const pct = s.total > 0 ? Math.min(100, (100 * s.position) / s.total) : 0;
  $("step").textContent = s.step
    ? `${s.step}: ${s.position}${s.total > 0 ? " / " + s.total + ` (${pct.toFixed(0)}%)` : ""}, ${s.step_elapsed_s.toFixed(0)} s`
    : "waiting for the run to start";
  $("bar-fill").style.width = pct + "%";
  $("finished-total").textContent = s.finished_total;
  $("failed-total").textContent = s.failed_total;
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();

  const alerts = $("alerts");
  while (alerts.firstChild) alerts.removeChild(alerts.firstChild);
  for (const a of (s.alerts || []).slice().reverse()) {
    alerts.appendChild(el("li", { class: a.level }, `${a.at_s.toFixed(0)} s: ${a.message}`));
  }
  $("no-alerts").hidden = (s.alerts || []).length > 0;

  const points = s.series || [];
  drawChart($("chart-rate"), $("legend-rate"), [
    { name: "finished/s", points: pick(points, "per_second") },
    { name: "failed (per window)", points: points.map((p) => [p.t_s, p.failed]) },
  ], "time since the dashboard started (s)", "per second");
  drawChart($("chart-latency"), $("legend-latency"), [
    { name: "E2E p50", points: pick(points, "e2e_p50_ms") },
    { name: "E2E p95", points: pick(points, "e2e_p95_ms") },
    { name: "TTFT p50", points: pick(points, "ttft_p50_ms") },
    { name: "TTFT p95", points: pick(points, "ttft_p95_ms") },
  ].filter((x) => x.points.length > 0), "time since the dashboard started (s)", "latency (ms)");

  const table = $("scenarios");
  const head = table.tHead, body = table.tBodies[0];
  while (head.firstChild) head.removeChild(head.firstChild);
  while (body.firstChild) body.removeChild(body.firstChild);
  const hr = el("tr");
  (s.columns || []).forEach((c, i) => hr.appendChild(el("th", i === 0 ? { class: "text" } : {}, c)));
  head.appendChild(hr);
  for (const r of s.rows || []) {
    const tr = el("tr", { "data-status": r.status, "data-name": r.name });
    tr.appendChild(el("td", { class: "text" }, r.name));
    tr.appendChild(el("td", { class: "status-" + ({ ok: "ok", warn: "warn", bad: "bad" }[r.status] || "none") }, r.status_word));
    r.cells.forEach((c, i) => tr.appendChild(el("td", i === r.cells.length - 1 && s.kind === "inference" ? { class: "text" } : {}, c)));
    body.appendChild(tr);
  }
  $("no-rows").hidden = (s.rows || []).length > 0;

  const cmp = s.comparison;
  $("comparison-section").hidden = !cmp && !s.comparison_note;
  $("comparison-summary").textContent = cmp ? `${cmp.verdict.toUpperCase()}: ${cmp.summary}` : (s.comparison_note || "");
  const cbody = $("comparison").tBodies[0];
  while (cbody.firstChild) cbody.removeChild(cbody.firstChild);
  for (const r of (cmp && cmp.rows) || []) {
    const tr = el("tr", { "data-verdict": r.verdict });
    tr.appendChild(el("td", { class: "text" }, r.benchmark));
    tr.appendChild(el("td", {}, r.metric));
    tr.appendChild(el("td", {}, r.change));
    tr.appendChild(el("td", { class: { ok: "status-ok", warn: "status-warn", fail: "status-bad" }[r.verdict] }, r.verdict));
    cbody.appendChild(tr);
  }
  $("downloads").hidden = !s.files;
}

async function poll() {
  try {
    const r = await fetch("/api/state", { cache: "no-store" });
    if (r.ok) render(await r.json());
  } catch (e) {
    $("updated").textContent = "the run has gone (" + e.message + ")";
  }
  setTimeout(poll, 1000);
}
poll();

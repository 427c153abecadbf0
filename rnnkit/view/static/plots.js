"use strict";
// Plain SVG plots for the view (no library): lines, dots and a heat-map, a few thousand points
// at most. Each function draws into a container element and returns the <svg>.

const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

function svgEl(tag, attrs, parent) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function fmtNum(v) {
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1e4 || a < 1e-3) return v.toExponential(0);
  return String(+v.toPrecision(3));
}

// about n round values in [lo, hi]; each knows the text it is labelled with (as many decimals
// as the step needs, so close ticks never read the same)
function ticks(lo, hi, n) {
  if (!(hi > lo)) { const one = [lo]; one.labels = [fmtNum(lo)]; return one; }
  const raw = (hi - lo) / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    const t = +v.toPrecision(12);
    out.push(t);
    out.labels = out.labels || [];
    out.labels.push(t === 0 ? "0" : Math.abs(t) >= 1e4 || Math.abs(t) < 1e-3 ? t.toExponential(1) : t.toFixed(digits));
  }
  return out;
}

function tickLabel(list, k) { return list.labels ? list.labels[k] : fmtNum(list[k]); }

// log-scale ticks: the powers of ten inside, or round values when the range spans less
function logTicks(y0, y1) {
  const decades = ticks(Math.log10(y0), Math.log10(y1), 4).filter((t) => Number.isInteger(t));
  if (decades.length >= 2) return decades.map((t) => Math.pow(10, t));
  const t = ticks(y0, y1, 3), keep = t.map((v, k) => [v, t.labels[k]]).filter(([v]) => v > 0);
  const out = keep.map(([v]) => v);
  out.labels = keep.map(([, l]) => l);
  return out;
}

function extent(values, log) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v === null || !isFinite(v) || (log && v <= 0)) continue;
    lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) { const d = log ? lo * 0.5 : Math.abs(lo) * 0.1 || 1; return [lo - (log ? d : d), hi + d]; }
  return [lo, hi];
}

// series: [{name, x: [], y: [], color, dots, dash}]; o: {title, xlabel, ylabel, logy, intx (whole
// numbers on x: steps), width, height, vlines: [{x, label}], ymin, ymax, xmin, xmax}
function linePlot(box, series, o = {}) {
  const W = o.width || 560, H = o.height || 230, m = {l: 56, r: 12, t: 26, b: 38};
  const svg = svgEl("svg", {width: W, height: H, class: "chart", viewBox: `0 0 ${W} ${H}`}, box);
  const bands = o.bands || [];   // [{name, x, lo, hi, color, opacity}]: shaded intervals
  const xs = series.flatMap((s) => s.x);
  const ys = series.flatMap((s) => s.y).concat(bands.flatMap((b) => b.lo.concat(b.hi)));
  let [x0, x1] = extent(xs, false), [y0, y1] = extent(ys, o.logy);
  if (o.xmin !== undefined) x0 = o.xmin; if (o.xmax !== undefined) x1 = o.xmax;
  if (o.ymin !== undefined) y0 = o.ymin; if (o.ymax !== undefined) y1 = o.ymax;
  const ly = (v) => (o.logy ? Math.log10(v) : v);
  const [Y0, Y1] = [ly(y0), ly(y1)];
  const sx = (v) => m.l + ((v - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const sy = (v) => H - m.b - ((ly(v) - Y0) / (Y1 - Y0 || 1)) * (H - m.t - m.b);
  const axis = svgEl("g", {class: "axis"}, svg);
  const yt = o.logy ? logTicks(y0, y1) : ticks(y0, y1, 5);
  yt.forEach((t, k) => {
    svgEl("line", {x1: m.l, x2: W - m.r, y1: sy(t), y2: sy(t), class: "grid"}, axis);
    svgEl("text", {x: m.l - 6, y: sy(t) + 4, "text-anchor": "end"}, axis).textContent = tickLabel(yt, k);
  });
  const xt = o.intx ? ticks(x0, x1, 6).filter(Number.isInteger) : ticks(x0, x1, 6);
  xt.forEach((t, k) => {
    svgEl("line", {x1: sx(t), x2: sx(t), y1: H - m.b, y2: H - m.b + 4, class: "tick"}, axis);
    svgEl("text", {x: sx(t), y: H - m.b + 16, "text-anchor": "middle"}, axis).textContent = tickLabel(xt, k);
  });
  svgEl("rect", {x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, class: "frame"}, axis);
  if (o.xlabel) svgEl("text", {x: (W + m.l) / 2, y: H - 4, "text-anchor": "middle"}, axis).textContent = o.xlabel;
  if (o.ylabel) svgEl("text", {x: 12, y: (H + m.t - m.b) / 2, "text-anchor": "middle",
    transform: `rotate(-90 12 ${(H + m.t - m.b) / 2})`}, axis).textContent = o.ylabel;
  if (o.title) svgEl("text", {x: m.l, y: 16, class: "title"}, svg).textContent = o.title;
  for (const v of o.vlines || []) {
    svgEl("line", {x1: sx(v.x), x2: sx(v.x), y1: m.t, y2: H - m.b, class: "vline"}, svg);
    if (v.label) svgEl("text", {x: sx(v.x) + 3, y: m.t + 11, class: "vlabel"}, svg).textContent = v.label;
  }
  const ok = (x, y) => y !== null && x !== null && isFinite(y) && (!o.logy || y > 0);
  bands.forEach((b, k) => {   // under the lines; a step without a bound is left out
    const at = b.x.map((x, i) => i).filter((i) => ok(b.x[i], b.lo[i]) && ok(b.x[i], b.hi[i]));
    const pt = (i, y) => `${sx(b.x[i]).toFixed(1)},${sy(y).toFixed(1)}`;
    if (at.length) svgEl("path", {d: "M" + at.map((i) => pt(i, b.hi[i])).join("L") + "L" +
      at.slice().reverse().map((i) => pt(i, b.lo[i])).join("L") + "Z", fill: b.color,
      "fill-opacity": b.opacity || 0.15, stroke: "none", class: "band"}, svg);
    svgEl("text", {x: W - m.r - 6, y: m.t + 12 + 13 * (series.length + k), "text-anchor": "end",
      fill: b.color, class: "legend"}, svg).textContent = b.name;
  });
  series.forEach((s, k) => {
    const color = s.color || COLORS[k % COLORS.length];
    let d = "", pen = false;
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (!ok(x, y)) { pen = false; return; }
      d += `${pen ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`; pen = true;
      if (s.dots) svgEl("circle", {cx: sx(x), cy: sy(y), r: 2.5, fill: color}, svg);
    });
    if (!s.dots || s.line) svgEl("path", {d, fill: "none", stroke: color, "stroke-width": s.width || 1.5,
      "stroke-dasharray": s.dash || "", class: "series"}, svg);
    const lx = W - m.r - 6, lyy = m.t + 12 + 13 * k;
    svgEl("text", {x: lx, y: lyy, "text-anchor": "end", fill: color, class: "legend"}, svg).textContent = s.name;
  });
  svg.scaleX = sx; svg.scaleY = sy; svg.margins = m;
  return svg;
}

// rows: values in [0, 1] (row 0 at the top; flip: at the bottom), drawn as grey levels (invert:
// 0 black) on a canvas stretched to o.width less o.left and o.right; o.title above it
function grayImage(box, rows, o = {}) {
  const H = rows.length, W = H ? rows[0].length : 0;
  const fig = document.createElement("figure"); fig.className = "gray";
  if (o.title) { const c = document.createElement("figcaption"); c.textContent = o.title; fig.appendChild(c); }
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, W); canvas.height = Math.max(1, H);
  const left = o.left || 0, right = o.right || 0;   // margins: to line up with a plot below
  canvas.style.width = `${(o.width || 560) - left - right}px`; canvas.style.marginLeft = `${left}px`; canvas.style.height = `${Math.max(60, Math.min(240, 3 * H))}px`;
  canvas.style.imageRendering = "pixelated";
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(canvas.width, canvas.height);
  rows.forEach((row, y) => row.forEach((v, x) => {
    const g = Math.round(255 * (o.invert ? (v || 0) : 1 - (v || 0))), at = 4 * ((o.flip ? H - 1 - y : y) * W + x);
    img.data[at] = img.data[at + 1] = img.data[at + 2] = g; img.data[at + 3] = 255;
  }));
  ctx.putImageData(img, 0, 0);
  fig.appendChild(canvas); box.appendChild(fig);
  return canvas;
}

// groups: [{name, color, points: [[x, y], ...]}] on [0, 1] x [0, 1]
function scatterPlot(box, groups, o = {}) {
  const W = o.width || 260, H = o.height || 240, m = {l: 44, r: 10, t: 26, b: 36};
  const svg = svgEl("svg", {width: W, height: H, class: "chart", viewBox: `0 0 ${W} ${H}`}, box);
  const sx = (v) => m.l + v * (W - m.l - m.r), sy = (v) => H - m.b - v * (H - m.t - m.b);
  const axis = svgEl("g", {class: "axis"}, svg);
  for (const t of [0, 0.5, 1]) {
    svgEl("line", {x1: m.l, x2: W - m.r, y1: sy(t), y2: sy(t), class: "grid"}, axis);
    svgEl("text", {x: m.l - 5, y: sy(t) + 4, "text-anchor": "end"}, axis).textContent = t;
    svgEl("text", {x: sx(t), y: H - m.b + 14, "text-anchor": "middle"}, axis).textContent = t;
  }
  svgEl("line", {x1: sx(0), y1: sy(1), x2: sx(1), y2: sy(0), class: "grid"}, axis);
  svgEl("rect", {x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, class: "frame"}, axis);
  svgEl("text", {x: (W + m.l) / 2, y: H - 4, "text-anchor": "middle"}, axis).textContent = o.xlabel || "";
  svgEl("text", {x: 11, y: (H + m.t - m.b) / 2, "text-anchor": "middle",
    transform: `rotate(-90 11 ${(H + m.t - m.b) / 2})`}, axis).textContent = o.ylabel || "";
  if (o.title) svgEl("text", {x: m.l, y: 16, class: "title"}, svg).textContent = o.title;
  groups.forEach((g, k) => {
    const color = g.color || COLORS[k % COLORS.length];
    for (const [x, y] of g.points) svgEl("circle", {cx: sx(x), cy: sy(y), r: 2.5, fill: color, "fill-opacity": 0.6}, svg);
    svgEl("text", {x: W - m.r - 4, y: m.t + 12 + 12 * k, "text-anchor": "end", fill: color, class: "legend"}, svg).textContent = g.name;
  });
  return svg;
}

// rows: T rows of S weights in [0, 1]; ylabels (T) down, xlabels (S) across
function heatMap(box, rows, xlabels, ylabels, o = {}) {
  const c = o.cell || 22, m = {l: 90, t: 80};
  const W = m.l + c * xlabels.length + 10, H = m.t + c * ylabels.length + 10;
  const svg = svgEl("svg", {width: W, height: H, class: "chart heat", viewBox: `0 0 ${W} ${H}`}, box);
  rows.forEach((row, t) => row.forEach((w, s) => {
    const r = svgEl("rect", {x: m.l + s * c, y: m.t + t * c, width: c - 1, height: c - 1,
      fill: `rgba(33, 102, 172, ${Math.max(0.03, w || 0)})`}, svg);
    svgEl("title", {}, r).textContent = `${ylabels[t]} ← ${xlabels[s]}: ${(w || 0).toFixed(3)}`;
  }));
  xlabels.forEach((tok, s) => {
    const x = m.l + s * c + c / 2, y = m.t - 6;
    svgEl("text", {x, y, transform: `rotate(-60 ${x} ${y})`, class: "heat-label"}, svg).textContent = tok;
  });
  ylabels.forEach((tok, t) => {
    svgEl("text", {x: m.l - 6, y: m.t + t * c + c / 2 + 4, "text-anchor": "end", class: "heat-label"}, svg).textContent = tok;
  });
  return svg;
}

// Small SVG charts drawn by hand: no libraries, no CDN.
"use strict";
const SVGNS = "http://www.w3.org/2000/svg";
const PALETTE = ["#2f6fdb", "#d9534f", "#3a9d5d", "#e39b1b", "#8e5cc2", "#16a2b8", "#b0568f",
  "#6b7380", "#7a8f1c", "#c76a2b", "#3d5a80", "#9c6644"];

function svgEl(tag, attrs, parent) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}
function svgText(parent, x, y, text, attrs) {
  const t = svgEl("text", Object.assign({ x, y }, attrs || {}), parent);
  t.textContent = text;
  return t;
}
function fmt(v, digits) {
  if (v === null || v === undefined) return "-";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + " G";
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e8 ? 0 : 1) + " M";
  if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + " k";
  return Number(v).toFixed(digits === undefined ? 0 : digits);
}
function logTicks(lo, hi) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(Math.pow(10, e));
  return out;
}

// Accuracy vs MACs (log x), area ~ params; click opens the model.
function bubbleChart(host, rows, onClick, id = "bubble") {
  const pts = rows.filter(r => r.top1_err_pct !== null && r.macs > 0);
  const W = 760, H = 380, L = 56, R = 16, T = 14, B = 40;
  const svg = svgEl("svg", { id, width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  host.appendChild(svg);
  if (!pts.length) { svgText(svg, 20, 40, "no model with a published top-1 error"); return svg; }
  const xs = pts.map(p => p.macs), ys = pts.map(p => 100 - p.top1_err_pct);
  const x0 = Math.min(...xs) / 1.6, x1 = Math.max(...xs) * 1.6;
  const y0 = Math.max(0, Math.floor(Math.min(...ys) - 3)), y1 = Math.min(100, Math.ceil(Math.max(...ys) + 3));
  const sx = v => L + (Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0)) * (W - L - R);
  const sy = v => T + (y1 - v) / (y1 - y0) * (H - T - B);
  const ax = svgEl("g", { class: "axis" }, svg);
  svgEl("line", { x1: L, y1: H - B, x2: W - R, y2: H - B }, ax);
  svgEl("line", { x1: L, y1: T, x2: L, y2: H - B }, ax);
  for (const t of logTicks(x0, x1)) {
    if (t < x0 || t > x1) continue;
    svgEl("line", { x1: sx(t), y1: H - B, x2: sx(t), y2: H - B + 4 }, ax);
    svgText(svg, sx(t), H - B + 16, fmt(t), { "text-anchor": "middle" });
  }
  for (let v = y0; v <= y1; v += Math.max(1, Math.round((y1 - y0) / 8))) {
    svgEl("line", { x1: L - 4, y1: sy(v), x2: L, y2: sy(v) }, ax);
    svgText(svg, L - 6, sy(v) + 4, v + "%", { "text-anchor": "end" });
  }
  svgText(svg, (W + L) / 2, H - 6, "multiply-adds (log scale)", { "text-anchor": "middle" });
  svgText(svg, 12, T + 10, "top-1 accuracy", { transform: `rotate(-90 12 ${T + 10})`, "text-anchor": "end" });
  const fams = [...new Set(pts.map(p => p.family))];
  const maxP = Math.max(...pts.map(p => p.params));
  pts.sort((a, b) => b.params - a.params);
  for (const p of pts) {
    const c = svgEl("circle", { class: "bubble", cx: sx(p.macs), cy: sy(100 - p.top1_err_pct),
      r: 3 + 22 * Math.sqrt(p.params / maxP), fill: PALETTE[fams.indexOf(p.family) % PALETTE.length],
      "data-name": p.name }, svg);
    svgEl("title", {}, c).textContent = `${p.name}: ${(100 - p.top1_err_pct).toFixed(1)}% top-1, ` +
      `${fmt(p.macs)} MACs, ${fmt(p.params)} params (${p.source || ""})`;
    c.addEventListener("click", () => onClick(p.name));
  }
  for (const p of pts) svgText(svg, sx(p.macs) + 4, sy(100 - p.top1_err_pct) - 4, p.name, { "font-size": 9, "pointer-events": "none" });
  return svg;
}

// One horizontal-ish bar per layer for a numeric key.
function barChart(host, rows, key, label, onClick) {
  const W = 380, H = 150, L = 8, B = 18, T = 16;
  const svg = svgEl("svg", { width: W, height: H, class: "bars", "data-key": key }, host);
  svgText(svg, L, 11, label, { "font-weight": 600 });
  const max = Math.max(1, ...rows.map(r => r[key]));
  const bw = (W - 2 * L) / Math.max(rows.length, 1);
  rows.forEach((r, i) => {
    const h = (H - T - B) * r[key] / max;
    const b = svgEl("rect", { x: L + i * bw, y: H - B - h, width: Math.max(bw - 1, 1), height: h,
      fill: "#2f6fdb", "data-layer": r.name }, svg);
    svgEl("title", {}, b).textContent = `${r.name}: ${fmt(r[key], 1)}`;
    if (onClick) b.addEventListener("click", () => onClick(r.name));
  });
  svgText(svg, L, H - 4, `max ${fmt(max, 1)}`, { fill: "#6b7380" });
  return svg;
}

// Training curves: series of {label, color, points: [[x, y], ...]}.
function lineChart(host, series, opts) {
  const W = opts.width || 460, H = opts.height || 240, L = 48, R = 12, T = 22, B = 32;
  const svg = svgEl("svg", { width: W, height: H, id: opts.id || "", class: "curve" }, host);
  svgText(svg, L, 14, opts.title || "", { "font-weight": 600 });
  const all = series.flatMap(s => s.points).filter(p => p[1] !== null && isFinite(p[1]));
  if (!all.length) { svgText(svg, L, H / 2, "no epochs yet"); return svg; }
  const xMax = Math.max(1, ...all.map(p => p[0])), xMin = Math.min(...all.map(p => p[0]), xMax - 1);
  let yMin = Math.min(...all.map(p => p[1])), yMax = Math.max(...all.map(p => p[1]));
  if (opts.yMin !== undefined) yMin = Math.min(yMin, opts.yMin);
  if (yMax === yMin) yMax = yMin + 1;
  const sx = v => L + (v - xMin) / Math.max(xMax - xMin, 1e-9) * (W - L - R);
  const sy = v => T + (yMax - v) / (yMax - yMin) * (H - T - B);
  const ax = svgEl("g", { class: "axis" }, svg);
  svgEl("line", { x1: L, y1: H - B, x2: W - R, y2: H - B }, ax);
  svgEl("line", { x1: L, y1: T, x2: L, y2: H - B }, ax);
  for (let i = 0; i <= 4; i++) {
    const v = yMin + (yMax - yMin) * i / 4;
    svgText(svg, L - 4, sy(v) + 4, v.toPrecision(3), { "text-anchor": "end" });
  }
  svgText(svg, L, H - B + 14, xMin, {}); svgText(svg, W - R, H - B + 14, xMax, { "text-anchor": "end" });
  svgText(svg, (W + L) / 2, H - 4, opts.xLabel || "epoch", { "text-anchor": "middle" });
  series.forEach((s, k) => {
    const pts = s.points.filter(p => p[1] !== null && isFinite(p[1]));
    if (!pts.length) return;
    svgEl("path", { d: pts.map((p, i) => (i ? "L" : "M") + sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(""),
      fill: "none", stroke: s.color, "stroke-width": 2, "data-series": s.label, "data-points": pts.length }, svg);
    for (const p of pts) svgEl("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: s.color }, svg);
    svgText(svg, W - R - 90, T + 12 + 13 * k, "— " + s.label, { fill: s.color });
  });
  return svg;
}

// The architecture, from the module tree: stages left to right, blocks inside; parallel
// branches as stacked bars, shortcuts as arcs over a block.
function diagram(host, nodes, onClick) {
  const bw = 46, gap = 14, H0 = 150;
  let x = 10;
  const items = [];
  for (const n of nodes) {
    const blocks = n.blocks.length ? n.blocks : [n];
    const w = blocks.length * (bw + 4) + (n.blocks.length ? 8 : 0);
    items.push({ n, blocks, x, w });
    x += w + gap;
  }
  const svg = svgEl("svg", { id: "diagram", width: Math.max(x, 300), height: H0 + 40 }, host);
  const maxM = Math.max(1, ...nodes.flatMap(n => (n.blocks.length ? n.blocks : [n]).map(b => b.macs)));
  for (const it of items) {
    if (it.n.blocks.length) {
      svgEl("rect", { x: it.x, y: 18, width: it.w, height: H0 - 8, fill: "#f0f4fb", stroke: "#9fb6e0", rx: 6 }, svg);
    }
    svgText(svg, it.x + 2, 12, it.n.name, { "font-size": 10, "font-weight": 600 });
    it.blocks.forEach((b, i) => {
      const bx = it.x + (it.n.blocks.length ? 4 : 0) + i * (bw + 4);
      const h = 14 + 80 * Math.sqrt(b.macs / maxM);
      const y = 30 + (96 - h) / 2 + 10;
      const g = svgEl("g", { class: "block", "data-block": b.name, cursor: "pointer" }, svg);
      svgEl("title", {}, g).textContent = `${b.name} (${b.type}): ${fmt(b.params)} params, ${fmt(b.macs)} MACs, out ${b.out_shape.join("x")}`;
      const nb = Math.max(1, b.branches.length);
      for (let k = 0; k < nb; k++) {
        svgEl("rect", { x: bx, y: y + k * h / nb, width: bw, height: h / nb - (nb > 1 ? 2 : 0),
          fill: nb > 1 ? PALETTE[k % PALETTE.length] : (b.type.includes("Pool") ? "#e39b1b" : "#2f6fdb"),
          "fill-opacity": .8, rx: 3 }, g);
      }
      if (b.shortcut) {
        svgEl("path", { d: `M${bx + 2},${y} C${bx + 8},${y - 20} ${bx + bw - 8},${y - 20} ${bx + bw - 2},${y}`,
          fill: "none", stroke: b.projection ? "#d9534f" : "#3a9d5d", "stroke-width": 1.6 }, g);
      }
      svgText(g, bx + bw / 2, H0 + 8 + (i % 2) * 11, b.name.split(".").pop().slice(0, 9), { "text-anchor": "middle", "font-size": 9 });
      g.addEventListener("click", () => onClick(b.name));
    });
  }
  svgText(svg, 10, H0 + 34, "height ~ √MACs · stacked colours: parallel branches · arc: shortcut (red: projection)", { fill: "#6b7380", "font-size": 10 });
  return svg;
}

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
function fmtShort(v) { return fmt(v).replace(/\.0+ /, " "); }  // 50 M, 1 G: tick and legend values

// Accuracy vs MACs (log x), area ~ params, laid out by the server (/api/zoo/charts: the same
// label rule as `cnnzoo compare --plot`): this draws it at the page's full width. Each label is
// drawn with the width the server placed it with (textLength), so no two labels touch.
function bubbleChart(host, c, rows, onClick, id = "bubble") {
  const byName = Object.fromEntries(rows.map(r => [r.name, r]));
  host.classList.add("chart-host");
  const svg = svgEl("svg", { id, class: "bubble-chart", viewBox: `0 0 ${c.width} ${c.height}`, width: "100%",
    "data-dataset": c.dataset }, host);
  const [L, T, R, B] = c.frame;
  const ax = svgEl("g", { class: "axis" }, svg);
  for (const [x, v] of c.x_ticks) {
    svgEl("line", { x1: x, y1: T, x2: x, y2: B, class: "grid" }, ax);
    svgText(ax, x, B + 16, fmtShort(v), { "text-anchor": "middle" });
  }
  for (const [y, v] of c.y_ticks) {
    svgEl("line", { x1: L, y1: y, x2: R, y2: y, class: "grid" }, ax);
    svgText(ax, L - 6, y + 4, v + "%", { "text-anchor": "end" });
  }
  svgEl("rect", { x: L, y: T, width: R - L, height: B - T, fill: "none", class: "frame" }, ax);
  svgText(ax, (L + R) / 2, B + 34, "multiply-adds per image (log scale)", { "text-anchor": "middle" });
  svgText(ax, 16, (T + B) / 2, `top-1 accuracy (%, ${c.dataset})`,
    { transform: `rotate(-90 16 ${(T + B) / 2})`, "text-anchor": "middle" });
  const leaders = svgEl("g", { class: "leaders" }, svg);
  for (const l of c.labels) if (l.leader) svgEl("line", { x1: l.leader[0], y1: l.leader[1], x2: l.leader[2], y2: l.leader[3] }, leaders);
  const tip = document.createElement("div");
  tip.className = "chart-tip";
  tip.id = id + "-tip";
  host.appendChild(tip);
  const labelOf = {};
  for (const b of c.bubbles) {
    const p = byName[b.name];
    const circle = svgEl("circle", { class: "bubble", cx: b.x, cy: b.y, r: b.r, fill: PALETTE[b.family % PALETTE.length],
      "data-name": b.name, "aria-label": b.name }, svg);
    circle.addEventListener("click", () => onClick(b.name));
    circle.addEventListener("mouseenter", () => {
      tip.innerHTML = "";
      const lines = [[p.name, "b"], [`${p.family} · ${p.year}`], [`top-1 ${(100 - p.top1_err_pct).toFixed(1)}%` +
        (p.top5_err_pct !== null ? ` · top-5 err ${p.top5_err_pct}%` : "")],
        [`${fmt(p.macs)} MACs · ${fmt(p.params)} params`], [`input ${p.input_size.join("x")} · ${p.source || ""}`]];
      for (const [text, tag] of lines) { const e = document.createElement(tag || "div"); e.textContent = text; tip.appendChild(e); }
      const box = svg.getBoundingClientRect(), k = box.width / c.width;
      // beside the bubble, on the side away from the crowded upper right
      tip.style.left = (b.x > c.width / 2 ? Math.max(b.x * k - (b.r * k + 250), 0) : b.x * k + b.r * k + 14) + "px";
      tip.style.top = Math.max(b.y * k - 20, 0) + "px";
      tip.classList.add("shown");
      if (labelOf[b.name]) labelOf[b.name].classList.add("hi");
    });
    circle.addEventListener("mouseleave", () => { tip.classList.remove("shown"); if (labelOf[b.name]) labelOf[b.name].classList.remove("hi"); });
  }
  const labels = svgEl("g", { class: "labels" }, svg);
  for (const l of c.labels) {
    labelOf[l.name] = svgText(labels, l.x0 + l.w / 2, l.y0 + l.h - 3, l.name, { class: "label", "text-anchor": "middle",
      textLength: l.w - 2, lengthAdjust: "spacingAndGlyphs", "data-name": l.name });
  }
  legend(svg, c, R + 24, T);
  return svg;
}

// Colour: the family; area: parameters (reference bubbles at round counts).
function legend(svg, c, x, y) {
  const g = svgEl("g", { class: "legend" }, svg);
  svgText(g, x, y + 10, "family (colour)", { "font-weight": 600 });
  c.families.forEach((f, i) => {
    const e = svgEl("g", { class: "legend-family", "data-family": f }, g);
    svgEl("circle", { cx: x + 6, cy: y + 28 + 17 * i, r: 6, fill: PALETTE[i % PALETTE.length], class: "bubble-key" }, e);
    svgText(e, x + 18, y + 32 + 17 * i, f);
  });
  let yy = y + 40 + 17 * c.families.length + 14;
  svgText(g, x, yy, "parameters (area)", { "font-weight": 600 });
  yy += 8;
  for (const [n, r] of c.sizes.slice().reverse()) {
    const e = svgEl("g", { class: "legend-size", "data-params": n }, g);
    svgEl("circle", { cx: x + 28, cy: yy + r, r, class: "bubble-key", fill: "#9aa3b0" }, e);
    svgText(e, x + 62, yy + r + 4, fmtShort(n));
    yy += 2 * r + 8;
  }
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

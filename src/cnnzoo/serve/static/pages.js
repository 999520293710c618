// The five pages. Each fetches JSON from /api and draws it; nothing is computed here.
"use strict";

// ---- Zoo -------------------------------------------------------------------------------------
const ZOO_COLS = [["name", "model"], ["family", "family"], ["year", "year"], ["params", "params"],
  ["macs", "MACs"], ["memory_bytes", "act. memory"], ["input_size", "input"], ["top1_err_pct", "top-1 err %"],
  ["top5_err_pct", "top-5 err %"], ["source", "source"]];

async function zooPage(host) {
  setStatus("loading the zoo…");
  const charts = api("/api/zoo/charts");  // laid out while the table draws
  const rows = await api("/api/zoo");
  let sortKey = "year", asc = true;
  host.append(h("h1", {}, `The zoo: ${rows.length} models`),
    h("p", { class: "muted" }, "Click a column to sort, a row or a bubble to open the model, hover a bubble for its numbers. Costs at each model's native input size."));
  // One chart per dataset: top-1 accuracy on MNIST and on ImageNet are not the same axis.
  const chartBox = h("div", { id: "zoo-charts" });
  host.append(chartBox);
  const filter = h("input", { type: "search", id: "zoo-filter", placeholder: "filter: name, family, year…" });
  const table = h("table", { id: "zoo-table" });
  host.append(h("h2", {}, "All models"), filter, h("div", { class: "scroll" }, table));
  const cell = (r, k) => k === "input_size" ? r[k].join("x") : ["params", "macs"].includes(k) ? fmt(r[k])
    : k === "memory_bytes" ? (r[k] / 2 ** 20).toFixed(2) + " MB" : r[k] === null ? "-" : r[k];
  function draw() {
    const q = filter.value.trim().toLowerCase();
    const shown = rows.filter(r => !q || [r.name, r.family, r.year, r.description].join(" ").toLowerCase().includes(q));
    shown.sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      const c = x === null ? 1 : y === null ? -1 : (typeof x === "string" ? x.localeCompare(y) : (x > y) - (x < y));
      return asc || x === null || y === null ? c : -c;
    });
    table.innerHTML = "";
    table.append(h("tr", {}, ZOO_COLS.map(([k, label]) => h("th", {
      "data-key": k, class: (k === sortKey ? "sorted" + (asc ? " asc" : "") : "") + (["name", "family", "source"].includes(k) ? " l" : ""),
      onclick: () => { asc = sortKey === k ? !asc : true; sortKey = k; draw(); } }, label))));
    for (const r of shown) {
      table.append(h("tr", { class: "clickable", "data-name": r.name, onclick: () => go(`#/model/${encodeURIComponent(r.name)}`) },
        ZOO_COLS.map(([k]) => h("td", { class: ["name", "family", "source"].includes(k) ? "l" : "" }, String(cell(r, k))))));
    }
  }
  filter.addEventListener("input", draw);
  draw();
  performance.mark("zoo-table");  // the browser test reads when the table first painted
  setStatus("laying out the charts…");
  (await charts).forEach((c, i) => {
    const card = h("div", { class: "card" }, h("h3", {}, `${c.dataset}: published top-1 accuracy vs multiply-adds`));
    chartBox.append(card);
    bubbleChart(card, c, rows, name => go(`#/model/${encodeURIComponent(name)}`), i === 0 ? "bubble" : `bubble-${c.dataset}`);
  });
}

// ---- Model -----------------------------------------------------------------------------------
const KIND_HIDDEN = ["act", "dropout", "identity"];
function dims(v) { return v === null || v === undefined ? "" : Array.isArray(v) ? (new Set(v).size === 1 ? String(v[0]) : v.join("x")) : String(v); }

async function modelPage(host, name, params) {
  const input = params.get("input");
  setStatus(`analyzing ${name}…`);
  const d = await api(`/api/models/${encodeURIComponent(name)}` + (input ? `?input=${encodeURIComponent(input)}` : ""));
  const info = d.info, p = info.paper;
  host.append(h("h1", { id: "model-title" }, name), h("p", {}, `${info.family} · ${info.description}`),
    h("p", {}, h("a", { href: p.url, target: "_blank" }, p.title), ` — ${p.authors}, ${p.year}`));
  const size = h("input", { type: "text", id: "input-size", value: d.input_size.join("x"), size: 12 });
  const apply = () => go(`#/model/${encodeURIComponent(name)}?input=${encodeURIComponent(size.value)}`);
  size.addEventListener("keydown", e => { if (e.key === "Enter") apply(); });
  const t = d.totals;
  host.append(h("div", { class: "card totals", id: "totals" },
    h("label", {}, "input C×H×W ", size), " ", h("button", { id: "input-apply", onclick: apply }, "recompute"), " ",
    h("span", {}, "params ", h("b", { id: "total-params" }, t.params.toLocaleString())),
    h("span", {}, "MACs ", h("b", { id: "total-macs" }, t.macs.toLocaleString()), ` (${fmt(t.macs)})`),
    h("span", {}, "FLOPs ", h("b", {}, fmt(t.flops))),
    h("span", {}, "activation memory ", h("b", { id: "total-memory" }, (t.memory_bytes / 2 ** 20).toFixed(2) + " MB"))));
  if (info.published.length) {
    host.append(h("h2", {}, "Published"), h("ul", {}, info.published.map(q =>
      h("li", {}, `${q.source}: ` + [q.top1_err_pct !== null ? `top-1 err ${q.top1_err_pct}%` : null, q.top5_err_pct !== null ? `top-5 err ${q.top5_err_pct}%` : null,
        q.params ? `${fmt(q.params)} params` : null, q.macs ? `${fmt(q.macs)} MACs` : null, q.dataset].filter(Boolean).join(", ")))));
  }
  if (d.doc) host.append(h("h2", {}, "Notes and departures from the paper"), h("pre", { id: "model-doc" }, d.doc));
  if (d.disagreements && d.disagreements.length) {
    host.append(h("h2", {}, "Where the lecture notes disagree with their own rules"), h("ul", { id: "disagreements" },
      d.disagreements.map(x => h("li", {}, h("b", {}, x.where), `: printed ${x.printed}, the rule gives ${x.rule}. ${x.arithmetic}`))));
  }
  host.append(h("h2", {}, "Architecture (from the module tree)"));
  const diag = h("div", { class: "card scroll", style: "max-height:none" });
  host.append(diag);
  const explainBox = h("pre", { id: "explain" }, "Click a layer row to see its arithmetic (the same text as `cnnzoo summary " + name + " --explain LAYER`).");
  async function explainLayer(layer) {
    document.querySelectorAll("#layer-table tr.selected").forEach(r => r.classList.remove("selected"));
    const row = document.querySelector(`#layer-table tr[data-layer="${CSS.escape(layer)}"]`);
    if (row) row.classList.add("selected");
    try {
      const e = await api(`/api/models/${encodeURIComponent(name)}/explain?layer=${encodeURIComponent(layer)}&input=${d.input_size.join("x")}`);
      explainBox.textContent = e.text;
    } catch (err) { explainBox.textContent = String(err.message); }
  }
  diagram(diag, d.diagram, b => {
    const first = d.rows.find(r => r.name === b || r.name.startsWith(b + "."));
    if (first) explainLayer(first.name);
  });
  const rows = d.rows.filter(r => !KIND_HIDDEN.includes(r.kind));
  host.append(h("h2", {}, "Per layer"), h("div", { class: "row" },
    ...[["memory", "memory (bytes)"], ["params", "params"], ["macs", "MACs"]].map(([k, l]) => {
      const c = h("div", { class: "card" }); barChart(c, rows, k, l, explainLayer); return c; })));
  const table = h("table", { id: "layer-table" });
  table.append(h("tr", {}, ["layer", "type", "in C", "in H/W", "filters", "kernel", "stride", "pad", "out C", "out H/W",
    "memory (KB)", "params (k)", "MACs (M)", "RF", "eff. stride"].map((x, i) => h("th", { class: i < 2 ? "l" : "" }, x))));
  for (const r of d.rows) {
    const hidden = KIND_HIDDEN.includes(r.kind);
    table.append(h("tr", { class: "clickable" + (hidden ? " hidden-kind" : ""), "data-layer": r.name, onclick: () => explainLayer(r.name) },
      h("td", {}, r.name), h("td", { class: "l" }, r.type), h("td", {}, dims(r.in_shape[0])), h("td", {}, dims(r.in_shape.slice(1))),
      h("td", {}, dims(r.filters)), h("td", {}, dims(r.kernel)), h("td", {}, dims(r.stride)), h("td", {}, dims(r.pad)),
      h("td", {}, dims(r.out_shape[0])), h("td", {}, dims(r.out_shape.slice(1))), h("td", {}, (r.memory / 1024).toLocaleString(undefined, { maximumFractionDigits: 1 })),
      h("td", {}, (r.params / 1000).toLocaleString(undefined, { maximumFractionDigits: 1 })),
      h("td", {}, (r.macs / 1e6).toLocaleString(undefined, { maximumFractionDigits: 1 })), h("td", {}, dims(r.rf)), h("td", {}, dims(r.eff_stride))));
  }
  table.append(h("tr", { class: "total" }, h("td", {}, "total"), ...Array(9).fill(0).map(() => h("td")),
    h("td", {}, (t.memory_bytes / 1024).toLocaleString(undefined, { maximumFractionDigits: 1 })),
    h("td", {}, (t.params / 1000).toLocaleString(undefined, { maximumFractionDigits: 1 })),
    h("td", {}, (t.macs / 1e6).toLocaleString(undefined, { maximumFractionDigits: 1 })), h("td"), h("td")));
  host.append(h("div", { class: "row" }, h("div", { class: "scroll" }, table), h("div", { style: "flex:1;min-width:360px" }, h("b", {}, "Layer arithmetic"), explainBox)));
  const stages = h("table", { id: "stage-table" });
  stages.append(h("tr", {}, ["stage / block", "type", "layers", "out", "memory (KB)", "params (k)", "MACs (M)"].map(x => h("th", {}, x))));
  for (const s of d.stages) stages.append(h("tr", {}, h("td", {}, s.name), h("td", { class: "l" }, s.type), h("td", {}, s.n_layers),
    h("td", {}, s.out_shape.join("x")), h("td", {}, (s.memory / 1024).toFixed(1)), h("td", {}, (s.params / 1000).toFixed(1)), h("td", {}, (s.macs / 1e6).toFixed(1))));
  host.append(h("h2", {}, "Per stage (cnnzoo summary --depth 1)"), stages);
}

// ---- Compare ---------------------------------------------------------------------------------
async function comparePage(host, _arg, params) {
  const names = (params.get("models") || "alexnet,vgg16,googlenet,resnet50").split(",").filter(Boolean);
  const box = h("input", { type: "text", id: "compare-models", value: names.join(","), size: 50 });
  const run = () => go(`#/compare?models=${encodeURIComponent(box.value.replace(/\s+/g, ""))}`);
  box.addEventListener("keydown", e => { if (e.key === "Enter") run(); });
  host.append(h("h1", {}, "Compare"), h("p", {}, "two to six models, comma-separated: ", box, " ", h("button", { id: "compare-go", onclick: run }, "compare")));
  setStatus("analyzing…");
  const items = await api(`/api/compare?models=${encodeURIComponent(names.join(","))}`);
  const table = h("table", { id: "compare-table" });
  const line = (label, f) => h("tr", {}, h("td", {}, label), items.map(i => h("td", {}, f(i))));
  table.append(h("tr", {}, h("th", {}, ""), items.map(i => h("th", {}, h("a", { href: `#/model/${i.name}` }, i.name)))),
    line("family", i => i.family), line("year", i => String(i.year)), line("input", i => i.input_size.join("x")),
    line("params", i => i.params.toLocaleString()), line("MACs", i => fmt(i.macs)),
    line("activation memory", i => (i.memory_bytes / 2 ** 20).toFixed(2) + " MB"),
    line("top-1 err (%)", i => i.top1_err_pct === null ? "-" : String(i.top1_err_pct)), line("top-5 err (%)", i => i.top5_err_pct === null ? "-" : String(i.top5_err_pct)));
  host.append(table, h("h2", {}, "MACs per stage"));
  const wrap = h("div", { class: "row" });
  host.append(wrap);
  for (const i of items) { const c = h("div", { class: "card" }); barChart(c, i.stages, "macs", `${i.name}: MACs per stage`); wrap.append(c); }
}

// ---- Runs ------------------------------------------------------------------------------------
async function runsPage(host, name) {
  const list = await api("/api/runs");
  host.append(h("h1", {}, "Runs"), h("p", { class: "muted" }, `from ${list.runs_dir}`));
  const ul = h("ul", { class: "plain", id: "run-list" });
  for (const r of list.runs) ul.append(h("li", { "data-run": r.name, class: r.name === name ? "selected" : "", onclick: () => go(`#/runs/${encodeURIComponent(r.name)}`) },
    h("b", {}, r.name), r.error ? h("span", { class: "bad" }, ` · unreadable: ${r.error}`)
      : ` · ${r.model || "?"} · ${r.epochs} epochs` + (r.last && r.last.test_acc != null ? ` · test ${(100 * r.last.test_acc).toFixed(1)}%` : "")));
  if (!list.runs.length) ul.append(h("li", {}, "no runs yet: `cnnzoo train lenet5 --out runs/first`"));
  const detail = h("div", { id: "run-detail", style: "flex:1" });
  host.append(h("div", { class: "row" }, h("div", { class: "card", style: "min-width:260px" }, ul), detail));
  if (!name) return;
  async function refresh() {
    const d = await api(`/api/runs/${encodeURIComponent(name)}`);
    detail.innerHTML = "";
    const m = d.metrics;
    detail.append(h("h2", {}, name), h("p", { id: "run-epochs" }, `${m.length} epochs logged` + (d.record ? ` · ${d.record.model} on ${d.record.data}` : " · training (no model file yet)")));
    const charts = h("div", { class: "row" });
    detail.append(charts);
    lineChart(charts, [{ label: "train", color: "#2f6fdb", points: m.map(r => [r.epoch, r.train_loss]) },
      { label: "test", color: "#d9534f", points: m.map(r => [r.epoch, r.test_loss]) }], { title: "loss", id: "curve" });
    lineChart(charts, [{ label: "train", color: "#2f6fdb", points: m.map(r => [r.epoch, r.train_acc === null ? null : 100 * r.train_acc]) },
      { label: "test", color: "#d9534f", points: m.map(r => [r.epoch, r.test_acc === null ? null : 100 * r.test_acc]) }], { title: "top-1 accuracy (%)", id: "curve-acc" });
    if (d.record && d.record.metrics) detail.append(h("h2", {}, "Kept model"), h("pre", {}, JSON.stringify(d.record.metrics, null, 1)));
    if (d.figures.length) {
      detail.append(h("h2", {}, "Figures"));
      for (const f of d.figures) detail.append(h("div", {}, h("p", { class: "muted" }, f),
        h("img", { class: "fig", src: `/api/runs/${encodeURIComponent(name)}/figure/${f}?t=${Date.now()}` })));
    }
  }
  await refresh();
  pollTimer = setInterval(() => refresh().catch(() => {}), 2000);  // curves grow while a run trains
}

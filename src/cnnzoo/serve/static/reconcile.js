// Reconcile (#/reconcile/NAME?input=CxHxW&counters=a,b): cnnzoo beside torchvision's _ops, the paper and the
// installed counters, each difference a named rule. Own model (#/own?name=tv:NAME): the per-layer
// table of a torchvision/timm architecture or an uploaded ONNX file.
"use strict";

function reconcileForm(host, name, input, target) {
  const model = h("input", { id: "rec-model", value: name || "resnet50", placeholder: "resnet50, tv:resnet18, timm:convnext_tiny" });
  const size = h("input", { id: "rec-input", value: input || "", placeholder: "CxHxW (default: native)" });
  host.append(h("form", { class: "card", onsubmit: e => { e.preventDefault();
    go(`#/${target}/${encodeURIComponent(model.value.trim())}` + (size.value.trim() ? `?input=${encodeURIComponent(size.value.trim())}` : "")); } },
    "model ", model, " input ", size, " ", h("button", { type: "submit" }, "Go")));
}

async function reconcilePage(host, name, params) {
  const input = params.get("input");
  host.append(h("h1", {}, "Why the counters disagree"),
    h("p", { class: "muted" }, "cnnzoo's multiply-adds beside torchvision's published _ops, the paper and fvcore, ptflops, thop and calflops where installed; every difference is a named rule counted on the model."));
  reconcileForm(host, name, input, "reconcile");
  if (!name) return;
  setStatus(`running the counters on ${name}… (seconds each)`);
  const q = new URLSearchParams();
  if (input) q.set("input", input);
  if (params.get("counters")) q.set("counters", params.get("counters"));  // e.g. fvcore,thop
  const d = await api(`/api/reconcile/${encodeURIComponent(name)}?${q}`);
  host.append(h("p", { id: "rec-head" }, `${d.model}, input ${d.input_size.join("x")}: cnnzoo ${fmt(d.cnnzoo.params)} params, ${d.cnnzoo.macs.toLocaleString("en")} multiply-adds`),
    h("p", { class: "muted" }, `cnnzoo counts ${d.cnnzoo.convention}.`));
  const table = h("table", { id: "rec-table" }, h("tr", {}, ["source", "params", "MACs", "rules (what it counts differently)", "unexplained MACs"].map(t => h("th", { class: "l" }, t))));
  const n = v => v === null || v === undefined ? "-" : v.toLocaleString("en");
  for (const s of d.sources) {
    const rules = s.mac_rules.concat(s.param_rules.map(r => ({ ...r, rule: "params: " + r.rule })));
    table.append(h("tr", { "data-source": s.source }, h("td", { class: "l" }, s.source), h("td", {}, n(s.params)), h("td", {}, n(s.macs)),
      h("td", { class: "l" }, s.macs === null && s.params === null ? `not run: ${s.note}`
        : h("ul", {}, rules.map(r => h("li", { title: r.what }, `${r.rule}: ${r.amount > 0 ? "+" : ""}${r.amount.toLocaleString("en")}`)))),
      h("td", { style: s.residual_macs === 0 ? null : "color:#b00;font-weight:bold" }, n(s.residual_macs))));
  }
  host.append(h("div", { class: "scroll" }, table));
}

async function ownPage(host, name, params) {
  const input = params.get("input");
  host.append(h("h1", {}, "Your own model"),
    h("p", { class: "muted" }, "A torchvision or timm architecture by name (tv:resnet50, timm:convnext_tiny; random weights, nothing downloaded) or an ONNX file: the same per-layer table, shapes and receptive fields."));
  reconcileForm(host, name || "tv:resnet18", input, "own");
  const file = h("input", { type: "file", id: "own-file", accept: ".onnx" });
  const out = h("div", { id: "own-out" });
  host.append(h("p", {}, "or an ONNX file: ", file), out);
  const show = d => {
    out.innerHTML = "";
    out.append(h("p", { id: "own-totals" }, `${d.model}, input ${d.input_size.join("x")}: ${fmt(d.totals.params)} params, ${d.totals.macs.toLocaleString("en")} multiply-adds`));
    const t = h("table", { id: "own-table" }, h("tr", {}, ["layer", "type", "in", "out", "params", "MACs", "RF"].map(x => h("th", {}, x))));
    for (const r of d.rows.filter(r => !KIND_HIDDEN.includes(r.kind)))
      t.append(h("tr", {}, h("td", { class: "l" }, r.name), h("td", { class: "l" }, r.type), h("td", {}, dims(r.in_shape)),
        h("td", {}, dims(r.out_shape)), h("td", {}, r.params.toLocaleString("en")), h("td", {}, r.macs.toLocaleString("en")), h("td", {}, dims(r.rf))));
    out.append(h("div", { class: "scroll" }, t));
  };
  file.addEventListener("change", async () => {
    out.innerHTML = "";
    try {
      setStatus("costing the ONNX file…");
      show(await api("/api/own" + (input ? `?input=${encodeURIComponent(input)}` : ""), { method: "POST", body: file.files[0] }));
    } catch (e) { showError(out, e); } finally { setStatus(""); }
  });
  if (name) {
    setStatus(`analyzing ${name}…`);
    show(await api(`/api/own?name=${encodeURIComponent(name)}` + (input ? `&input=${encodeURIComponent(input)}` : "")));
  }
}

// Convolution: watch one conv or pooling layer of any zoo model (#/conv/MODEL?layer=&input=).
// convMath is the page's one home for the output-size / params / multiply-add arithmetic; it
// follows the analyzer's rules (analysis/rules.py) and tests/test_serve_conv_browser.py checks
// it against /api/layers/formula and the analyzer's rows. Everything else is fetched.
"use strict";

function convMath(hp) {
  // hp: {op: conv|max|avg|adaptive, h, w, k:[kh,kw], s, p, d, cin, cout, groups, bias, ceil, out}
  const errors = [], notes = [], dims = [];
  const pos = (v, what) => { if (!(Number.isInteger(v) && v >= 1)) errors.push(`${what} must be a whole number ≥ 1 (got ${v}).`); };
  const size = [hp.h, hp.w], axis = ["H", "W"];
  pos(hp.h, "input height H"); pos(hp.w, "input width W"); pos(hp.cin, "input channels");
  if (hp.op === "conv") { pos(hp.cout, "output channels"); pos(hp.groups, "groups"); }
  if (hp.op === "adaptive") {
    hp.out.forEach((o, i) => pos(o, `output ${axis[i]}`));
    if (errors.length) return { errors, notes, out: null, params: null, macs: null, dims };
    let win = 1;
    for (let i = 0; i < 2; i++) {  // sum of window sizes, PyTorch's start=floor, end=ceil
      let s = 0;
      for (let o = 0; o < hp.out[i]; o++) s += Math.ceil((o + 1) * size[i] / hp.out[i]) - Math.floor(o * size[i] / hp.out[i]);
      win *= s;
    }
    notes.push("adaptive pooling picks its own window per output: no K, S, P to set.");
    return { errors, notes, out: hp.out.slice(), params: 0, macs: hp.cin * win, dims };
  }
  for (let i = 0; i < 2; i++) {
    pos(hp.k[i], `kernel ${axis[i]}`); pos(hp.s[i], `stride ${axis[i]}`); pos(hp.d[i], `dilation ${axis[i]}`);
    if (!(Number.isInteger(hp.p[i]) && hp.p[i] >= 0)) errors.push(`padding ${axis[i]} must be a whole number ≥ 0 (got ${hp.p[i]}).`);
  }
  if (errors.length) return { errors, notes, out: null, params: null, macs: null, dims };
  if (hp.op === "conv" && hp.cin % hp.groups) errors.push(`groups = ${hp.groups} does not divide the ${hp.cin} input channels: each group needs the same number of inputs.`);
  if (hp.op === "conv" && hp.cout % hp.groups) errors.push(`groups = ${hp.groups} does not divide the ${hp.cout} output channels: each group needs the same number of filters.`);
  const out = [];
  for (let i = 0; i < 2; i++) {
    const X = size[i], K = hp.k[i], S = hp.s[i], P = hp.p[i], D = hp.d[i];
    const keff = D * (K - 1) + 1, num = X + 2 * P - keff;
    const lim = hp.op === "avg" ? K : keff;
    if (hp.op !== "conv" && 2 * P > lim) errors.push(`padding ${P} is more than half the ${axis[i]} window (${lim}): PyTorch's pooling allows at most ${Math.floor(lim / 2)}, else a window could see padding only.`);
    if (num < 0) { errors.push(`the ${axis[i]} kernel${D > 1 ? ` (dilated: ${D}·(${K}−1)+1 = ${keff})` : ""} is ${keff} wide but the padded input is only ${X} + 2·${P} = ${X + 2 * P}: no window fits.`); out.push(null); continue; }
    let o = (hp.ceil ? Math.ceil(num / S) : Math.floor(num / S)) + 1;
    if (hp.ceil && (o - 1) * S >= X + P) o -= 1;  // the last window must start inside the input or the left padding
    if (num % S) {
      const left = num - Math.floor(num / S) * S;
      const head = `${axis[i]}: ${X} − ${keff} + 2·${P} = ${num} is not a multiple of the stride ${S} (${num} / ${S} = ${(num / S).toFixed(2)})`;
      notes.push(hp.ceil ? `${head}; ceil mode rounds up to ${o - 1} + 1 = ${o}: the last window hangs over the edge.`
        : `${head}; PyTorch floors it to ${Math.floor(num / S)} + 1 = ${o}: the last ${left} row${left > 1 ? "s" : ""}/column${left > 1 ? "s" : ""} of the padded input ${left > 1 ? "are" : "is"} never read.`);
    }
    out.push(o);
    dims.push({ axis: axis[i], X, K, keff, S, P, D, num, o });
  }
  if (errors.length) return { errors, notes, out: null, params: null, macs: null, dims };
  const kk = hp.k[0] * hp.k[1];
  if (hp.op === "conv") {
    const per = hp.cin / hp.groups;
    return { errors, notes, out, dims, params: hp.cout * per * kk + (hp.bias ? hp.cout : 0), macs: hp.cout * out[0] * out[1] * per * kk };
  }
  return { errors, notes, out, dims, params: 0, macs: hp.cin * out[0] * out[1] * kk };
}

function rowHyper(r) {
  return { op: r.op, h: r.in_shape[1], w: r.in_shape[2], k: r.kernel.slice(), s: r.stride.slice(), p: r.pad.slice(), d: r.dilation.slice(),
    cin: r.cin, cout: r.cout, groups: r.groups, bias: r.bias, ceil: r.ceil_mode, out: r.out_shape.slice(1) };
}

const fmtN = v => v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US");
const pairText = v => v[0] === v[1] ? String(v[0]) : `${v[0]}x${v[1]}`;
function parsePair(text) {
  const parts = String(text).trim().split(/[x,]/).map(t => t.trim() === "" ? NaN : Number(t));
  return parts.length === 1 ? [parts[0], parts[0]] : parts.slice(0, 2);
}

function formulaLines(hp, m) {
  const lines = [];
  if (hp.op === "adaptive") lines.push(`adaptive pooling: output ${pairText(hp.out)} whatever the input (${hp.h}x${hp.w})`);
  for (const d of m.dims) {
    const K = d.D > 1 ? `${d.keff}` : `${d.K}`;
    lines.push(`${d.axis}out = (${d.axis} − K + 2P) / S + 1 = (${d.X} − ${K} + 2·${d.P}) / ${d.S} + 1 = ${d.num % d.S ? `${hp.ceil ? "⌈" : "⌊"}${(d.num / d.S).toFixed(2)}${hp.ceil ? "⌉" : "⌋"}` : d.num / d.S} + 1 = ${d.o}`
      + (d.D > 1 ? `   (dilated K = D·(K−1)+1 = ${d.D}·(${d.K}−1)+1 = ${d.keff})` : ""));
  }
  return lines;
}

function costLines(hp, m) {
  if (m.params === null) return ["–", "–"];
  const kk = `${hp.k[0]}·${hp.k[1]}`;
  if (hp.op === "conv") {
    const per = hp.groups > 1 ? `${hp.cin}/${hp.groups}` : `${hp.cin}`;
    return [`params = Cout · (Cin/groups · Kh · Kw${hp.bias ? " + 1 bias" : ""}) = ${hp.cout} · (${per} · ${kk}${hp.bias ? " + 1" : ""}) = ${fmtN(m.params)}`,
      `multiply-adds = Cout · Hout · Wout · Cin/groups · Kh · Kw = ${hp.cout} · ${m.out[0]} · ${m.out[1]} · ${per} · ${kk} = ${fmtN(m.macs)}`];
  }
  if (hp.op === "adaptive") return ["params = 0", `multiply-adds (one per window element) = ${fmtN(m.macs)}`];
  return ["params = 0 (pooling learns nothing)", `multiply-adds (one per window element) = C · Hout · Wout · Kh · Kw = ${hp.cin} · ${m.out[0]} · ${m.out[1]} · ${kk} = ${fmtN(m.macs)}`];
}

// ---- the page --------------------------------------------------------------------------------
const IMG = 210, M = 10;  // the image canvases: side and margin (a field may reach past the image)
function loadImg(src) { return new Promise(ok => { const im = new Image(); im.onload = () => ok(im); im.onerror = () => ok(null); im.src = src; }); }
function cellSize(n, room) { return Math.max(2, Math.min(28, Math.floor(room / Math.max(n, 1)))); }
function sameGeometry(a, b) { return ["h", "w", "k", "s", "p", "d", "ceil", "op", "out"].every(k => JSON.stringify(a[k]) === JSON.stringify(b[k])); }

async function convPage(host, arg, params) {
  const models = (await api("/api/layers")).models;
  const name = arg || "alexnet";
  const input = params.get("input") || "";
  setStatus(`tracing ${name}…`);
  const d = await api(`/api/layers/${encodeURIComponent(name)}` + (input ? `?input=${encodeURIComponent(input)}` : ""));
  const layer = d.layers.find(l => l.name === params.get("layer")) || d.layers[0];
  const st = { row: layer, hp: rowHyper(layer), step: 0, timer: null, image: null, data: null, inImg: null, outImg: null, unit: null, cin: 0, cout: 0 };
  const nav = (m, l, inp) => go(`#/conv/${encodeURIComponent(m)}?layer=${encodeURIComponent(l || "")}` + (inp ? `&input=${encodeURIComponent(inp)}` : ""));
  const modelSel = h("select", { id: "conv-model", onchange: () => nav(modelSel.value, "", "") },
    models.map(m => h("option", { value: m.name, selected: m.name === name }, m.name)));
  const inputBox = h("input", { type: "text", id: "conv-input", size: 12, value: d.input_size.join("x"), onchange: () => nav(name, layer.name, inputBox.value) });
  const layerSel = h("select", { id: "conv-layer", onchange: () => nav(name, layerSel.value, input) },
    d.layers.map(l => h("option", { value: l.name, selected: l.name === layer.name },
      `${l.name} — ${l.type} ${pairText(l.kernel)}/${pairText(l.stride)}, ${l.in_shape.join("x")} → ${l.out_shape.join("x")}`)));
  const draw = h("canvas", { id: "conv-draw", width: 112, height: 112, title: "draw a digit" });
  const file = h("input", { type: "file", id: "conv-upload", accept: "image/*" });
  host.append(h("h1", {}, "Convolution: watch one layer"),
    h("p", { class: "muted" }, "Any convolution or pooling layer of any zoo model, at any input size: the layer's real input (one channel), the kernel stepping over it with its stride and padding, the output filling in. Weights are the model's seed-0 initialisation (nothing is downloaded). Click an output cell for its receptive field on the image."),
    h("div", { class: "row conv-controls" }, h("div", {}, "model ", modelSel, " input ", inputBox, h("br"), "layer ", layerSel),
      h("div", { class: "conv-source" }, draw, h("div", { class: "muted" }, "draw a digit here (until then: a built-in 7)", h("br"), "or upload an image ", file))));
  const dctx = draw.getContext("2d");
  dctx.fillStyle = "#000"; dctx.fillRect(0, 0, 112, 112);
  let inking = false, last = null;
  const ppos = e => { const b = draw.getBoundingClientRect(); return [(e.clientX - b.left) * 112 / b.width, (e.clientY - b.top) * 112 / b.height]; };
  draw.addEventListener("pointerdown", e => { inking = true; last = ppos(e); });
  draw.addEventListener("pointermove", e => {
    if (!inking) return;
    const p = ppos(e);
    dctx.strokeStyle = "#fff"; dctx.lineWidth = 9; dctx.lineCap = "round";
    dctx.beginPath(); dctx.moveTo(last[0], last[1]); dctx.lineTo(p[0], p[1]); dctx.stroke(); last = p;
  });
  const endInk = () => { if (inking) { inking = false; st.image = { pixels: sampleDigit(draw) }; load(); } };
  draw.addEventListener("pointerup", endInk); draw.addEventListener("pointerleave", endInk);
  file.addEventListener("change", () => { if (file.files.length) { st.image = file.files[0]; load(); } });

  const inCv = h("canvas", { id: "conv-in" }), outCv = h("canvas", { id: "conv-out" }), imgCv = h("canvas", { id: "conv-image", width: IMG, height: IMG });
  const erfCv = h("canvas", { id: "conv-erf", width: IMG, height: IMG });
  const posText = h("div", { id: "conv-pos", class: "muted" }), kernelBox = h("div", { id: "conv-kernel" });
  const rfText = h("div", { id: "conv-rf", class: "muted" }, "click an output cell");
  const speed = h("select", { id: "conv-speed" }, [1, 4, 16, 64].map(v => h("option", { value: v }, `${v} step${v > 1 ? "s" : ""} a tick`)));
  const play = h("button", { id: "conv-play", onclick: () => toggle() }, "play");
  const chIn = h("input", { type: "number", id: "conv-cin", min: 0, value: 0, style: "width:60px", onchange: () => { st.cin = +chIn.value; load(); } });
  const chOut = h("input", { type: "number", id: "conv-cout", min: 0, value: 0, style: "width:60px", onchange: () => { st.cout = +chOut.value; load(); } });
  host.append(h("p", {}, h("button", { id: "conv-reset", class: "plain", onclick: () => setStep(0) }, "reset"), " ",
    h("button", { id: "conv-step", class: "plain", onclick: () => setStep(st.step + 1) }, "step ▶"), " ", play, " ", speed,
    "  input channel ", chIn, " output channel ", chOut),
  posText,
  h("div", { class: "row conv-stage" },
    h("div", { class: "card" }, h("b", {}, "layer input (padded)"), h("br"), inCv),
    h("div", { class: "card" }, h("b", {}, "layer output (click a cell)"), h("br"), outCv, kernelBox),
    h("div", { class: "card" }, h("b", {}, "receptive field on the input · effective (|∂unit/∂pixel|)"), h("br"),
      h("div", { class: "row conv-pair" }, imgCv, erfCv), rfText)));

  const formula = h("pre", { id: "conv-formula" }), params_ = h("div", { id: "conv-params" }), macs = h("div", { id: "conv-macs" });
  const invalid = h("ul", { id: "conv-invalid", class: "conv-invalid" }), notes = h("ul", { id: "conv-notes", class: "muted" });
  const analyzer = h("div", { id: "conv-analyzer", class: "muted" },
    `the analyzer's row for ${layer.name}: output ${layer.out_shape.join("x")}, params ${fmtN(layer.params)}, multiply-adds ${fmtN(layer.macs)}, receptive field ${pairText(layer.rf)}, effective stride ${pairText(layer.eff_stride)}`);
  const fields = [["h", "input H"], ["w", "input W"], ["k", "kernel"], ["s", "stride"], ["p", "padding"], ["d", "dilation"],
    ["cin", layer.op === "conv" ? "channels in" : "channels"], ["cout", "channels out"], ["groups", "groups"], ["out", "output HxW"]]
    .filter(([k]) => layer.op === "conv" ? k !== "out" : layer.op === "adaptive" ? ["h", "w", "cin", "out"].includes(k)
      : !["cout", "groups", "out"].includes(k) && (k !== "d" || layer.op === "max"));
  const boxes = {};
  const hpRow = h("div", { class: "conv-hp", id: "conv-hp" }, fields.map(([k, label]) => h("label", {}, label + " ",
    boxes[k] = h("input", { type: "text", id: `hp-${k}`, size: 5, oninput: () => readPanel() }))));
  if (layer.op === "conv") hpRow.append(h("label", {}, boxes.bias = h("input", { type: "checkbox", id: "hp-bias", onchange: () => readPanel() }), " bias"));
  if (layer.op === "max" || layer.op === "avg") hpRow.append(h("label", {}, boxes.ceil = h("input", { type: "checkbox", id: "hp-ceil", onchange: () => readPanel() }), " ceil mode"));
  hpRow.append(h("button", { class: "plain", id: "hp-reset", onclick: () => { fillPanel(rowHyper(layer)); readPanel(); } }, "the layer's values"));
  host.append(h("h2", {}, "Hyper-parameters: change one, the numbers follow"), hpRow,
    h("div", { class: "row" }, h("div", { class: "card conv-math" }, formula, params_, macs, invalid, notes, analyzer)));

  function fillPanel(hp) {
    for (const [k, el] of Object.entries(boxes)) {
      if (el.type === "checkbox") el.checked = k === "bias" ? hp.bias : hp.ceil;
      else el.value = Array.isArray(hp[k]) ? pairText(hp[k]) : hp[k];
    }
  }
  function readPanel() {
    const hp = rowHyper(layer), num = v => v.trim() === "" ? NaN : Number(v);
    for (const [k, el] of Object.entries(boxes)) {
      if (el.type === "checkbox") hp[k === "bias" ? "bias" : "ceil"] = el.checked;
      else hp[k] = ["k", "s", "p", "d", "out"].includes(k) ? parsePair(el.value) : num(el.value);
    }
    if (layer.op !== "conv") hp.cout = hp.cin;
    st.hp = hp;
    recompute();
  }
  function recompute() {
    const m = convMath(st.hp);
    st.m = m;
    formula.textContent = formulaLines(st.hp, m).join("\n") || "–";
    const [pl, ml] = costLines(st.hp, m);
    params_.textContent = pl; macs.textContent = ml;
    params_.dataset.value = m.params ?? ""; macs.dataset.value = m.macs ?? "";
    formula.dataset.out = m.out ? m.out.join("x") : "";
    invalid.innerHTML = ""; notes.innerHTML = "";
    m.errors.forEach(e => invalid.append(h("li", {}, e)));
    m.notes.forEach(n => notes.append(h("li", {}, n)));
    invalid.dataset.count = m.errors.length;
    stop(); setStep(0);
  }

  async function load() {
    stop();
    setStatus(`running ${name} up to ${layer.name}…`);
    const q = `layer=${encodeURIComponent(layer.name)}&cin=${st.cin}&cout=${st.cout}` + (input ? `&input=${encodeURIComponent(input)}` : "");
    try {
      st.data = await api(`/api/layers/${encodeURIComponent(name)}/watch?${q}`, body());
      [st.inImg, st.outImg, st.image_] = await Promise.all([loadImg(st.data.in_map.png), loadImg(st.data.out_map.png), loadImg(st.data.image)]);
      chIn.max = st.data.in_map.shape[0] - 1; chOut.max = st.data.out_map.shape[0] - 1;
      showKernel(st.data.kernel);
    } catch (e) { st.data = null; showError(posText, e); } finally { setStatus(""); }
    st.unit = null; erfCv.getContext("2d").clearRect(0, 0, IMG, IMG); delete erfCv.dataset.drawn; rfText.textContent = "click an output cell";
    drawImage(); setStep(0);
    host.dataset.loads = (+host.dataset.loads || 0) + 1;  // for tests: a new input has arrived
  }
  function showKernel(k) {  // the weights of output channel cout on input channel cin
    kernelBox.innerHTML = "";
    if (!k || k.length > 7 || k[0].length > 7) return;
    const top = Math.max(...k.flat().map(Math.abs)) || 1;
    kernelBox.append(h("div", { class: "muted" }, `its weights on channel ${st.cin} (seed-0 initialisation)`),
      h("table", { class: "conv-kernel" }, k.map(row => h("tr", {}, row.map(v => h("td", {
        style: `background: ${v >= 0 ? "rgba(47,111,219," : "rgba(211,47,47,"}${(Math.abs(v) / top * 0.6).toFixed(2)})` }, v.toFixed(2)))))));
  }
  function body() {
    if (!st.image) return { method: "POST" };
    if (st.image instanceof Blob) return { method: "POST", body: st.image };
    return { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(st.image) };
  }
  function geom() {
    const hp = st.hp, m = st.m;
    if (!m || !m.out || hp.op === "adaptive") return null;
    return { H: hp.h, W: hp.w, P: hp.p, S: hp.s, K: hp.k, D: hp.d, oh: m.out[0], ow: m.out[1] };
  }
  function setStep(i) {
    const g = geom(), n = g ? g.oh * g.ow : 0;
    st.step = Math.max(0, Math.min(i, n));
    posText.dataset.step = st.step; posText.dataset.total = n;
    if (!g) { posText.textContent = st.hp.op === "adaptive" ? "adaptive pooling: no fixed window to step" : "fix the hyper-parameters to step the kernel"; drawIn(null); drawOut(null); return; }
    const cur = Math.min(st.step, n - 1), oy = Math.floor(cur / g.ow), ox = cur % g.ow;
    const y0 = oy * g.S[0] - g.P[0], x0 = ox * g.S[1] - g.P[1];
    posText.textContent = `step ${st.step} of ${n}: output (${oy}, ${ox}) reads input rows ${y0}..${y0 + g.D[0] * (g.K[0] - 1)}, columns ${x0}..${x0 + g.D[1] * (g.K[1] - 1)} (negative or past ${g.H - 1}/${g.W - 1}: padding)`;
    drawIn(g, oy, ox); drawOut(g);
  }
  function drawIn(g, oy, ox) {
    const ctx = inCv.getContext("2d");
    if (!g) { inCv.width = 10; inCv.height = 10; return; }
    const Hp = g.H + 2 * g.P[0], Wp = g.W + 2 * g.P[1], cs = cellSize(Math.max(Hp, Wp), 330);
    inCv.width = Wp * cs; inCv.height = Hp * cs;
    ctx.fillStyle = "#dfe3ea"; ctx.fillRect(0, 0, inCv.width, inCv.height);
    const real = st.data && st.inImg && st.data.in_map.shape[1] === g.H && st.data.in_map.shape[2] === g.W;
    ctx.imageSmoothingEnabled = false;
    if (real) ctx.drawImage(st.inImg, g.P[1] * cs, g.P[0] * cs, g.W * cs, g.H * cs);
    else { ctx.fillStyle = "#fff"; ctx.fillRect(g.P[1] * cs, g.P[0] * cs, g.W * cs, g.H * cs); }
    if (cs >= 5) {
      ctx.strokeStyle = "rgba(0,0,0,.12)"; ctx.lineWidth = 1; ctx.beginPath();
      for (let y = 0; y <= Hp; y++) { ctx.moveTo(0, y * cs + .5); ctx.lineTo(Wp * cs, y * cs + .5); }
      for (let x = 0; x <= Wp; x++) { ctx.moveTo(x * cs + .5, 0); ctx.lineTo(x * cs + .5, Hp * cs); }
      ctx.stroke();
    }
    ctx.strokeStyle = "#1d2430"; ctx.setLineDash([4, 3]); ctx.strokeRect(g.P[1] * cs + .5, g.P[0] * cs + .5, g.W * cs, g.H * cs); ctx.setLineDash([]);
    const top = oy * g.S[0], left = ox * g.S[1], kh = g.D[0] * (g.K[0] - 1) + 1, kw = g.D[1] * (g.K[1] - 1) + 1;
    if (ox > 0 || oy > 0) {  // where the previous window was: the stride
      const pt = ox > 0 ? top : top - g.S[0], pl = ox > 0 ? left - g.S[1] : left;
      ctx.strokeStyle = "rgba(211,47,47,.35)"; ctx.setLineDash([3, 3]); ctx.strokeRect(pl * cs + .5, pt * cs + .5, kw * cs, kh * cs); ctx.setLineDash([]);
    }
    ctx.fillStyle = "rgba(211,47,47,.18)"; ctx.fillRect(left * cs, top * cs, kw * cs, kh * cs);
    if (g.D[0] > 1 || g.D[1] > 1) {  // dilation: the taps the kernel reads
      ctx.fillStyle = "rgba(211,47,47,.7)";
      for (let a = 0; a < g.K[0]; a++) for (let b = 0; b < g.K[1]; b++) ctx.fillRect((left + b * g.D[1]) * cs, (top + a * g.D[0]) * cs, cs, cs);
    }
    ctx.strokeStyle = "#d32f2f"; ctx.lineWidth = 2; ctx.strokeRect(left * cs + 1, top * cs + 1, kw * cs - 2, kh * cs - 2);
    inCv.dataset.window = `${top - g.P[0]},${left - g.P[1]},${kh},${kw}`;
  }
  function drawOut(g) {
    const ctx = outCv.getContext("2d");
    if (!g) { outCv.width = 10; outCv.height = 10; return; }
    const cs = cellSize(Math.max(g.oh, g.ow), 250);
    outCv.width = g.ow * cs; outCv.height = g.oh * cs; outCv.dataset.cell = cs;
    ctx.fillStyle = "#eef0f4"; ctx.fillRect(0, 0, outCv.width, outCv.height);
    const real = st.data && st.outImg && sameGeometry(st.hp, rowHyper(layer));
    const rows = Math.floor(st.step / g.ow), rest = st.step % g.ow;
    ctx.imageSmoothingEnabled = false;
    const fill = (sx, sy, w, hh) => real ? ctx.drawImage(st.outImg, sx, sy, w, hh, sx * cs, sy * cs, w * cs, hh * cs) : (ctx.fillStyle = "#9db7e8", ctx.fillRect(sx * cs, sy * cs, w * cs, hh * cs));
    if (rows) fill(0, 0, g.ow, rows);
    if (rest && rows < g.oh) fill(0, rows, rest, 1);
    if (st.step < g.oh * g.ow) { ctx.strokeStyle = "#d32f2f"; ctx.lineWidth = 2; ctx.strokeRect(rest * cs + 1, rows * cs + 1, cs - 2, cs - 2); }
    if (st.unit) { ctx.strokeStyle = "#ff9800"; ctx.lineWidth = 2; ctx.strokeRect(st.unit[1] * cs + 1, st.unit[0] * cs + 1, Math.max(cs - 2, 2), Math.max(cs - 2, 2)); }
  }
  function drawImage(box, cv) {
    const ctx = (cv || imgCv).getContext("2d"), [, H, W] = st.data ? st.data.input_size : [0, 1, 1];
    const sc = (IMG - 2 * M) / Math.max(H, W), m = M;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, IMG, IMG);
    ctx.imageSmoothingEnabled = false;
    const pic = box && box.erfImg ? box.erfImg : st.image_;
    if (pic) ctx.drawImage(pic, m, m, W * sc, H * sc);
    if (!box) return;
    const [y0, y1, x0, x1] = box.box, [cy0, cy1, cx0, cx1] = box.clipped;
    ctx.strokeStyle = "#ff9800"; ctx.setLineDash([4, 3]); ctx.lineWidth = 1;
    ctx.strokeRect(m + x0 * sc, m + y0 * sc, (x1 - x0 + 1) * sc, (y1 - y0 + 1) * sc); ctx.setLineDash([]);
    ctx.lineWidth = 2; ctx.strokeRect(m + cx0 * sc, m + cy0 * sc, (cx1 - cx0 + 1) * sc, (cy1 - cy0 + 1) * sc);
  }
  async function pick(ev) {
    const g = geom();
    if (!g || !sameGeometry(st.hp, rowHyper(layer))) { rfText.textContent = "the receptive field is the layer's own: press \"the layer's values\" first"; return; }
    const b = outCv.getBoundingClientRect(), cs = +outCv.dataset.cell;
    const x = Math.floor((ev.clientX - b.left) * outCv.width / b.width / cs), y = Math.floor((ev.clientY - b.top) * outCv.height / b.height / cs);
    st.unit = [y, x]; stop(); setStep(y * g.ow + x);
    setStatus("computing the receptive field…");
    try {
      const q = `layer=${encodeURIComponent(layer.name)}&y=${y}&x=${x}` + (input ? `&input=${encodeURIComponent(input)}` : "");
      const r = await api(`/api/layers/${encodeURIComponent(name)}/unit?${q}`, body());
      drawImage(r); r.erfImg = await loadImg(r.erf.png); drawImage(r, erfCv); erfCv.dataset.drawn = "1";
      rfText.textContent = `unit (${y}, ${x}) sees rows ${r.box[0]}..${r.box[1]}, columns ${r.box[2]}..${r.box[3]} (${pairText(r.rf)} pixels; inside the image: ${r.clipped[0]}..${r.clipped[1]} × ${r.clipped[2]}..${r.clipped[3]})`;
      rfText.dataset.box = r.box.join(","); rfText.dataset.clipped = r.clipped.join(",");
    } catch (e) { rfText.textContent = String(e.message || e); } finally { setStatus(""); }
  }
  outCv.addEventListener("click", pick);
  function stop() { if (st.timer) { clearInterval(st.timer); st.timer = null; play.textContent = "play"; } }
  function toggle() {
    if (st.timer) { stop(); return; }
    const g = geom(); if (!g) return;
    if (st.step >= g.oh * g.ow) setStep(0);
    play.textContent = "pause";
    st.timer = setInterval(() => { setStep(st.step + Number(speed.value)); if (st.step >= g.oh * g.ow) stop(); }, 60);
  }
  fillPanel(st.hp); readPanel();
  await load();
  window.addEventListener("hashchange", stop, { once: true });
}
window.convMath = convMath; window.rowHyper = rowHyper;

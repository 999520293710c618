// Playground: draw a digit for LeNet-5 (live), or upload an image to a trained run's model.
"use strict";

function sampleDigit(canvas) {
  // MNIST style: the ink's bounding box scaled to fit 20x20, centred in 28x28, values 0..1.
  const ctx = canvas.getContext("2d");
  const { width: W, height: H } = canvas;
  const data = ctx.getImageData(0, 0, W, H).data;
  let x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (data[(y * W + x) * 4] > 20) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const out = Array.from({ length: 28 }, () => Array(28).fill(0));
  if (x1 < 0) return out;
  const side = Math.max(x1 - x0, y1 - y0) + 1, s = 20 / side;
  const small = document.createElement("canvas");
  small.width = 28; small.height = 28;
  const sc = small.getContext("2d");
  sc.fillStyle = "#000"; sc.fillRect(0, 0, 28, 28);
  sc.imageSmoothingEnabled = true; sc.imageSmoothingQuality = "high";
  const w = (x1 - x0 + 1) * s, hgt = (y1 - y0 + 1) * s;
  sc.drawImage(canvas, x0, y0, x1 - x0 + 1, y1 - y0 + 1, (28 - w) / 2, (28 - hgt) / 2, w, hgt);
  const px = sc.getImageData(0, 0, 28, 28).data;
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) out[y][x] = px[(y * 28 + x) * 4] / 255;
  return out;
}

function mapsRow(layer) {
  return h("div", { class: "card", "data-layer": layer.layer },
    h("b", {}, `${layer.layer} `), h("span", { class: "muted" }, `${layer.shape.join("x")}` + (layer.shown < layer.shape[0] ? `, first ${layer.shown}` : "")),
    h("div", { class: "maps" }, layer.maps.map((src, i) => h("img", { src, title: `channel ${i}`, width: 56, height: 56 }))));
}

async function playgroundPage(host) {
  host.append(h("h1", {}, "Playground"),
    h("p", { class: "muted" }, "Draw a digit: LeNet-5 (trained by cnnzoo on the embedded MNIST subset the first time, then cached) classifies it as you draw."));
  const canvas = h("canvas", { id: "draw", width: 280, height: 280 });
  const ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, 280, 280); };
  clear();
  const pred = h("div", { id: "prediction", class: "big" }, "?");
  const scores = h("table", { class: "scores", id: "scores" });
  const maps = h("div", { id: "maps" });
  host.append(h("div", { class: "row" },
    h("div", {}, canvas, h("div", {}, h("button", { id: "clear", class: "plain", onclick: () => { clear(); pred.textContent = "?"; scores.innerHTML = ""; maps.innerHTML = ""; } }, "clear"))),
    h("div", { class: "card", style: "min-width:220px" }, h("div", { class: "muted" }, "LeNet-5 says"), pred, scores),
    h("div", { style: "flex:1" }, maps)));
  let drawing = false, busy = false, again = false, last = null;
  async function classify() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      setStatus("LeNet-5 is thinking (the first time it trains itself: under a minute)…");
      const r = await api("/api/playground/lenet", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ pixels: sampleDigit(canvas) }) });
      pred.textContent = r.prediction.class;
      pred.dataset.prob = r.prediction.prob;
      scores.innerHTML = "";
      r.probs.forEach((p, i) => scores.append(h("tr", { class: String(i) === r.prediction.class ? "best" : "" },
        h("td", {}, String(i)), h("td", { class: "l" }, h("span", { class: "bar", style: `width:${Math.round(120 * p)}px` })), h("td", {}, (100 * p).toFixed(1) + "%"))));
      maps.innerHTML = "";
      r.layers.forEach(l => maps.append(mapsRow(l)));
    } catch (e) { pred.textContent = "!"; showError(maps, e); } finally { busy = false; setStatus(""); }
    if (again) { again = false; classify(); }
  }
  const pos = e => { const b = canvas.getBoundingClientRect(); return [(e.clientX - b.left) * 280 / b.width, (e.clientY - b.top) * 280 / b.height]; };
  canvas.addEventListener("pointerdown", e => { drawing = true; last = pos(e); canvas.setPointerCapture && canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", e => {
    if (!drawing) return;
    const p = pos(e);
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 20; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    last = p;
  });
  const stop = () => { if (drawing) { drawing = false; classify(); } };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointerleave", stop);
  await uploadSection(host);
}

async function uploadSection(host) {
  host.append(h("h2", {}, "Upload an image to a trained model"));
  const list = await api("/api/runs");
  const withModel = list.runs.filter(r => r.has_model);
  if (!withModel.length) {
    host.append(h("p", { class: "muted", id: "upload-none" }, `No run with a model file under ${list.runs_dir}: train one (cnnzoo train lenet5 --out runs/lenet5) and reload.`));
    return;
  }
  const select = h("select", { id: "run-select" }, withModel.map(r => h("option", { value: r.name }, `${r.name} (${r.model})`)));
  const layer = h("select", { id: "layer-select" }, h("option", { value: "" }, "first conv"));
  const file = h("input", { type: "file", id: "upload", accept: "image/*" });
  const result = h("div", { id: "upload-result" });
  async function send() {
    if (!file.files.length) return;
    result.innerHTML = "";
    setStatus("running the model…");
    try {
      const q = layer.value ? `?layer=${encodeURIComponent(layer.value)}` : "";
      const r = await api(`/api/runs/${encodeURIComponent(select.value)}/predict${q}`, { method: "POST", body: file.files[0] });
      const keep = layer.value;
      layer.innerHTML = "";
      layer.append(h("option", { value: "" }, "first conv"), ...r.layers.map(n => h("option", { value: n, selected: n === keep }, n)));
      const top = h("table", { class: "scores", id: "top5" }, r.top.map((t, i) => h("tr", { class: i ? "" : "best" },
        h("td", {}, t.class), h("td", { class: "l" }, h("span", { class: "bar", style: `width:${Math.round(120 * t.prob)}px` })), h("td", {}, (100 * t.prob).toFixed(1) + "%"))));
      result.append(h("div", { class: "row" },
        h("div", { class: "card" }, h("b", {}, "input (as the model sees it)"), h("br"), h("img", { src: r.input, class: "fig", style: "image-rendering:pixelated;width:128px" })),
        h("div", { class: "card" }, h("b", {}, "top-5"), top),
        h("div", { class: "card" }, h("b", {}, `first-layer filters (${r.filters.layer}, ${r.filters.shape.join("x")})`), h("br"), h("img", { id: "filters", src: r.filters.grid })),
        r.grad_cam && r.grad_cam.image ? h("div", { class: "card" }, h("b", {}, `Grad-CAM for "${r.top[0].class}"`), h("br"), h("img", { id: "gradcam", src: r.grad_cam.image, style: "image-rendering:pixelated;width:128px" })) : null),
        h("div", { id: "features" }, mapsRow(r.features)));
    } catch (e) { showError(result, e); } finally { setStatus(""); }
  }
  file.addEventListener("change", send);
  layer.addEventListener("change", send);
  host.append(h("p", {}, "model ", select, " image ", file, " feature maps of ", layer), result);
}

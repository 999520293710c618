// Router and fetch helper: #/zoo, #/model/NAME?input=CxHxW, #/compare?models=a,b,
// #/playground, #/runs, #/runs/NAME, #/conv/NAME?layer=&input=.
"use strict";
const main = document.getElementById("main");
let pollTimer = null;

async function api(url, opts) {
  const r = await fetch(url, opts);
  let body;
  try { body = await r.json(); } catch (e) { body = { error: `HTTP ${r.status}` }; }
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) el.appendChild(typeof k === "string" || typeof k === "number" ? document.createTextNode(String(k)) : k);
  return el;
}
function setStatus(text) { document.getElementById("status").textContent = text || ""; }
function showError(host, err) { host.appendChild(h("p", { class: "error" }, String(err.message || err))); }
function go(hash) { location.hash = hash; }

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "") || "zoo";
  const [path, query] = raw.split("?");
  const parts = path.split("/").map(decodeURIComponent);
  return { page: parts[0], arg: parts.slice(1).join("/"), params: new URLSearchParams(query || "") };
}

async function route() {
  if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  const { page, arg, params } = parseHash();
  document.querySelectorAll("header nav a").forEach(a => a.classList.toggle("active", a.dataset.page === page));
  main.innerHTML = "";
  main.dataset.page = page;
  const pages = { zoo: zooPage, model: modelPage, compare: comparePage, playground: playgroundPage, runs: runsPage,
    conv: convPage, reconcile: reconcilePage, own: ownPage };
  const fn = pages[page];
  if (!fn) { showError(main, `no page ${page}`); return; }
  try { await fn(main, arg, params); } catch (e) { showError(main, e); } finally { setStatus(""); }
  main.dataset.ready = page;
  performance.mark("ready-" + page);  // time to a drawn page, read by the browser test
}
window.addEventListener("hashchange", route);
route();

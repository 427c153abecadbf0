"use strict";
// The view's page: asks the server (/api/...) what the run is, then shows what fits its kind.
// State that is worth a link (tab, text, unit) lives in the URL's hash: #tab=read&text=...&unit=3
// body[data-busy] counts requests in flight, so a test (or a screenshot) can wait for a quiet page.

const $ = (id) => document.getElementById(id);
const S = {runs: [], run: null, info: null, limits: {}, reading: null, unit: null, values: null,
  version: null, step: null, source: null, hover: null, busy: 0, timer: null};

function hashParams() { return new URLSearchParams(location.hash.slice(1)); }
function setHash(changes) {
  const h = hashParams();
  for (const [k, v] of Object.entries(changes)) (v === null || v === "") ? h.delete(k) : h.set(k, v);
  history.replaceState(null, "", "#" + h.toString());
}

function busy(d) { S.busy += d; document.body.dataset.busy = String(S.busy); }

async function api(name, params = {}, method = "POST") {
  const run = S.run === null ? {} : {run: S.run};
  busy(1);
  try {
    let r;
    if (method === "GET") {
      r = await fetch(`/api/${name}?` + new URLSearchParams({...run, ...params}));
    } else {
      r = await fetch(`/api/${name}`, {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({...run, ...params})});
    }
    const body = await r.json();
    if (!r.ok) { const e = new Error(body.error || r.statusText); e.status = r.status; throw e; }
    return body;
  } finally { busy(-1); }
}

function message(where, text, kind = "error") {
  const box = typeof where === "string" ? $(where) : where;
  box.innerHTML = "";
  const p = document.createElement("p");
  p.className = kind; p.textContent = text;
  box.appendChild(p);
}

// ------------------------------------------------------------------ the run and its tabs
const TABS = {lm: ["read", "write"], classify: ["read"], tag: ["read"], seq2seq: ["translate", "read"],
  forecast: ["forecast"], cond: ["samples"], recognize: ["recognize"], "image-to-text": ["recognize"]};

async function init() {
  const runs = await api("runs", {}, "GET");
  S.limits = runs.limits; S.runs = runs.runs;
  const sel = $("run");
  sel.innerHTML = "";
  for (const r of runs.runs) sel.add(new Option(r.run === "." ? r.folder : r.run, r.run));
  if (!runs.runs.length) {
    message("problem", `no runs under ${runs.root} yet: a run folder holds best.pt or metrics.jsonl; this page looks again every few seconds`);
    $("problem").hidden = false;
    setTimeout(init, 3000);
    return;
  }
  const want = hashParams().get("run");
  S.run = runs.runs.some((r) => r.run === want) ? want : runs.runs[0].run;
  sel.value = S.run;
  sel.onchange = () => { S.run = sel.value; setHash({run: S.run, text: null}); loadRun(); };
  $("run").parentElement.hidden = runs.runs.length < 2;
  setLimits();
  await loadRun();
}

function setLimits() {
  const L = S.limits;
  $("text").maxLength = L.text; $("prime").maxLength = L.text;
  $("length").max = L.generate; $("beam").max = L.beam; $("t-beam").max = L.beam;
  $("steps").max = L.forecast; $("n").max = L.samples; $("r-beam").max = L.beam;
}

async function loadRun() {
  S.info = null; S.reading = null; S.version = null;
  $("problem").hidden = true; $("notes").hidden = true;
  let tabs = [];
  try {
    S.info = await api("run", {}, "GET");
    S.step = S.info.step;
    tabs = TABS[S.info.kind] || [];
    describeModel();
  } catch (e) {
    message("problem", e.message); $("problem").hidden = false;
    $("model").textContent = "";
  }
  for (const b of document.querySelectorAll("#tabs button")) {
    b.hidden = b.dataset.tab !== "training" && !tabs.includes(b.dataset.tab);
    b.onclick = () => showTab(b.dataset.tab);
  }
  const asked = hashParams().get("tab");
  showTab(tabs.includes(asked) || asked === "training" ? asked : tabs[0] || "training");
  if (S.info) setupKind();
  pollTraining();
}

function describeModel() {
  const i = S.info, L = i.layers;
  let text = `${i.kind} · ${i.checkpoint}` + (i.step !== null && i.step !== undefined ? ` (step ${i.step})` : "");
  if (L) text += ` · ${L.cell} ${L.layers}×${L.hidden}` + (L.directions > 1 ? " bidirectional" : "");
  if (i.vocab && i.vocab.size) text += ` · ${i.vocab.size} ${i.vocab.kind} tokens`;
  if (i.labels && i.labels.length) text += ` · ${i.labels.length} classes`;
  if (i.tags) text += ` · ${i.tags.length} tags`;
  $("model").textContent = text;
  if (i.notes && i.notes.length) { $("notes").textContent = i.notes.join(" · "); $("notes").hidden = false; }
}

function showTab(tab) {
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + tab;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === tab);
  setHash({tab});
  if (tab === "training") drawTraining(S.lastTraining);
}

function setupKind() {
  const i = S.info, h = hashParams();
  if (i.layers) setupPicker(i.layers, h);
  $("fill").hidden = i.kind !== "lm";
  if (i.kind === "forecast") $("steps").value = Math.max(24, i.horizon);
  if (i.kind === "cond") setupConditions(i);
  if (i.input) setupUpload(i);
  const text = h.get("text");
  if (text !== null) $("text").value = text;
  if (h.get("prime") !== null) $("prime").value = h.get("prime");
  if (h.get("temperature") !== null) { $("temperature").value = h.get("temperature"); showTemperature(); }
  if (i.layers && $("text").value) readText();
  if (i.kind === "forecast") runForecast();
}

// ------------------------------------------------------------------ read: text coloured by a unit
function setupPicker(L, h) {
  const layer = $("layer"), q = $("quantity");
  layer.innerHTML = ""; q.innerHTML = "";
  for (let k = 0; k < L.layers; k++) layer.add(new Option(String(k + 1), String(k)));
  for (const name of L.quantities) q.add(new Option(QUANTITY_NAMES[name] ? `${name} (${QUANTITY_NAMES[name]})` : name, name));
  $("direction-box").hidden = L.directions < 2;
  $("unit").max = L.hidden - 1; $("unit-slider").max = L.hidden - 1;
  S.unit = {layer: +(h.get("layer") || 0), direction: +(h.get("direction") || 0),
    quantity: L.quantities.includes(h.get("quantity")) ? h.get("quantity") : (L.quantities.includes("c") ? "c" : "h"),
    unit: Math.min(+(h.get("unit") || 0), L.hidden - 1)};
  showPicker();
}

const QUANTITY_NAMES = {h: "hidden state", c: "cell state", i: "input gate", f: "forget gate",
  g: "candidate", o: "output gate", r: "reset gate", z: "update gate", n: "candidate"};

function showPicker() {
  const u = S.unit;
  $("layer").value = u.layer; $("direction").value = u.direction; $("quantity").value = u.quantity;
  $("unit").value = u.unit; $("unit-slider").value = u.unit;
}

function pickerChanged(src) {
  const unit = src === "slider" ? +$("unit-slider").value : +$("unit").value;
  S.unit = {layer: +$("layer").value, direction: +$("direction").value, quantity: $("quantity").value,
    unit: Math.max(0, Math.min(unit, S.info.layers.hidden - 1))};
  showPicker();
  setHash({layer: S.unit.layer, direction: S.unit.direction || null, quantity: S.unit.quantity, unit: S.unit.unit});
  loadUnit();
}

let readTimer = null;
function textChanged() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => { setHash({text: $("text").value.length < 1500 ? $("text").value : null}); readText(); }, 300);
}

async function readText() {
  const text = $("text").value;
  if (!text) { $("tokens").innerHTML = ""; return; }
  try {
    const reading = await api("text", {text});
    if ($("text").value !== text) return;    // typed on meanwhile: a newer reading is coming
    S.reading = reading;
    S.reading.text = text;
    drawTokens(); drawReadSummary(); drawSaturation();
    await loadUnit();
  } catch (e) {
    if ($("text").value !== text) return;
    S.reading = null; message("tokens", e.message); $("read-summary").innerHTML = "";
  }
}

function tokenLabel(t) { return t === "\n" ? "↵" : t === "<eos>" ? "↵" : t; }

function drawTokens() {
  const box = $("tokens"), r = S.reading, sep = S.info.separator;
  box.innerHTML = "";
  const unknown = new Set(r.unknown);
  r.tokens.forEach((t, i) => {
    const s = document.createElement("span");
    s.className = "tok" + (unknown.has(i) ? " unk" : "");
    s.dataset.i = i;
    s.textContent = tokenLabel(t);
    box.appendChild(s);
    if (t === "\n" || t === "<eos>") box.appendChild(document.createElement("br"));
    else if (sep) box.appendChild(document.createTextNode(sep));
  });
}

async function loadUnit() {
  if (!S.reading) return;
  const asked = {text: S.reading.text, ...S.unit};
  try {
    const values = await api("unit", asked);
    if (!S.reading || S.reading.text !== asked.text || Object.keys(S.unit).some((k) => S.unit[k] !== asked[k])) return;  // stale
    S.values = values;
    colourTokens();
  } catch (e) { message("found", e.message); }
}

function colour(v, scale, maxAbs) {
  if (v === null) return "transparent";
  if (scale === "unit") return `rgba(27, 120, 55, ${Math.max(0, Math.min(1, v)).toFixed(3)})`;
  const t = Math.max(-1, Math.min(1, v / maxAbs));
  return t >= 0 ? `rgba(214, 96, 77, ${t.toFixed(3)})` : `rgba(67, 147, 195, ${(-t).toFixed(3)})`;
}

function colourTokens() {
  const {values, scale, max_abs} = S.values;
  for (const s of document.querySelectorAll("#tokens .tok")) {
    const v = values[+s.dataset.i];
    s.style.backgroundColor = colour(v, scale, max_abs);
    s.dataset.value = v;
    s.classList.toggle("strong", Math.abs(scale === "unit" ? v : v / max_abs) > 0.65);
  }
  const u = S.unit;
  $("read-summary").dataset.unit = `${u.quantity} ${u.layer} ${u.direction} ${u.unit}`;
  if (S.hover !== null) drawDetail(S.hover);
}

function drawReadSummary() {
  const r = S.reading, box = $("read-summary");
  box.innerHTML = "";
  const lines = [];
  if (r.loss !== undefined && r.loss !== null) lines.push(`the model's loss on this text: ${r.loss.toFixed(3)} nats per token (${(r.loss / Math.LN2).toFixed(3)} bits)`);
  if (r.label) lines.push(`predicted: ${r.label} (` + r.labels.map((l, k) => `${l} ${r.probabilities[k].toFixed(3)}`).join(", ") + ")");
  if (r.words) lines.push("tagged: " + r.words.map(([w, t]) => `${w}/${t}`).join("  "));
  if (r.unknown.length) lines.push(`${r.unknown.length} token(s) outside the vocabulary, read as <unk> (underlined)`);
  for (const n of r.notes) lines.push(n);
  for (const l of lines) { const p = document.createElement("p"); p.textContent = l; box.appendChild(p); }
  const g = $("growing");
  g.innerHTML = "";
  if (r.growing) {
    linePlot(g, r.labels.map((l, k) => ({name: l, x: r.growing.ends, y: r.growing.probabilities.map((row) => row[k])})),
      {title: "class probabilities as the text grows", xlabel: "tokens read", ylabel: "probability", ymin: 0, ymax: 1, width: 520, height: 200});
  }
}

function drawDetail(i) {
  const r = S.reading, box = $("detail");
  if (!r || i >= r.tokens.length) return;
  box.innerHTML = "";
  const h = document.createElement("h4");
  h.textContent = `token ${i + 1}: “${tokenLabel(r.tokens[i])}”`;
  box.appendChild(h);
  const add = (text, cls) => { const p = document.createElement("p"); p.textContent = text; if (cls) p.className = cls; box.appendChild(p); return p; };
  if (S.values) add(`${S.unit.quantity} of unit ${S.unit.unit}, layer ${S.unit.layer + 1}: ${S.values.values[i].toFixed(3)}`, "value");
  if (r.p_token && r.p_token[i] !== null) add(`p(this token | before) = ${r.p_token[i].toFixed(4)}`);
  const bars = (pairs, title) => {
    add(title, "bars-title");
    const t = document.createElement("table"); t.className = "bars";
    for (const [tok, p] of pairs) {
      const row = t.insertRow();
      row.insertCell().textContent = tokenLabel(tok) === " " ? "␣" : tokenLabel(tok);
      const c = row.insertCell(); const b = document.createElement("span");
      b.className = "bar"; b.style.width = `${Math.round(p * 120)}px`; c.appendChild(b);
      row.insertCell().textContent = p.toFixed(3);
    }
    box.appendChild(t);
  };
  if (r.next) bars(r.next[i], "next token");
  if (r.tag_probabilities) bars(r.tag_probabilities[i], `tag: ${r.tags[i]}`);
  if (r.growing) {
    const k = r.growing.ends.findIndex((e) => e >= i + 1);
    if (k >= 0) bars(r.labels.map((l, c) => [l, r.growing.probabilities[k][c]]), `after ${r.growing.ends[k]} tokens`);
  }
  if (r.attention) add(`attention pooling weight: ${r.attention[i].toFixed(3)}`);
}

function drawSaturation() {
  const box = $("saturation"), L = S.info.layers;
  box.innerHTML = "";
  for (const ld of S.reading.saturation) {
    if (!ld.gates.length) continue;
    const name = `layer ${ld.layer + 1}` + (L.directions > 1 ? (ld.direction ? " backward" : " forward") : "");
    const groups = ld.gates.map((g) => ({name: `${g.gate}: ${(100 * g.mean_left).toFixed(0)}% / ${(100 * g.mean_right).toFixed(0)}%`,
      points: g.left.map((x, u) => [x, g.right[u]])}));
    scatterPlot(box, groups, {title: name, xlabel: "left-saturated", ylabel: "right-saturated"});
  }
}

function selectedSpan() {
  const sel = window.getSelection();
  if (!sel || sel.isCollapsed) return null;
  const idx = [];
  for (const s of document.querySelectorAll("#tokens .tok")) if (sel.containsNode(s, true)) idx.push(+s.dataset.i);
  return idx.length ? [Math.min(...idx), Math.max(...idx) + 1] : null;
}

async function findUnits() {
  const span = selectedSpan() || S.selection;
  if (!S.reading) return;
  if (!span) { message("found", "select part of the coloured text first (drag over it)", "hint"); return; }
  S.selection = span;
  try {
    const {units} = await api("correlate", {text: S.reading.text, start: span[0], end: span[1]});
    const box = $("found"); box.innerHTML = "";
    const p = document.createElement("span"); p.textContent = `units that follow tokens ${span[0] + 1}–${span[1]}: `;
    box.appendChild(p);
    for (const u of units) {
      const b = document.createElement("button");
      b.className = "unit-choice";
      b.textContent = `${u.quantity} L${u.layer + 1}${S.info.layers.directions > 1 ? (u.direction ? "←" : "→") : ""} #${u.unit} (r ${u.r.toFixed(2)})`;
      b.onclick = () => { S.unit = {layer: u.layer, direction: u.direction, quantity: u.quantity, unit: u.unit}; showPicker(); pickerChanged(); };
      box.appendChild(b);
    }
  } catch (e) { message("found", e.message); }
}

async function fillSample() {
  // an empty prime: the server starts from a line break, or the most frequent token
  const out = [];
  try {
    await streamGenerate({prime: "", length: 400, temperature: 0.6}, (d) => out.push(d.token));
  } catch (e) { message("found", e.message); return; }
  $("text").value = out.join("").trim().slice(0, S.limits.text);
  textChanged();
}

// ------------------------------------------------------------------ write: live generation
function showTemperature() { $("temperature-value").textContent = (+$("temperature").value).toFixed(2); }

// Server-sent events read through fetch (an EventSource cannot read a 4xx answer's message).
async function streamGenerate(params, onToken) {
  const ctl = new AbortController();
  S.stop = () => ctl.abort();
  busy(1);
  try {
    const r = await fetch("/api/generate?" + new URLSearchParams({run: S.run, ...params}), {signal: ctl.signal});
    if (!r.ok) throw new Error((await r.json()).error || r.statusText);
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return "the stream ended";
      buf += dec.decode(value, {stream: true});
      let k;
      while ((k = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, k); buf = buf.slice(k + 2);
        const kind = (block.match(/^event: (.*)$/m) || [])[1] || "message";
        const data = JSON.parse((block.match(/^data: (.*)$/m) || [])[1] || "{}");
        if (kind === "error") throw new Error(data.error);
        if (data.done) return data.done;
        onToken(data);
      }
    }
  } catch (e) {
    if (e.name === "AbortError") return "stopped";
    throw e;
  } finally { busy(-1); S.stop = null; }
}

async function generate() {
  const box = $("generated");
  box.innerHTML = "";
  box.dataset.done = "";
  const prime = $("prime").value;
  const params = {prime, length: $("length").value, temperature: $("temperature").value};
  if (+$("top-k").value > 0) params.top_k = $("top-k").value;
  if (+$("top-p").value < 1) params.top_p = $("top-p").value;
  if ($("seed").value !== "") params.seed = $("seed").value;
  const p = document.createElement("span"); p.className = "prime"; p.textContent = prime; box.appendChild(p);
  $("generate").disabled = true; $("stop").disabled = false;
  try {
    box.dataset.done = await streamGenerate(params, (d) => {
      if (d.token === "\n") { box.appendChild(document.createElement("br")); return; }
      const s = document.createElement("span");
      s.className = "gen"; s.textContent = d.token; s.dataset.p = d.p; s.title = `p = ${d.p}`;
      s.style.backgroundColor = `rgba(120, 60, 160, ${((1 - d.p) * 0.55).toFixed(3)})`;
      box.appendChild(s);
    });
  } catch (e) {
    const m = document.createElement("p"); m.className = "error"; m.textContent = e.message; box.appendChild(m);
    box.dataset.done = "error";
  } finally { $("generate").disabled = false; $("stop").disabled = true; }
}

async function beamSearch() {
  const box = $("beams");
  box.innerHTML = "";
  try {
    const {beams} = await api("beam", {prime: $("prime").value, beam: $("beam").value, length: Math.min(+$("length").value, S.limits.beam_length)});
    const ol = document.createElement("ol");
    for (const b of beams) { const li = document.createElement("li"); li.textContent = `${b.logp.toFixed(2)}  ${$("prime").value}${b.text}`; ol.appendChild(li); }
    box.appendChild(ol);
  } catch (e) { message(box, e.message); }
}

// ------------------------------------------------------------------ seq2seq, forecast, samples
async function translate() {
  const box = $("outputs");
  box.innerHTML = ""; $("attention").innerHTML = "";
  try {
    const r = await api("translate", {text: $("source").value, beam: $("t-beam").value});
    const ul = document.createElement("ul"); ul.className = "outputs";
    r.outputs.forEach((o, k) => {
      const li = document.createElement("li");
      li.textContent = `${o.name}${o.score !== null ? " (" + o.score.toFixed(2) + ")" : ""}: ${o.text}`;
      li.onclick = () => { for (const x of ul.children) x.classList.remove("active"); li.classList.add("active"); drawAttention(r, o); };
      ul.appendChild(li);
      if (k === 0) { li.classList.add("active"); drawAttention(r, o); }
    });
    box.appendChild(ul);
    for (const n of r.notes) { const p = document.createElement("p"); p.className = "hint"; p.textContent = n; box.appendChild(p); }
  } catch (e) { message(box, e.message); }
}

function drawAttention(r, o) {
  const box = $("attention");
  box.innerHTML = "";
  if (!o.attention) { message(box, "this model does not attend (attention none): no matrix", "hint"); return; }
  const show = (t) => (t === " " ? "␣" : t);
  heatMap(box, o.attention.weights, r.source.map(show), o.attention.target.map(show));
}

async function runForecast() {
  const box = $("forecast-plots");
  try {
    const r = await api("forecast", {steps: $("steps").value, from_end: $("from-end").checked});
    box.innerHTML = "";
    const hx = r.history[0].map((_, k) => r.start + k), fx = r.forecast[0].map((_, k) => r.origin + k);
    r.names.forEach((name, v) => {
      linePlot(box, [
        {name: "history", x: hx, y: r.history[v], color: "#555"},
        {name: "held-out truth", x: fx.slice(0, r.truth[v].length), y: r.truth[v], color: "#2ca02c"},
        {name: "forecast", x: fx, y: r.forecast[v], color: "#d62728", dash: "5 3"},
      ], {title: `${name}: forecast of ${r.forecast[v].length} steps after ${r.labels[r.origin - r.start - 1] || r.origin}`,
        xlabel: "time step", vlines: [{x: r.origin - 0.5, label: "origin"}], width: 760, height: 260,
        bands: r.intervals.slice().reverse().map((b) => ({name: `${b.level}% interval`, x: fx,
          lo: b.lo[v], hi: b.hi[v], color: "#d62728", opacity: 0.12}))});
      linePlot(box, [{name: "series", x: r.series.index, y: r.series.values[v], color: "#555", width: 1}],
        {title: `${name}: the whole series (train | validation | test)`, xlabel: "time step", width: 760, height: 160,
          vlines: [{x: r.split[0], label: "validation"}, {x: r.split[1], label: "test"}]});
    });
  } catch (e) { message(box, e.message); }
}

function setupConditions(i) {
  const sel = $("condition");
  sel.innerHTML = "";
  for (const l of i.labels) sel.add(new Option(l, l));
  sel.hidden = !i.labels.length;
  $("condition-values").hidden = !!i.labels.length;
  $("condition-values").placeholder = `${i.features} numbers`;
}

async function sample() {
  const box = $("samples");
  box.innerHTML = "";
  const condition = S.info.labels.length ? $("condition").value : $("condition-values").value;
  try {
    const r = await api("samples", {condition, n: $("n").value, temperature: $("s-temperature").value, beam: $("s-beam").checked});
    for (const s of r.samples) { const li = document.createElement("li"); li.textContent = s; box.appendChild(li); }
  } catch (e) { message(box, e.message); }
}

// ------------------------------------------------------------------ recognisers: a file read
function setupUpload(i) {
  $("upload").accept = i.suffixes.join(",");
  $("upload-hint").textContent = `a ${i.input === "image" ? "picture (" + i.suffixes.join(" ") + ")" : "WAV recording"} ` +
    `of at most ${Math.floor(i.file_limit / 1024)} KiB; the model knows the symbols ${i.alphabet}`;
  $("readings").innerHTML = ""; $("recognize-plots").innerHTML = "";
}

function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(",", 2)[1] || "");
    r.onerror = () => reject(new Error(`${file.name}: the browser could not read it`));
    r.readAsDataURL(file);
  });
}

async function recognizeFile() {
  const list = $("readings"), box = $("recognize-plots"), file = $("upload").files[0];
  list.innerHTML = ""; box.innerHTML = "";
  if (!file) { message(box, "choose a file first", "hint"); return; }
  if (file.size > S.info.file_limit) {
    message(box, `${file.name} has ${file.size.toLocaleString()} bytes; the view reads files of at most ${S.info.file_limit.toLocaleString()}`);
    return;
  }
  try {
    const r = await api("recognize", {name: file.name, file: await fileBase64(file), beam: $("r-beam").value});
    for (const t of r.texts) {
      const li = document.createElement("li");
      li.textContent = `${t.name} (${t.score.toFixed(2)}): ${t.text === "" ? "(nothing)" : t.text}`;
      list.appendChild(li);
    }
    drawInput(box, r);
    if (r.frames) drawFrames(box, r);
  } catch (e) { message(box, e.message); }
}

function drawInput(box, r) {
  const [F, T] = r.input.size, image = r.kind === "image";
  grayImage(box, r.input.rows, {title: `${r.name}: ${image ? "the image as the model reads it" : "log-mel spectrogram"} (${F} × ${T})`,
    flip: !image, invert: image, width: 760, left: r.frames ? 56 : 0, right: r.frames ? 12 : 0});   // over a plot: its margins
}

function drawFrames(box, r) {
  const f = r.frames, colours = {blank: "#999"};
  const series = f.labels.map((name, k) => ({name: name === " " ? "␣" : name, x: f.centres, y: f.probabilities[k],
    color: colours[name], dash: name === "blank" ? "3 3" : ""}));
  linePlot(box, series, {title: `p(label | frame), ${f.count} frames; the greedy path reads "${r.texts[0].text}"`,
    xlabel: r.kind === "image" ? "column" : "frame (10 ms)", ymin: 0, ymax: 1, width: 760, height: 240,
    xmin: 0, xmax: r.input.size[1]});
}

// ------------------------------------------------------------------ training, polled
async function pollTraining() {
  clearTimeout(S.timer);
  const run = S.run;
  try {
    const t = await api("training", S.version ? {version: S.version} : {}, "GET");
    if (run !== S.run) return;
    if (!t.unchanged) {
      S.version = t.version; S.lastTraining = t;
      if (!$("tab-training").hidden) drawTraining(t);
      await checkCheckpoint();
    }
  } catch (e) { message("training-status", e.message); }
  S.timer = setTimeout(pollTraining, 2000);
}

async function checkCheckpoint() {
  // a run still training writes a better best.pt now and then: show that model
  let info;
  try { info = await api("run", {}, "GET"); } catch (e) { return; }
  if (!S.info) { loadRun(); return; }
  if (info.step !== S.step) {
    S.info = info; S.step = info.step; describeModel();
    if (S.reading) readText();
  }
}

function drawTraining(t) {
  if (!t) return;
  const box = $("training-plots");
  box.innerHTML = "";
  const ev = t.evals, tr = t.train;
  const last = ev.length ? ev[ev.length - 1] : tr.length ? tr[tr.length - 1] : null;
  $("training-status").textContent = !last ? "no training logged yet; this page follows the run as it trains" :
    `${t.finished ? "finished" : "training (updates every 2 s)"} · step ${last.step}` +
    (ev.length ? ` · best validation loss ${Math.min(...ev.map((r) => r.val_loss ?? Infinity)).toFixed(4)}` : "");
  const xs = (rows) => rows.map((r) => r.step);
  const loss = [];
  if (tr.length) loss.push({name: "train", x: xs(tr), y: tr.map((r) => r.train_loss), color: "#1f77b4", width: 1});
  if (ev.length) {
    loss.push({name: "train (per evaluation)", x: xs(ev), y: ev.map((r) => r.train_loss ?? null), color: "#9ecae1", dots: true, line: true});
    loss.push({name: "validation", x: xs(ev), y: ev.map((r) => r.val_loss ?? null), color: "#d62728", dots: true, line: true});
  }
  if (loss.length) linePlot(box, loss, {title: "loss", xlabel: "step", intx: true, ylabel: "loss"});
  const g = tr.length ? tr : ev;
  if (g.some((r) => r.grad_norm !== undefined)) {
    linePlot(box, [{name: "gradient norm (before clipping)", x: xs(g), y: g.map((r) => r.grad_norm ?? null), color: "#9467bd"}],
      {title: "gradient norm", xlabel: "step", intx: true, logy: true});
  }
  if (g.some((r) => r.lr !== undefined)) linePlot(box, [{name: "learning rate", x: xs(g), y: g.map((r) => r.lr), color: "#2ca02c"}], {title: "learning rate", xlabel: "step", intx: true});
  const metricKeys = ev.length ? Object.keys(ev[ev.length - 1]).filter((k) => k.startsWith("val_") && !["val_loss", "val_ppl"].includes(k)) : [];
  for (const k of metricKeys.slice(0, 4)) linePlot(box, [{name: k, x: xs(ev), y: ev.map((r) => r[k] ?? null), dots: true, line: true}], {title: k, xlabel: "step", intx: true});
  if (t.gradients && t.gradients.layers) {
    const series = [];
    for (const [layer, e] of Object.entries(t.gradients.layers)) for (const [k, v] of Object.entries(e)) {
      if (Array.isArray(v)) series.push({name: `${layer} ${k}`, x: v.map((_, i) => i), y: v});
    }
    linePlot(box, series, {title: `gradient flow ||dL/dh_t|| at step ${t.gradients.step}`, xlabel: "time step t", logy: true});
  }
  const imgs = $("images");
  imgs.innerHTML = "";
  for (const name of t.images) {
    const f = document.createElement("figure"), img = document.createElement("img");
    img.src = `/api/image?` + new URLSearchParams({run: S.run, name, v: t.version});
    img.alt = name; f.appendChild(img);
    const c = document.createElement("figcaption"); c.textContent = name; f.appendChild(c);
    imgs.appendChild(f);
  }
}

// ------------------------------------------------------------------ wiring
function wire() {
  $("text").addEventListener("input", textChanged);
  for (const id of ["layer", "direction", "quantity", "unit"]) $(id).addEventListener("change", () => pickerChanged());
  $("unit-slider").addEventListener("input", () => pickerChanged("slider"));
  $("find").onclick = findUnits;
  $("fill").onclick = fillSample;
  $("tokens").addEventListener("mouseover", (e) => {
    const s = e.target.closest(".tok");
    if (s) { S.hover = +s.dataset.i; drawDetail(S.hover); }
  });
  $("temperature").addEventListener("input", () => { showTemperature(); setHash({temperature: $("temperature").value}); });
  $("generate").onclick = generate;
  $("stop").onclick = () => S.stop && S.stop();
  $("beam-search").onclick = beamSearch;
  $("translate").onclick = translate;
  $("source").addEventListener("keydown", (e) => { if (e.key === "Enter") translate(); });
  $("forecast").onclick = runForecast;
  $("sample").onclick = sample;
  $("recognize").onclick = recognizeFile;
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "TEXTAREA" || e.target.tagName === "INPUT" || !S.info || !S.info.layers) return;
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      $("unit").value = +$("unit").value + (e.key === "ArrowRight" ? 1 : -1); pickerChanged();
    }
  });
}

busy(0);
wire();
init().catch((e) => { message("problem", e.message); $("problem").hidden = false; });

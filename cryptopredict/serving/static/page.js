// The live page: every chart drawn in the browser from the API's public JSON, with uPlot (vendored beside this
// file; loaded first as the global `uPlot`). One module for this origin and any other: the element
// <div id="live" data-api="http://host:port"> names the API (empty or absent: this page's own origin), so a
// static copy of this file served elsewhere draws the same charts through CORS.
//
// It follows the anchor: each poll interval it asks /v1/symbols (revalidated with its ETag, a 304 when nothing
// moved) and redraws everything when a pair's anchor changed. Numbers are the API's, never recomputed here.

const LEVELS = ["0.05", "0.1", "0.25", "0.5", "0.75", "0.9", "0.95"];
const DAY = 86400;
const root = document.getElementById("live");
const api = (root.dataset.api || "").replace(/\/+$/, "");
const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumSignificantDigits: 6 });
const pct = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });
const money = (v) => (v == null ? "–" : usd.format(v));
const state = { symbols: [], pair: null, anchors: "", fan: null, curve: null, busy: false, asked: 0 };

async function get(path) {
  // no-cache: revalidate every time (the ETag makes an unchanged answer a 304), never a stale anchor.
  const r = await fetch(api + path, { cache: "no-cache" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.detail || `${path}: HTTP ${r.status}`);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function options(select, pairs, chosen) {
  select.replaceChildren(...pairs.map(([value, text]) => el("option", value === chosen ? { value, selected: "" } : { value }, text)));
}

function build() {
  const controls = el("form", { id: "controls" },
    el("label", {}, "Pair ", el("select", { name: "pair" })), " ",
    el("label", {}, "History ", el("select", { name: "history" })), " ",
    el("label", {}, "Horizon ", el("select", { name: "horizon" })));
  options(controls.elements.history, [["30", "30 days"], ["90", "90 days"], ["365", "1 year"], ["all", "all"]], "90");
  options(controls.elements.horizon, [["7", "7 days"], ["30", "30 days"], ["90", "90 days"], ["365", "1 year"]], "30");
  const prob = el("form", { id: "prob-form" },
    "Chance the close is ", el("select", { name: "side" }), " ",
    el("input", { name: "price", type: "number", step: "any", min: "0", "aria-label": "price in USD" }),
    " USD on ", el("input", { name: "date", type: "date", "aria-label": "date" }), " ",
    el("button", { type: "submit" }, "ask"));
  options(prob.elements.side, [["above", "above"], ["below", "below"]], "above");
  root.replaceChildren(
    controls,
    el("div", { id: "fan" }),
    el("p", { id: "fan-note", class: "sub" }),
    prob,
    el("p", { id: "prob", role: "status" }),
    el("div", { id: "curve" }),
    el("p", { id: "status", class: "sub", role: "status" }),
  );
  root.hidden = false;
  controls.addEventListener("change", () => refresh(true));
  prob.addEventListener("change", () => probability());
  prob.addEventListener("submit", (e) => { e.preventDefault(); probability(); });
}

const form = () => document.getElementById("controls").elements;
const probForm = () => document.getElementById("prob-form").elements;
const pair = () => state.symbols.find((s) => s.symbol === form().pair.value) || state.symbols[0];
const seconds = (iso) => Date.parse(iso) / 1000;
const iso = (s) => new Date(s * 1000).toISOString().replace(".000Z", "Z");

function window_(s) {
  // Bar labels (the instant a bar opens) from `history` before the anchor's bar to `horizon` after it, thinned
  // to at most 600 points with the last one kept (start is a whole number of kept steps before end).
  const step = s.step_seconds;
  const anchorBar = seconds(s.anchor.time) - step;
  const end = Math.min(seconds(s.forecast_end), anchorBar + Number(form().horizon.value) * DAY);
  const history = form().history.value;
  const first = history === "all" ? seconds(s.data_start) : Math.max(seconds(s.data_start), anchorBar - Number(history) * DAY);
  const bars = Math.floor((end - first) / step);
  const thin = Math.max(1, Math.ceil((bars + 1) / 600));
  const start = end - Math.floor(bars / thin) * thin * step;
  return { start: iso(start), end: iso(end), thin };
}

async function fan(s) {
  const w = window_(s);
  const q = `start=${w.start}&end=${w.end}&step=${w.thin}&format=columns&quantiles=${LEVELS.join(",")}`;
  const body = await get(`/v1/forecast/${s.symbol}?${q}`);
  const c = body.columns;
  const xs = c.time.map(seconds);
  const ahead = (i) => c.kind[i] === "forecast";
  const band = (level) => c.quantiles[level].map((v, i) => (ahead(i) ? v : null));
  const rows = [
    xs,
    c.actual.map((v, i) => (c.kind[i] === "fitted" ? v : null)),
    c.median.map((v, i) => (c.kind[i] === "elapsed" ? v : null)),
    ...LEVELS.map(band),
    xs.map(() => null),
  ];
  // The anchor is a point of the chart, where the forecast starts: the price at its time, zero spread.
  const a = body.anchor;
  const at = seconds(a.time);
  let i = xs.findIndex((x) => x >= at);
  if (i === -1) i = xs.length;
  if (xs[i] !== at) rows.forEach((row, r) => row.splice(i, 0, r === 0 ? at : null));
  for (let r = 3; r < 3 + LEVELS.length; r++) rows[r][i] = a.price;
  rows[rows.length - 1][i] = a.price;
  const median = 3 + LEVELS.indexOf("0.5");
  const opts = {
    width: Math.max(320, root.clientWidth),
    height: 380,
    title: `${body.pair}: closes, the served forecast's median and its 50%, 80% and 90% bands (USD)`,
    scales: { x: { time: true } },
    series: [
      { label: "close time (UTC)", value: (u, v) => (v == null ? "–" : iso(v).slice(0, 16).replace("T", " ")) },
      { label: "close", stroke: "#222", width: 1.5, value: (u, v) => money(v) },
      { label: "elapsed (the artifact's forecast)", stroke: "#999", dash: [4, 4], value: (u, v) => money(v) },
      ...LEVELS.map((l) => ({
        label: l === "0.5" ? "median" : `${Number(l) * 100}%`,
        stroke: l === "0.5" ? "#1f6feb" : "rgba(31,111,235,0.35)",
        width: l === "0.5" ? 2 : 1,
        value: (u, v) => money(v),
      })),
      { label: `anchor (${a.source})`, stroke: "#d0342c", width: 0, points: { show: true, size: 9, fill: "#d0342c" },
        value: (u, v) => money(v) },
    ],
    bands: [[3, 9, 0.12], [4, 8, 0.16], [5, 7, 0.22]].map(([lo, hi, alpha]) => ({ series: [hi, lo], fill: `rgba(31,111,235,${alpha})` })),
    axes: [{}, { size: 90, values: (u, vals) => vals.map((v) => money(v)) }],
  };
  if (state.fan) state.fan.destroy();
  state.fan = new uPlot(opts, rows, document.getElementById("fan"));
  const last = rows[median].length - 1;
  root.dataset.lastTime = iso(rows[0][last]);
  root.dataset.lastDate = c.date[c.date.length - 1]; // its bar's label: what `date=` names
  root.dataset.lastMedian = String(rows[median][last]);
  root.dataset.anchorPrice = String(a.price);
  root.dataset.anchorTime = a.time;
  document.getElementById("fan-note").textContent =
    `Anchored at ${money(a.price)} (${a.source === "live" ? "the live price" : "the last close"}) at ${a.time}; ` +
    `median ${money(rows[median][last])} for the close at ${root.dataset.lastTime}. Model ${body.model_version}.`;
  return body;
}

async function probability() {
  // Asked again while an answer is on its way (each field's change asks): only the latest question is shown.
  const ticket = ++state.asked;
  const s = pair();
  const f = probForm();
  if (!f.price.value) f.price.value = String(Math.round(s.anchor.price));
  if (!f.date.value) f.date.value = root.dataset.lastDate.slice(0, 10);
  const side = f.side.value;
  const out = document.getElementById("prob");
  try {
    const price = Number(f.price.value);
    const one = await get(`/v1/forecast/${s.symbol}/probability?date=${f.date.value}&${side}=${price}`);
    if (ticket !== state.asked) return;
    const bound = one.bound === "exact" ? "" : `${one.bound} `;
    out.dataset.probability = String(one.probability);
    out.textContent = `P(${s.pair} close ${side} ${money(price)} at ${one.time}) = ${bound}${pct.format(one.probability)}`;
    const prices = Array.from({ length: 25 }, (_, k) => Number((one.prediction * (0.7 + 0.025 * k)).toPrecision(6)));
    const curve = await get(`/v1/forecast/${s.symbol}/probability?date=${f.date.value}&${side}=${prices.join(",")}`);
    if (ticket !== state.asked) return;
    const opts = {
      width: Math.max(320, Math.min(root.clientWidth, 640)),
      height: 220,
      title: `P(close ${side} price) at ${curve.time}`,
      scales: { x: { time: false } },
      series: [
        { label: "price", value: (u, v) => money(v) },
        { label: `P(${side})`, stroke: "#1f6feb", width: 2, value: (u, v) => (v == null ? "–" : pct.format(v)) },
      ],
      axes: [{ values: (u, vals) => vals.map((v) => money(v)) }, { size: 60, values: (u, vals) => vals.map((v) => pct.format(v)) }],
    };
    if (state.curve) state.curve.destroy();
    state.curve = new uPlot(opts, [curve.prices, curve.probabilities], document.getElementById("curve"));
  } catch (e) {
    if (ticket !== state.asked) return;
    delete out.dataset.probability;
    out.textContent = String(e.message || e);
  }
}

async function table() {
  // The server-drawn table (what a page without JavaScript shows), brought to the current anchor.
  for (const row of document.querySelectorAll("tr[data-slug]")) {
    const p = await get(`/v1/forecast/${row.dataset.slug}?date=${row.dataset.end}`);
    const cell = (name) => row.querySelector(`td.${name}`);
    cell("anchor").textContent = p.anchor.source === "live" ? `the live price ${money(p.anchor.price)} at ${p.anchor.time}` : "the last close";
    cell("median").textContent = money(p.prediction);
    cell("median").dataset.value = String(p.prediction);
    cell("band").textContent = `${money(p.prediction_low)} – ${money(p.prediction_high)}`;
  }
}

async function refresh(force = false) {
  if (state.busy) return;
  state.busy = true;
  const status = document.getElementById("status");
  try {
    const symbols = (await get("/v1/symbols")).symbols;
    const anchors = JSON.stringify(symbols.map((s) => s.anchor));
    if (force || anchors !== state.anchors) {
      const chosen = form().pair.value;
      state.symbols = symbols;
      options(form().pair, symbols.map((s) => [s.symbol, s.pair]), chosen || symbols[0].symbol);
      if (pair().symbol !== state.pair) {
        // Another pair: its own price and horizon date, not the last pair's.
        probForm().price.value = "";
        probForm().date.value = "";
        state.pair = pair().symbol;
      }
      await fan(pair());
      await probability();
      await table();
      state.anchors = anchors;
      root.dataset.updated = String(Date.now());
    }
    status.textContent = `Up to date at ${new Date().toISOString().slice(0, 19)}Z.`;
  } catch (e) {
    status.textContent = `Could not reach the API: ${e.message || e}`;
  } finally {
    state.busy = false;
  }
}

async function start() {
  build();
  const health = await get("/healthz");
  const live = health.live_prices.state !== "off";
  // Follow the live anchor each poll interval; without live prices answers change only with a new model.
  const every = live ? Math.max(0.5, health.live_prices.interval_seconds) : 300;
  root.dataset.interval = String(every);
  await refresh(true);
  setInterval(() => refresh(), every * 1000);
}

start();

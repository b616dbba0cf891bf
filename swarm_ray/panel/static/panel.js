// The swarm-ray panel: a single page over the panel's JSON API (URLs relative to the page).
// Data is only ever put in the page as text (textContent), never as HTML.
"use strict";

const state = { info: null, timer: null, charts: [], view: null, ctl: null };
const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const token = () => sessionStorage.getItem("swarm_ray_panel_token") || "";
const operator = () => sessionStorage.getItem("swarm_ray_panel_operator") || "";

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  const resp = await fetch("api/" + path, Object.assign({}, options, { headers }));
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail
      : JSON.stringify(body.detail)) : resp.statusText;
    const err = new Error(`${resp.status}: ${detail}`);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function say(text, error = false) {
  const m = $("message");
  m.textContent = text || "";
  m.className = error ? "error" : "";
}

const fmt = (v, digits = 2) => (v === null || v === undefined ? "–"
  : typeof v === "number" ? v.toLocaleString(undefined, { maximumFractionDigits: digits }) : String(v));
const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%");
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "–");
const signed = (v) => h("span", { class: v > 0 ? "pos" : v < 0 ? "neg" : "" }, fmt(v));

// ---------------------------------------------------------------- sign-in

function showWho() {
  const signed = !!token();
  $("login-btn").hidden = signed;
  $("token").hidden = signed;
  $("logout-btn").hidden = !signed;
  $("operator").value = operator();
  $("who").textContent = signed ? `signed in${operator() ? " as " + operator() : ""}` : "";
}

async function signIn(ev) {
  ev.preventDefault();
  const t = $("token").value.trim();
  sessionStorage.setItem("swarm_ray_panel_operator", $("operator").value.trim());
  if (!t) { say("enter the operator token", true); return; }
  sessionStorage.setItem("swarm_ray_panel_token", t);
  try {
    await api("auth");
    $("token").value = "";
    say("signed in");
  } catch (e) {
    sessionStorage.removeItem("swarm_ray_panel_token");
    say("sign-in refused: " + e.message, true);
  }
  showWho();
  route();
}

function signOut() {
  sessionStorage.removeItem("swarm_ray_panel_token");
  showWho();
  route();
}

// ---------------------------------------------------------------- controls

function control(kind, symbol) {
  const titles = {
    stop: "Stop after the current cycle",
    "kill-switch": "Trip the kill switch (pull every quote, keep watching)",
    "emergency-stop": "Emergency stop (kill switch, cancel every order, stop)",
    clear: "Clear the kill switch (quoting resumes)",
  };
  if (!token()) { say("controls need the operator token: sign in first", true); return; }
  if (!$("operator").value.trim()) { say("controls need your name (operator)", true); return; }
  state.ctl = { kind, symbol };
  say("");
  $("ctl-title").textContent = titles[kind];
  $("ctl-what").textContent = `${symbol || "every symbol"}, as ${$("operator").value.trim()}`;
  $("ctl-reason").value = "";
  $("ctl-dialog").showModal();
}

async function confirmControl(ev) {
  if (ev.submitter && ev.submitter.value !== "ok") return;
  const { kind, symbol } = state.ctl || {};
  const reason = $("ctl-reason").value.trim();
  if (!kind || !reason) return;
  const op = $("operator").value.trim();
  sessionStorage.setItem("swarm_ray_panel_operator", op);
  try {
    const out = await api("controls/" + kind, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ symbol: symbol || null, operator: op, reason }),
    });
    say(`${kind} ${symbol || "every symbol"}: ${outcome(out)}`);
  } catch (e) {
    say(`${kind} refused: ${e.message}`, true);
  }
  refresh();
}

function outcome(out) {
  const list = (xs) => (xs.length ? xs.map((x) => (x === "*" ? "every symbol" : x)).join(", ") : "none");
  const parts = [];
  if (out.stopped) parts.push("stopped " + list(out.stopped));
  if (out.tripped) parts.push("kill switch tripped for " + list(out.tripped));
  if (out.cleared) parts.push("cleared " + list(out.cleared));
  const held = Object.entries(out.still_tripped || {});
  if (held.length) parts.push("still tripped: " + held.map(([s, r]) => `${s} (${r})`).join(", "));
  return parts.join("; ");
}

function controlButtons(symbol) {
  // one set of buttons per symbol, moved into each refreshed table: a click that lands while
  // the view refreshes still reaches its button
  const key = symbol || "*";
  state.buttons = state.buttons || {};
  if (state.buttons[key]) return state.buttons[key];
  return (state.buttons[key] = h("span", { class: "controls" },
    h("button", { "data-ctl": "stop", onclick: () => control("stop", symbol) }, "Stop"),
    h("button", { "data-ctl": "kill-switch", onclick: () => control("kill-switch", symbol) }, "Kill switch"),
    h("button", { class: "danger", "data-ctl": "emergency-stop",
      onclick: () => control("emergency-stop", symbol) }, "Emergency stop"),
    h("button", { "data-ctl": "clear", onclick: () => control("clear", symbol) }, "Clear")));
}

// ---------------------------------------------------------------- views

function agentDots(agents) {
  return agents.map((a) => h("span", {
    class: "dot " + (a.outcome || "none"),
    title: `${a.agent_id}: ${a.outcome} ${a.action || ""} ${a.model_version || ""}`,
  }));
}

async function viewOverview(el) {
  const data = await api("overview");
  const rows = data.symbols.map((s) => {
    const d = s.decision || {};
    const live = s.live;
    const ks = s.kill_switch || (live && live.kill_switch ? { reason: "tripped" } : null);
    return h("tr", { "data-symbol": s.symbol },
      h("td", {}, h("a", { href: "#/symbol/" + s.symbol }, s.symbol)),
      h("td", {}, live ? (live.running ? "running" : "stopped") : "–"),
      h("td", { class: "num cycle" }, fmt(s.cycle, 0)),
      h("td", { class: "num" }, fmt(s.mid)),
      h("td", { class: "num" }, fmt(s.position, 6)),
      h("td", { class: "num pnl" }, signed(s.pnl)),
      h("td", { class: "num" }, fmt(s.fills, 0)),
      h("td", {}, `${d.action || "–"} (${d.carried ? "carried" : d.reason || "–"}, share ${pct(d.share)})`),
      h("td", { class: ks ? "tripped ks" : "ok ks" }, ks ? "TRIPPED: " + ks.reason : "clear"),
      h("td", {}, agentDots(s.agents || []), " ", h("span", { class: "muted" },
        [...new Set((s.agents || []).map((a) => a.model_version))].join(", "))),
      h("td", { class: "wrap" }, controlButtons(s.symbol)));
  });
  el.replaceChildren(
    h("p", { class: "muted" }, `${data.mode === "live" ? "Live swarm" : "Finished run (journal)"}; ` +
      `threshold ${data.threshold === null ? "unknown" : pct(data.threshold)}. ` +
      "All symbols: ", controlButtons(null)),
    h("table", { id: "overview" },
      h("thead", {}, h("tr", {}, ["Symbol", "Run", "Cycle", "Mid", "Position", "PnL (USDT)",
        "Fills", "Last decision", "Kill switch", "Agents (last vote, version)", "Controls"]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 11 }, "no cycle recorded yet")))));
  $("nav-symbols").replaceChildren(...data.symbols.map((s) => h("a", { href: "#/symbol/" + s.symbol }, s.symbol)));
}

function chart(el, title, opts, data) {
  // two charts a row on a wide screen, one otherwise; times on the axis in UTC
  const card = h("div", { class: "card" }, h("h3", {}, title));
  el.append(card);
  const cols = el.clientWidth >= 1100 ? 2 : 1;
  const width = Math.max(360, Math.floor((el.clientWidth - 12 * (cols - 1)) / cols) - 18);
  const axes = (opts.axes || [{}, {}]).map((a, i) => Object.assign(i === 0 ? {} : { size: 72 }, a));
  const u = new uPlot(Object.assign({
    width, height: 240, legend: { live: true },
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
  }, opts, { axes }), data, card);
  state.charts.push(u);
  return u;
}

const points = (stroke, size = 5) => ({ stroke, fill: stroke, width: 0, paths: () => null,
  points: { show: true, size, stroke, fill: stroke } });

async function viewSymbol(el, symbol) {
  const [data, rec] = await Promise.all([
    api(`symbols/${symbol}/series?limit=1500`), api(`symbols/${symbol}/agents`)]);
  const c = data.cycles;
  const x = c.time_ms.map((t) => t / 1000);
  const grid = h("div", { class: "grid" });
  state.charts.forEach((u) => u.destroy());
  state.charts = [];
  el.replaceChildren(h("h2", {}, symbol, " ", controlButtons(symbol)), grid);
  chart(grid, "PnL and inventory", {
    series: [{}, { label: "PnL (USDT)", stroke: "#1d4ed8", scale: "pnl" },
      { label: "inventory", stroke: "#b45309", scale: "inv" }],
    axes: [{}, { scale: "pnl" }, { scale: "inv", side: 1, grid: { show: false } }],
  }, [x, c.pnl, c.inventory]);
  chart(grid, "Quotes around the mid, fills marked", {
    series: [{}, { label: "mid", stroke: "#374151" },
      Object.assign({ label: "our bid" }, points("#86efac", 4)),
      Object.assign({ label: "our ask" }, points("#fca5a5", 4)),
      Object.assign({ label: "buy fill" }, points("#15803d", 9)),
      Object.assign({ label: "sell fill" }, points("#b91c1c", 9))],
  }, [x, c.mid, c.quote_bid, c.quote_ask, c.fill_buy, c.fill_sell]);
  const thr = data.threshold;
  chart(grid, "Consensus share of the winning action" + (thr === null ? "" : ` (threshold ${pct(thr)})`), {
    scales: { y: { range: [0, 1] } },
    series: [{}, { label: "share", stroke: "#1d4ed8" },
      { label: "threshold", stroke: "#b91c1c", dash: [6, 4] },
      Object.assign({ label: "carried" }, points("#15803d", 6))],
  }, [x, c.share, x.map(() => thr), c.share.map((s, i) => (c.carried[i] ? s : null))]);
  const agents = Object.keys(data.votes.agents);
  const colors = ["#1d4ed8", "#b45309", "#15803d", "#7c3aed", "#be185d", "#0f766e"];
  chart(grid, "Agents' confidence", {
    scales: { y: { range: [0, 1] } },
    series: [{}, ...agents.map((a, i) => ({ label: a, stroke: colors[i % colors.length] }))],
  }, [data.votes.time_ms.map((t) => t / 1000), ...agents.map((a) => data.votes.agents[a].confidence)]);
  // the last cycles' votes, newest first
  const n = data.votes.time_ms.length;
  const last = [];
  for (let i = n - 1; i >= Math.max(0, n - 15); i--) last.push(i);
  grid.append(h("div", { class: "card" }, h("h3", {}, "Votes, last cycles"),
    h("table", { id: "votes" }, h("thead", {}, h("tr", {}, h("th", {}, "time"), h("th", {}, "decision"),
      agents.map((a) => h("th", {}, a)))),
    h("tbody", {}, last.map((i) => {
      const ci = c.time_ms.indexOf(data.votes.time_ms[i]);
      return h("tr", {}, h("td", {}, when(data.votes.time_ms[i])),
        h("td", {}, ci >= 0 ? `${c.action[ci] || "–"}${c.carried[ci] ? " ✓" : ""}` : "–"),
        agents.map((a) => {
          const v = data.votes.agents[a];
          return h("td", {}, v.outcome[i] === "voted" ? `${v.action[i]} ${fmt(v.confidence[i], 2)}` : v.outcome[i] || "–");
        }));
    })))));
  grid.append(h("div", { class: "card" }, h("h3", {}, "Track record (every journaled cycle)"),
    h("table", { id: "records" }, h("thead", {}, h("tr", {}, ["agent", "answered", "timeouts",
      "failed", "mean confidence", "agreed with carried votes", "versions"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rec.agents.map((a) => h("tr", {}, h("td", {}, a.agent_id),
      h("td", { class: "num" }, `${a.voted}/${a.cycles} (${pct(a.answer_rate)})`),
      h("td", { class: "num" }, a.timeouts), h("td", { class: "num" }, a.failed),
      h("td", { class: "num" }, fmt(a.mean_confidence, 3)),
      h("td", { class: "num" }, a.carried_cycles ? `${a.agreed_with_carried}/${a.carried_cycles} (${pct(a.agreement)})` : "no vote carried"),
      h("td", {}, a.model_versions.join(", "))))))));
}

async function viewOrders(el) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const q = params.get("q") || "";
  const offset = Number(params.get("offset") || 0);
  const data = await api(`orders?q=${encodeURIComponent(q)}&limit=50&offset=${offset}`);
  const search = h("input", { id: "order-search", value: q, placeholder: "search id, side, status, reason", size: 40 });
  const go = (off) => { location.hash = `#/orders?q=${encodeURIComponent(search.value)}&offset=${off}`; };
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") go(0); });
  el.replaceChildren(
    h("p", {}, search, " ", h("button", { onclick: () => go(0) }, "Search"),
      ` ${data.total} orders`, offset > 0 ? h("button", { onclick: () => go(Math.max(0, offset - 50)) }, "newer") : null,
      offset + 50 < data.total ? h("button", { onclick: () => go(offset + 50) }, "older") : null),
    h("table", { id: "orders" }, h("thead", {}, h("tr", {}, ["order", "symbol", "side", "price",
      "quantity", "status", "filled", "cycle", "reason"].map((t) => h("th", {}, t)))),
    h("tbody", {}, data.orders.map((o) => h("tr", { class: "click", "data-order": o.client_order_id,
      onclick: () => { location.hash = "#/order/" + encodeURIComponent(o.client_order_id); } },
      h("td", {}, o.client_order_id), h("td", {}, o.symbol),
      h("td", { class: o.side === "BUY" ? "pos" : "neg" }, o.side), h("td", { class: "num" }, o.price),
      h("td", { class: "num" }, o.quantity), h("td", {}, o.status), h("td", { class: "num" }, o.filled_quantity),
      h("td", { class: "num" }, fmt(o.cycle, 0)), h("td", {}, o.reason || ""))))));
}

function kv(obj) {
  return h("dl", { class: "kv" }, Object.entries(obj).map(([k, v]) => [h("dt", {}, k),
    h("dd", {}, typeof v === "object" && v !== null ? JSON.stringify(v) : fmt(v, 8))]));
}

async function viewOrder(el, id) {
  const why = await api(`orders/${encodeURIComponent(id)}/explain`);
  const cyc = why.cycle;
  const d = cyc && cyc.decision;
  el.replaceChildren(h("div", { id: "explain", class: "grid" },
    h("div", { class: "card" }, h("h3", {}, "Order " + why.order.client_order_id), kv(why.order)),
    h("div", { class: "card" }, h("h3", {}, "Decision"), d ? kv({
      action: d.action, "voted action": d.voted_action, "consensus share": pct(d.consensus_share),
      threshold: why.threshold === null ? "unknown" : pct(why.threshold), reason: d.reason,
      "risk gate": d.risk_allowed ? "allowed" : "blocked", "risk reasons": (d.risk_reasons || []).join("; ") || "none",
      scores: d.scores,
    }) : h("p", {}, why.note || "no cycle recorded")),
    cyc ? h("div", { class: "card" }, h("h3", {}, `Cycle ${cyc.cycle}: market`), kv({
      time: when(cyc.time_ns / 1e6), mid: cyc.mid, "best bid": cyc.best_bid, "best ask": cyc.best_ask,
      inventory: cyc.inventory, pnl: cyc.pnl, "data problems": (cyc.data_problems || []).join("; ") || "none",
      "latency ms": cyc.latency_ms })) : null,
    h("div", { class: "card" }, h("h3", {}, "Votes"), h("table", { id: "opinions" },
      h("thead", {}, h("tr", {}, ["agent", "outcome", "action", "confidence", "weight", "version", "rationale"]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, why.opinions.map((o) => h("tr", {}, h("td", {}, o.agent_id), h("td", {}, o.outcome),
        h("td", {}, o.action || "–"), h("td", { class: "num" }, fmt(o.confidence, 3)),
        h("td", { class: "num" }, fmt(o.weight, 2)), h("td", {}, o.model_version || "–"),
        h("td", {}, o.rationale || "")))))),
    h("div", { class: "card" }, h("h3", {}, "Fills"), why.fills.length ? h("table", {},
      h("tbody", {}, why.fills.map((f) => h("tr", {}, h("td", {}, when(f.time_ms)), h("td", {}, f.side),
        h("td", { class: "num" }, f.price), h("td", { class: "num" }, f.quantity),
        h("td", {}, `fee ${f.fee} ${f.fee_asset}`))))) : h("p", {}, "none")),
    h("div", { class: "card" }, h("h3", {}, "The cycle's orders"), h("table", {},
      h("tbody", {}, why.cycle_orders.map((o) => h("tr", {}, h("td", {}, o.client_order_id),
        h("td", {}, o.side), h("td", { class: "num" }, o.price), h("td", { class: "num" }, o.quantity),
        h("td", {}, o.status))))))));
}

async function viewAudit(el) {
  const data = await api("audit");
  el.replaceChildren(h("table", { id: "audit" }, h("thead", {}, h("tr", {}, ["time (UTC)", "what",
    "symbol", "by", "reason"].map((t) => h("th", {}, t)))),
  h("tbody", {}, data.events.map((e) => h("tr", {}, h("td", {}, when(e.time_ns / 1e6)), h("td", {}, e.kind),
    h("td", {}, e.symbol || "every symbol"), h("td", {}, e.actor), h("td", {}, e.reason))))));
}

// ---------------------------------------------------------------- routing

async function route() {
  const hash = location.hash || "#/";
  const [path] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean);
  const el = $("view");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === "#" + path);
  if (!state.info.public_read && !token()) {
    state.view = null;
    el.replaceChildren(h("p", { id: "signin-needed" }, "Sign in with the operator token to see the swarm " +
      "(this panel's views are not public)."));
    return;
  }
  const views = {
    "": () => viewOverview(el),
    symbol: () => viewSymbol(el, decodeURIComponent(parts[1] || "")),
    orders: () => viewOrders(el),
    order: () => viewOrder(el, decodeURIComponent(parts.slice(1).join("/"))),
    audit: () => viewAudit(el),
  };
  state.view = views[parts[0] || ""] || views[""];
  await refresh();
}

async function refresh() {
  if (!state.view) return;
  try {
    await state.view();
    $("updated").textContent = new Date().toLocaleTimeString();
    if ($("message").className === "error" && /^(4|5)\d\d:|fetch/.test($("message").textContent)) say("");
  } catch (e) {
    if (e.status === 401) { sessionStorage.removeItem("swarm_ray_panel_token"); showWho(); }
    say(e.message, true);
  }
}

async function main() {
  state.info = await api("info");
  document.title = state.info.title + " panel";
  $("mode").textContent = state.info.mode;
  $("mode").className = "badge " + state.info.mode;
  $("login").addEventListener("submit", signIn);
  $("logout-btn").addEventListener("click", signOut);
  $("ctl-form").addEventListener("submit", confirmControl);
  showWho();
  window.addEventListener("hashchange", () => { say(""); route(); });
  await route();
  // live updates at the swarm's pace; the order explanation and the search stay put
  state.timer = setInterval(() => {
    const p = (location.hash || "#/").slice(2).split("/")[0].split("?")[0];
    if (p === "" || p === "symbol" || p === "audit") refresh();
  }, Math.max(1000, 1000 * state.info.refresh_s));
}

main().catch((e) => say("the panel could not start: " + e.message, true));

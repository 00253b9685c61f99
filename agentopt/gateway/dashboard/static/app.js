// agentopt dashboard: asks the JSON API for aggregates and draws them. No build step, no CDN.
"use strict";
(function () {
  const PREFIX = document.body.dataset.prefix;
  const API = PREFIX + "/api";
  const PALETTE = ["#2f6fdb", "#e07b39", "#2e8b57", "#c43d3d", "#7b5bd6", "#1f9aa8", "#b7791f",
    "#d6569b", "#5b6b7a", "#8fb339", "#a0522d", "#4b0082"];
  const charts = {};
  const state = { tab: "calls", newest: null, oldest: null, selection: null, seq: {} };
  // Each view draws only its latest request's answer: an older answer that arrives late
  // (filters changed meanwhile) is dropped.
  const ticket = (view) => { state.seq[view] = (state.seq[view] || 0) + 1; return state.seq[view]; };
  const stale = (view, t) => state.seq[view] !== t;
  const $ = (sel) => document.querySelector(sel);

  // ---------------------------------------------------------------- formatting
  // dollars: cents above $1, four significant digits below (LLM calls cost fractions of a cent)
  const fmtUsd = (v) => v === null || v === undefined ? "unpriced"
    : v === 0 ? "$0" : Math.abs(v) >= 1 ? "$" + v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })
      : "$" + Number(v.toPrecision(4)).toString();
  const fmtSec = (v) => v === null || v === undefined ? "–"
    : v < 1 ? (v * 1000).toFixed(v < 0.01 ? 1 : 0) + " ms" : v.toFixed(2) + " s";
  const fmtInt = (v) => v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US");
  const fmtPct = (v) => v === null || v === undefined ? "–" : (100 * v).toFixed(v < 0.001 && v > 0 ? 2 : 1) + " %";
  const color = (i) => PALETTE[i % PALETTE.length];
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  function showError(msg) {
    const el = $("#error");
    el.textContent = msg; el.hidden = false;
    clearTimeout(showError.t); showError.t = setTimeout(() => { el.hidden = true; }, 6000);
  }

  function params(extra) {
    const p = new URLSearchParams();
    new FormData($("#filters")).forEach((v, k) => {
      if (!v) return;
      if (k === "start" || k === "end") v = new Date(v + "Z").toISOString().replace(".000Z", "+00:00");
      p.set(k, v);
    });
    for (const [k, v] of Object.entries(extra || {})) if (v !== null && v !== undefined) p.set(k, v);
    return p.toString();
  }

  async function get(path, extra) {
    const q = params(extra);
    const r = await fetch(API + path + (q ? "?" + q : ""), { credentials: "same-origin" });
    if (r.status === 401) { window.location = PREFIX + "/login"; throw new Error("unauthorised"); }
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  // ---------------------------------------------------------------- KPIs
  async function loadSummary() {
    const t = ticket("summary");
    const s = await get("/summary");
    if (stale("summary", t)) return;
    $("#k-requests").textContent = fmtInt(s.requests);
    $("#k-cost").innerHTML = (s.cost_usd === null ? '<span class="unpriced">unpriced</span>' : esc(fmtUsd(s.cost_usd)))
      + (s.unpriced_requests && s.cost_usd !== null ? ` <small class="unpriced">+${fmtInt(s.unpriced_requests)} unpriced</small>` : "");
    $("#k-errors").textContent = s.requests ? fmtPct(s.error_rate) : "–";
    $("#k-tokens").textContent = fmtInt(s.input_tokens) + " / " + fmtInt(s.output_tokens);
    $("#k-latency").textContent = fmtSec(s.latency_seconds.p50) + " / " + fmtSec(s.latency_seconds.p99);
    $("#k-ttft").textContent = fmtSec(s.ttft_seconds.p50);
    $("#k-cache").textContent = s.requests ? fmtPct(s.cache_hits / s.requests) : "–";
  }

  async function loadOptions() {
    const o = await get("/options", {});
    for (const key of ["model", "provider", "alias", "agent_id", "combo_id"]) {
      const sel = $(`#filters [name=${key}]`);
      const current = sel.value;
      sel.innerHTML = '<option value="">all</option>' +
        o[key].map((v) => `<option value="${esc(v)}">${esc(v)}</option>`).join("");
      sel.value = current;
    }
  }

  // ---------------------------------------------------------------- calls
  function callRow(c) {
    const tr = document.createElement("tr");
    tr.dataset.callId = c.call_id;
    tr.dataset.seq = c.seq;
    const status = c.cached ? '<span class="pill hit">cached</span>'
      : c.ok ? `<span class="pill ok">${esc(c.status_code ?? "ok")}</span>`
        : `<span class="pill err" title="${esc(c.error)}">${esc(c.status_code ?? "error")}</span>`;
    const answered = c.model ?? c.model_label;
    const routed = c.requested_model && answered && c.requested_model !== answered;
    const models = routed
      ? `${esc(c.requested_model)} <span class="arrow">→</span> <span class="routed">${esc(answered)}</span>`
      : esc(answered ?? c.requested_model ?? "–");
    const ids = [["data", c.data_id], ["combo", c.combo_id], ["agent", c.agent_id]]
      .filter(([, v]) => v).map(([k, v]) => `${k}=${esc(v)}`).join(" ");
    tr.innerHTML = `<td>${esc((c.timestamp || "").replace("T", " ").slice(0, 19))}</td>
      <td>${esc(c.alias ?? "")}</td><td>${models}</td><td>${status}</td>
      <td class="num">${fmtInt(c.prompt_tokens)} / ${fmtInt(c.completion_tokens)}</td>
      <td class="num ${c.cost_usd === null ? "unpriced" : ""}">${esc(fmtUsd(c.cost_usd))}</td>
      <td class="num">${fmtSec(c.latency_seconds)}</td><td class="num">${fmtSec(c.ttft_seconds)}</td>
      <td>${c.cached ? "yes" : ""}</td><td class="ids">${ids}</td>`;
    tr.addEventListener("click", () => openCall(c.call_id));
    return tr;
  }

  async function loadCalls() {
    const t = ticket("calls");
    const { calls } = await get("/calls", { limit: 100 });
    if (stale("calls", t)) return;
    const tbody = $("#calls tbody");
    tbody.innerHTML = "";
    calls.forEach((c) => tbody.appendChild(callRow(c)));
    state.newest = calls.length ? calls[0].seq : null;
    state.oldest = calls.length ? calls[calls.length - 1].seq : null;
    $("#older").hidden = calls.length < 100;
    $("#calls-note").textContent = calls.length ? "" : "No calls match these filters.";
  }

  async function pollCalls() {
    if (state.newest === null) return loadCalls();
    const t = state.seq.calls;  // a full reload started meanwhile wins
    const { calls } = await get("/calls", { limit: 200, after: state.newest });
    if (!calls.length || stale("calls", t)) return;
    const tbody = $("#calls tbody");
    for (let i = calls.length - 1; i >= 0; i--) {
      const tr = callRow(calls[i]); tr.classList.add("new"); tbody.prepend(tr);
    }
    state.newest = calls[0].seq;
    while (tbody.rows.length > 500) tbody.deleteRow(-1);
    state.oldest = Number(tbody.rows[tbody.rows.length - 1].dataset.seq);
  }

  async function olderCalls() {
    const { calls } = await get("/calls", { limit: 100, before: state.oldest });
    const tbody = $("#calls tbody");
    calls.forEach((c) => tbody.appendChild(callRow(c)));
    if (calls.length) state.oldest = calls[calls.length - 1].seq;
    $("#older").hidden = calls.length < 100;
  }

  async function openCall(id) {
    const r = await fetch(`${API}/calls/${encodeURIComponent(id)}`, { credentials: "same-origin" });
    const c = await r.json();
    if (!r.ok) return showError(c.error || "cannot load the call");
    $("#d-id").textContent = id;
    const facts = [
      ["time", c.timestamp], ["status", c.error ? `error: ${c.error}` : (c.status_code ?? "ok")],
      ["requested model", c.requested_model], ["selected model", c.model], ["provider", c.provider],
      ["alias", c.alias], ["router", c.router], ["tokens in / out", `${fmtInt(c.prompt_tokens)} / ${fmtInt(c.completion_tokens)}`],
      ["cached / reasoning tokens", `${fmtInt(c.cached_tokens)} / ${fmtInt(c.reasoning_tokens)}`],
      ["cost", fmtUsd(c.cost_usd)], ["latency", fmtSec(c.latency_seconds)], ["TTFT", fmtSec(c.ttft_seconds)],
      ["streamed", c.stream ? "yes" : "no"], ["cache hit", c.cached ? "yes" : "no"],
      ["data_id", c.data_id], ["combo_id", c.combo_id], ["agent_id", c.agent_id], ["URL", c.request_url],
    ].filter(([, v]) => v !== null && v !== undefined && v !== "");
    $("#d-facts").innerHTML = facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
    const routing = {};
    for (const k of ["alias", "router", "requested_model", "model", "fallback_from", "attempts", "retries", "routing"])
      if (c[k] !== undefined && c[k] !== null) routing[k] = c[k];
    $("#d-routing").textContent = JSON.stringify(routing, null, 2);
    const body = (b) => b === null || b === undefined ? "redacted (not stored)"
      : typeof b === "string" ? b : JSON.stringify(b, null, 2);
    $("#d-request").textContent = body(c.request_body);
    $("#d-response").textContent = body(c.response_body);
    $("#detail").hidden = false;
  }

  // ---------------------------------------------------------------- charts
  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    config.options = Object.assign({ animation: false, maintainAspectRatio: false, responsive: true }, config.options || {});
    charts[id] = new Chart(document.getElementById(id), config);
  }

  function stackedBars(id, ts, field, yTitle) {
    const models = Object.keys(ts.series);
    draw(id, {
      type: "bar",
      data: { labels: ts.buckets,
        datasets: models.map((m, i) => ({ label: m, data: ts.series[m][field], backgroundColor: color(i), stack: "s" })) },
      options: { scales: { x: { stacked: true, title: { display: true, text: `time (UTC, per ${ts.bucket})` } },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: yTitle } } },
        plugins: { legend: { position: "bottom" } } },
    });
  }

  function percentileBars(id, byModel) {
    const models = Object.keys(byModel).filter((m) => byModel[m].p50 !== null);
    draw(id, {
      type: "bar",
      data: { labels: models, datasets: ["p50", "p90", "p99"].map((p, i) => ({
        label: p, data: models.map((m) => byModel[m][p]), backgroundColor: ["#9ec1f5", "#4f8ae8", "#1f4fa3"][i] })) },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: "seconds" } },
        x: { title: { display: true, text: "model" } } }, plugins: { legend: { position: "bottom" } } },
    });
  }

  async function loadCharts() {
    const t = ticket("charts");
    const [ts, lat, errs] = await Promise.all([get("/timeseries"), get("/latency"), get("/errors")]);
    if (stale("charts", t)) return;
    document.querySelectorAll(".bucket").forEach((el) => { el.textContent = ts.bucket; });
    stackedBars("c-cost", ts, "cost_usd", "USD");
    stackedBars("c-requests", ts, "requests", "requests");
    percentileBars("c-latency", lat.latency);
    percentileBars("c-ttft", lat.ttft);
    draw("c-errors", {
      type: "bar",
      data: { labels: errs.providers.map((p) => p.provider),
        datasets: [{ label: "error rate (%)", data: errs.providers.map((p) => 100 * p.error_rate), backgroundColor: "#c43d3d" }] },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: "% of requests" } },
        x: { title: { display: true, text: "provider" } } }, plugins: { legend: { display: false } } },
    });
    draw("c-cache", {
      type: "line",
      data: { labels: ts.buckets,
        datasets: [{ label: "cache hit rate (%)", data: ts.cache_hit_rate.map((v) => v === null ? null : 100 * v),
          borderColor: "#2f6fdb", backgroundColor: "#2f6fdb", tension: 0.2 }] },
      options: { scales: { y: { beginAtZero: true, max: 100, title: { display: true, text: "% of requests" } },
        x: { title: { display: true, text: `time (UTC, per ${ts.bucket})` } } }, plugins: { legend: { display: false } } },
    });
  }

  // ---------------------------------------------------------------- routing
  async function loadRouting() {
    const t = ticket("routing");
    const { aliases } = await get("/routing");
    if (stale("routing", t)) return;
    const root = $("#routing");
    Object.keys(charts).filter((k) => k.startsWith("r-")).forEach((k) => { charts[k].destroy(); delete charts[k]; });
    if (!aliases.length) {
      root.innerHTML = '<p class="hint">No routed calls match these filters.</p>';
      return;
    }
    root.innerHTML = "";
    aliases.forEach((a, n) => {
      const card = document.createElement("div");
      card.className = "alias";
      card.dataset.alias = a.alias;
      const saved = a.saved_usd === null ? "savings unknown (unpriced targets)"
        : `saved <b>${esc(fmtUsd(a.saved_usd))}</b> of ${esc(fmtUsd(a.cost_if_most_expensive_usd))} `
          + `(${fmtPct(a.cost_if_most_expensive_usd ? a.saved_usd / a.cost_if_most_expensive_usd : null)}) `
          + `against always calling ${esc(a.most_expensive_target)}; spent ${esc(fmtUsd(a.actual_cost_usd))}`;
      const est = a.estimates || {};
      const rows = a.targets.map((t) => `<tr><td>${esc(t.model)}</td><td class="num">${fmtInt(t.requests)}</td>
        <td class="num">${fmtPct(t.share)}</td><td class="num">${esc(est[t.model] === undefined ? "–" : fmtEstimate(est[t.model]))}</td>
        <td class="num">${esc(fmtUsd(t.mean_cost_usd))}</td><td class="num">${fmtPct(t.error_rate)}</td></tr>`).join("");
      card.innerHTML = `<h2>${esc(a.alias)} <small class="ids">${fmtInt(a.requests)} calls</small></h2>
        <div class="saved">${saved}</div>
        <div><canvas id="r-${n}"></canvas></div>
        <table class="grid"><thead><tr><th>target</th><th class="num">calls</th><th class="num">share</th>
        <th class="num">estimate</th><th class="num">$ / call</th><th class="num">errors</th></tr></thead><tbody>${rows}</tbody></table>`;
      root.appendChild(card);
      const models = Object.keys(a.share_over_time);
      draw(`r-${n}`, {
        type: "line",
        data: { labels: a.buckets, datasets: models.map((m, i) => ({
          label: m, data: a.share_over_time[m].map((v) => 100 * v), borderColor: color(i),
          backgroundColor: color(i) + "55", fill: true, tension: 0.2, pointRadius: a.buckets.length > 20 ? 0 : 3 })) },
        options: { scales: { y: { stacked: true, min: 0, max: 100, title: { display: true, text: "% of this alias's calls" } },
          x: { title: { display: true, text: `time (UTC, per ${a.bucket})` } } }, plugins: { legend: { position: "bottom" } } },
      });
    });
  }

  function fmtEstimate(v) {
    if (typeof v === "number") return v.toFixed(3);
    if (v && typeof v === "object" && "mean" in v) return Number(v.mean).toFixed(3);
    return String(v);
  }

  // ---------------------------------------------------------------- selection
  const errorBars = {
    id: "errorBars",
    afterDatasetsDraw(chart) {
      const { ctx } = chart;
      chart.data.datasets.forEach((ds, di) => {
        if (!ds.intervals) return;
        const meta = chart.getDatasetMeta(di);
        const area = chart.chartArea;
        ctx.save(); ctx.beginPath(); ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top); ctx.clip();
        ctx.strokeStyle = ds.borderColor || "#555"; ctx.lineWidth = 1;
        meta.data.forEach((pt, i) => {
          const iv = ds.intervals[i];
          if (!iv || iv[0] === null) return;
          const y0 = chart.scales.y.getPixelForValue(iv[0]), y1 = chart.scales.y.getPixelForValue(iv[1]);
          ctx.beginPath(); ctx.moveTo(pt.x, y0); ctx.lineTo(pt.x, y1);
          ctx.moveTo(pt.x - 3, y0); ctx.lineTo(pt.x + 3, y0); ctx.moveTo(pt.x - 3, y1); ctx.lineTo(pt.x + 3, y1);
          ctx.stroke();
        });
        ctx.restore();
      });
    },
  };

  async function loadSelectionList() {
    const { selections } = await get("/selections", {});
    const sel = $("#sel-store");
    sel.innerHTML = selections.map((s) => `<option value="${s.index}">${esc(s.name)}</option>`).join("");
    if (!selections.length) {
      $("#sel-note").textContent = "No selection store given. Start with --selections PATH (the file ModelSelector(store=...) writes).";
    }
    return selections.length;
  }

  async function loadSelection() {
    const sel = $("#sel-store");
    if (!sel.options.length && !(await loadSelectionList())) return;
    const r = await fetch(`${API}/selections/${sel.value}`, { credentials: "same-origin" });
    const v = await r.json();
    if (!r.ok) { $("#sel-note").textContent = v.error; return; }
    $("#sel-note").textContent = `${fmtInt(v.observations)} observations of ${v.combinations.length} combinations`
      + (v.fingerprints.length > 1 ? ` (selection ${v.fingerprint}; the store holds ${v.fingerprints.length})` : "")
      + ". \"Evaluated\" gives the run positions of each combination's first and last evaluation: one that stops early stopped being evaluated there (eliminated).";
    const rows = v.combinations;
    $("#sel-table tbody").innerHTML = rows.map((c, i) => `<tr class="${c.pareto ? "pareto" : ""}">
      <td>${i + 1}</td><td>${esc(c.combo)}</td><td class="num">${fmtInt(c.n)}</td>
      <td class="num">${c.mean_score.toFixed(3)}</td>
      <td class="num">${c.ci_low === null ? "–" : `${c.ci_low.toFixed(3)} – ${c.ci_high.toFixed(3)}`}</td>
      <td class="num">${fmtInt(c.failures)}</td><td class="num ${c.unpriced ? "unpriced" : ""}">${esc(fmtUsd(c.usd_per_item))}</td>
      <td class="num">${fmtSec(c.latency_per_item)}</td>
      <td>${c.first_evaluated}–${c.last_evaluated}${c.stopped_early ? ` <span class="pill err">eliminated after #${c.last_evaluated}</span>` : ""}</td>
      <td>${c.pareto ? "★" : ""}</td></tr>`).join("");
    const priced = rows.filter((c) => c.usd_per_item !== null);
    const front = priced.filter((c) => c.pareto).sort((a, b) => a.usd_per_item - b.usd_per_item);
    const others = priced.filter((c) => !c.pareto);
    draw("c-pareto", {
      type: "scatter",
      data: { datasets: [
        { label: "Pareto front", data: front.map((c) => ({ x: c.usd_per_item, y: c.mean_score, label: c.combo })),
          intervals: front.map((c) => [c.ci_low, c.ci_high]), borderColor: "#c43d3d", backgroundColor: "#c43d3d",
          showLine: true, pointRadius: 5 },
        { label: "other combinations", data: others.map((c) => ({ x: c.usd_per_item, y: c.mean_score, label: c.combo })),
          intervals: others.map((c) => [c.ci_low, c.ci_high]), borderColor: "#7a8794", backgroundColor: "#7a8794", pointRadius: 4 },
      ] },
      options: { scales: { x: { type: "logarithmic", ticks: { maxTicksLimit: 8 }, title: { display: true, text: "$ per item (log scale)" } },
        y: { suggestedMin: Math.min(...priced.map((c) => c.ci_low ?? c.mean_score)),
          suggestedMax: Math.max(...priced.map((c) => c.ci_high ?? c.mean_score)),
          title: { display: true, text: "mean score" } } },
        plugins: { legend: { position: "bottom" }, tooltip: { callbacks: { label: (ctx) =>
          `${ctx.raw.label}: score ${ctx.raw.y.toFixed(3)}, ${fmtUsd(ctx.raw.x)} per item` } } } },
      plugins: [errorBars],
    });
  }

  // ---------------------------------------------------------------- wiring
  async function refresh(full) {
    const tab = state.tab;  // a refresh started before a tab switch must not mark the new tab loaded
    try {
      await loadSummary();
      if (tab === "calls") await (full ? loadCalls() : pollCalls());
      else if (tab === "charts") await loadCharts();
      else if (tab === "routing") await loadRouting();
      else if (tab === "selection" && full) await loadSelection();
      if (state.tab === tab) document.body.dataset.loaded = tab;
    } catch (e) { showError(String(e.message || e)); }
  }

  document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => {
    document.querySelectorAll("#tabs button").forEach((x) => x.classList.toggle("active", x === b));
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.id === "tab-" + b.dataset.tab));
    state.tab = b.dataset.tab;
    delete document.body.dataset.loaded;
    refresh(true);
  }));
  $("#filters").addEventListener("change", () => refresh(true));
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); refresh(true); });
  $("#filters").addEventListener("reset", () => setTimeout(() => refresh(true), 0));
  $("#older").addEventListener("click", olderCalls);
  $("#d-close").addEventListener("click", () => { $("#detail").hidden = true; });
  $("#sel-store").addEventListener("change", loadSelection);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("#detail").hidden = true; });
  setInterval(() => { if ($("#live").checked && state.tab !== "selection") refresh(false); }, 2000);
  loadOptions().catch((e) => showError(String(e.message || e)));
  refresh(true);
})();

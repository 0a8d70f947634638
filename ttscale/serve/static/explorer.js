// The explorer page: pickers → a curve with its band (and a second one to compare), sequential vs parallel compute
// (maj@k etc. against cost, with the compute frontier), the emergence leaderboard, one problem's answers and
// reasoning, and a progress panel polled while a sweep runs. Plain JS, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#1f77b4", "#d62728"];
const BUDGET_LINE = "#9aa7b8";  // the thin lines of k growing at one budget
const PLOT_CONFIG = { displaylogo: false, responsive: true };
const LEADER_COLUMNS = ["problem_id", "model", "p_breakthroughness", "breakthroughness", "signed_range",
  "p_delta_bic_hinge", "jump_size", "jump_interval_lo", "jump_interval_hi", "jump_slope", "direction", "n_budgets"];
const state = { options: null, generation: -1, sort: { by: "breakthroughness", ascending: false }, problem: null };

async function api(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  const response = await fetch(`/api/${path}?${query}`);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(digits);
  return String(value);
}

function fill(select, values, labels = {}, keep = true) {
  const previous = select.value;
  const head = select.id === "compare" ? '<option value="">—</option>' : "";
  select.innerHTML = head + values.map((v) => `<option value="${escapeHtml(v)}">${escapeHtml(labels[v] || v)}</option>`).join("");
  if (keep && values.includes(previous)) select.value = previous;
}

function budgetAxis(budgets) {
  return { title: { text: "budget (tokens, log2)" }, tickvals: budgets.map(Math.log2), ticktext: budgets.map(String) };
}

function costAxis(costs) {
  const logs = costs.filter((c) => c > 0).map(Math.log2), ticks = [];
  for (let j = Math.floor(Math.min(...logs)); j <= Math.ceil(Math.max(...logs)); j++) ticks.push(j);
  return { title: { text: "cost (tokens per problem, log2)" }, tickvals: ticks, ticktext: ticks.map((j) => (2 ** j).toLocaleString()) };
}

async function loadOptions() {
  const options = await api("options");
  state.options = options;
  state.generation = options.generation;
  fill($("model"), options.models);
  fill($("compare"), options.models);
  fill($("dataset"), options.datasets, options.labels);
  fill($("metric"), options.metrics.map((m) => m.name), Object.fromEntries(options.metrics.map((m) => [m.name, m.label])));
  fill($("compute-metric"), options.compute_metrics.map((m) => m.name),
    Object.fromEntries(options.compute_metrics.map((m) => [m.name, m.label])));
  if (!state.pickedMetric && options.metrics.some((m) => m.name === "p_correct")) $("metric").value = "p_correct";
  $("summary").textContent = `${options.rows.toLocaleString()} rows · ${options.models.length} models · ` +
    `${options.datasets.length} datasets · budgets ${options.budgets.join(", ")}`;
}

async function drawCurve() {
  const dataset = $("dataset").value, metric = $("metric").value;
  const models = [$("model").value, $("compare").value].filter((m, i) => m && (i === 0 || m !== $("model").value));
  const traces = [];
  let budgets = [];
  for (const [i, model] of models.entries()) {
    let c;
    try { c = await api("curve", { model, dataset, metric }); } catch (e) { continue; }
    const x = c.budget.map(Math.log2);
    budgets = [...new Set([...budgets, ...c.budget])].sort((a, b) => a - b);
    const band = { mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false, legendgroup: model };
    traces.push({ ...band, x, y: c.hi, name: `${model} band` });
    traces.push({ ...band, x, y: c.lo, fill: "tonexty", fillcolor: COLORS[i] + "30", name: `${model} band` });
    traces.push({ x, y: c.value, name: model, legendgroup: model, mode: "lines+markers",
      line: { color: COLORS[i], simplify: false }, customdata: c.budget.map((b, j) => [b, c.n_problems[j]]),
      hovertemplate: `${escapeHtml(model)}<br>B=%{customdata[0]}<br>${escapeHtml(c.label)}=%{y:.3f} over %{customdata[1]} problems<extra></extra>` });
  }
  const layout = { margin: { t: 10, r: 10 }, xaxis: budgetAxis(budgets), yaxis: { title: { text: metric } },
    legend: { orientation: "h", y: -0.25 } };
  await Plotly.react($("curve"), traces, layout, PLOT_CONFIG);
  $("curve").dataset.models = models.join(",");
  $("curve").dataset.points = JSON.stringify(budgets);
}

function pointsOf(p, indices) {
  // x (log2 cost), y and hover data [B, k, cost, lo, hi] of the points `indices` of a table of columns
  return { x: indices.map((i) => Math.log2(p.cost[i])), y: indices.map((i) => p.value[i]),
    customdata: indices.map((i) => [p.budget[i], p.k[i], p.cost[i], p.lo[i], p.hi[i]]) };
}

function computeHover(name, label, reached = "") {
  return `${escapeHtml(name)}<br>${reached}B=%{customdata[0]} · k=%{customdata[1]}<br>cost=%{customdata[2]:.0f} tokens<br>` +
    `${escapeHtml(label)}=%{y:.3f} (95% band %{customdata[3]:.3f}–%{customdata[4]:.3f})<extra></extra>`;
}

async function drawCompute() {
  const model = $("model").value, dataset = $("dataset").value, metric = $("compute-metric").value;
  let c;
  try { c = await api("compute", { model, dataset, metric }); } catch (e) {
    await Plotly.react($("compute"), [], { margin: { t: 10, r: 10 } }, PLOT_CONFIG);
    $("compute-answer").textContent = e.message;
    $("compute-scores").tBodies[0].innerHTML = "";
    return;
  }
  const p = c.points, all = p.k.map((_, i) => i);
  const traces = [];
  const budgets = [...new Set(p.budget)].sort((a, b) => a - b);
  for (const [j, b] of budgets.entries()) {  // B fixed, k growing: one thin line per budget
    const at = all.filter((i) => p.budget[i] === b).sort((i, m) => p.k[i] - p.k[m]);
    traces.push({ ...pointsOf(p, at), name: "k growing at fixed B", legendgroup: "parallel", showlegend: j === 0,
      mode: "lines+markers", line: { color: BUDGET_LINE, width: 1 }, marker: { size: 4 },
      hovertemplate: computeHover(`B = ${b}`, c.label) });
  }
  const sequential = all.filter((i) => p.k[i] === 1).sort((i, m) => p.budget[i] - p.budget[m]);
  const k1 = pointsOf(p, sequential);
  const band = { x: k1.x, mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false, legendgroup: "k1" };
  traces.push({ ...band, y: sequential.map((i) => p.hi[i]), name: "k = 1 band" });
  traces.push({ ...band, y: sequential.map((i) => p.lo[i]), fill: "tonexty", fillcolor: COLORS[0] + "30", name: "k = 1 band" });
  traces.push({ ...k1, name: "k = 1 (along the budget)", legendgroup: "k1", mode: "lines+markers",
    line: { color: COLORS[0], simplify: false }, hovertemplate: computeHover("k = 1", c.label) });
  const f = c.frontier;
  traces.push({ ...pointsOf(f, f.cost.map((_, i) => i)), name: "compute frontier", mode: "lines",
    line: { color: COLORS[1], width: 2.5, shape: "hv" }, hovertemplate: computeHover("frontier", c.label, "reached by ") });
  const layout = { margin: { t: 10, r: 10 }, xaxis: costAxis(p.cost), yaxis: { title: { text: c.label }, rangemode: "nonnegative" },
    legend: { orientation: "h", y: -0.25 } };
  await Plotly.react($("compute"), traces, layout, PLOT_CONFIG);
  $("compute").dataset.pair = `${model}|${dataset}`;
  $("compute").dataset.metric = metric;
  $("compute-answer").textContent = c.answer ?? "(no points to compare: no graded seeds for this model and dataset)";
  $("compute-scores").tBodies[0].innerHTML = c.scores.map((s) => `<tr><td>${escapeHtml(s.curve)}</td>` +
    `<td class="num">${fmt(s.n_points)}</td><td class="num">${fmt(s.breakthroughness)}</td>` +
    `<td class="num">${fmt(s.p_breakthroughness)}</td><td class="num">${fmt(s.parallel_points)}</td></tr>`).join("");
}

async function drawLeaderboard() {
  const params = { metric: $("metric").value, model: $("model").value, dataset: $("dataset").value,
    by: state.sort.by, ascending: state.sort.ascending ? "1" : "", ranking: $("ranking").value, limit: 50 };
  let table;
  try { table = await api("emergence", params); } catch (e) { $("leaderboard-meta").textContent = e.message; return; }
  const columns = LEADER_COLUMNS.filter((c) => table.columns.includes(c));
  $("leaderboard").tHead.innerHTML = "<tr><th>#</th>" + columns.map((c) =>
    `<th data-column="${c}" class="${c === state.sort.by ? "sorted" : ""}">${c}${c === state.sort.by ? (state.sort.ascending ? " ▲" : " ▼") : ""}</th>`).join("") + "</tr>";
  $("leaderboard").tBodies[0].innerHTML = table.rows.map((r, i) =>
    `<tr data-problem="${escapeHtml(r.problem_id)}" data-model="${escapeHtml(r.model)}" data-dataset="${escapeHtml(r.dataset)}">` +
    `<td class="num">${table.offset + i + 1}</td>` + columns.map((c) =>
      `<td class="${typeof r[c] === "number" ? "num" : ""}">${escapeHtml(fmt(r[c]))}</td>`).join("") + "</tr>").join("");
  const how = table.ranking === "reviewed"
    ? `, curves moving by at least ${table.min_range} (|I(y)|, signed_range) only, significant first ` +
      `(${table.unranked} moving less not ranked)`
    : " alone (scale-free: a curve that barely moves can rank first)";
  $("leaderboard-meta").textContent = `${table.total} complete problem curves of ${table.metric}, ranked by ${table.by}` +
    how + (table.ascending ? "; least emergent first" : "; most emergent first, p-values smallest first");
}

function unclosedNote(a) {
  // METHOD §4: an answer cut by the answer cap is unfinished (graded wrong); one that ended on its own is graded as written
  if (!a.unclosed) return "";
  const why = a.truncated === true ? "cut by the answer cap: graded wrong"
    : a.truncated === false ? "unclosed, ended on its own" : "unclosed";
  return ` <small class="unclosed" title="the forced \\boxed{ never closed">(${why})</small>`;
}

async function openProblem(model, dataset, problemId, seed = null) {
  const p = await api("problem", { model, dataset, problem_id: problemId, metric: $("metric").value, seed });
  state.problem = { model, dataset, problemId };
  $("problem-panel").hidden = false;
  $("problem-title").textContent = `${p.problem_id} · ${p.model} · ${p.dataset}`;
  $("problem-question").textContent = p.question ?? `(question unavailable: ${p.question_note})`;
  $("problem-gold").textContent = p.gold;
  fill($("seed"), p.seeds.map(String), {}, false);
  $("seed").value = String(p.seed);
  const metrics = Object.keys(p.curve).filter((k) => k !== "budget");
  const traces = metrics.map((m, i) => ({ x: p.curve.budget.map(Math.log2), y: p.curve[m], name: m,
    mode: "lines+markers", line: { color: COLORS[i % 2], simplify: false } }));
  await Plotly.react($("problem-curve"), traces, { margin: { t: 10, r: 10 }, xaxis: budgetAxis(p.curve.budget),
    yaxis: { range: [-0.05, 1.05] }, legend: { orientation: "h", y: -0.25 } }, PLOT_CONFIG);
  $("budget-table").tBodies[0].innerHTML = p.budgets.map((b) => {
    const answers = b.answers.map((a) => `${a.seed}: <span class="${a.correct === 1 ? "ok" : "bad"}">` +
      `${escapeHtml(a.answer ?? "∅")} ${a.correct === 1 ? "✔" : "✘"}</span>` + unclosedNote(a)).join("<br>");
    const top = b.top_answers.map((t) => `${escapeHtml(t.answer)} ${fmt(t.p, 2)}`).join(", ");
    const tail = b.thinking ? "…" + b.thinking.slice(-240) : "";
    return `<tr data-budget="${b.budget}"><td class="num">${b.budget}</td><td class="num">${fmt(b.thinking_tokens)}</td>` +
      `<td>${answers}</td><td class="num">${fmt(b.accuracy)}</td><td class="num">${fmt(b.p_correct)}</td>` +
      `<td>${top}</td><td class="thought">${escapeHtml(tail)}</td></tr>`;
  }).join("");
  $("reasoning").innerHTML = markCuts(p.reasoning.text, p.reasoning.cuts);
  for (const tr of $("leaderboard").tBodies[0].rows) tr.classList.toggle("open", tr.dataset.problem === problemId);
}

function markCuts(text, cuts) {
  if (!text) return "(no reasoning stored for this seed)";
  let html = "", at = 0;
  for (const { budget, chars } of [...cuts].sort((a, b) => a.chars - b.chars)) {
    html += escapeHtml(text.slice(at, chars)) + `<span class="cut" data-budget="${budget}" title="budget ${budget} stopped here">▍${budget}</span>`;
    at = Math.max(at, chars);
  }
  return html + escapeHtml(text.slice(at));
}

async function drawProgress() {
  const p = await api("progress");
  const running = p.runs.some((r) => r.state === "running");
  $("progress-state").textContent = running ? "running · refreshing every 2 s" : "";
  $("progress").innerHTML = p.runs.map((r) => {
    const pct = (a, b) => (b ? (100 * a) / b : 100);
    const rows = r.pairs.map((x) => `<tr><td>${escapeHtml(x.model)}</td><td>${escapeHtml(x.dataset)}</td>` +
      `<td class="num">${x.cells_done}/${x.cells_total}</td><td class="num">${x.rows_done}/${x.rows_total}</td><td><span class="bar"><span style="width:${pct(x.rows_done, x.rows_total)}%"></span></span></td></tr>`).join("");
    const failures = r.failures.map((f) => `<div class="failure">${escapeHtml(f.unit)} (${f.attempts} attempts): ${escapeHtml(f.error)}</div>`).join("");
    return `<div class="run" data-run="${escapeHtml(r.run)}" data-state="${r.state}"><b>${escapeHtml(r.sweep || r.run)}</b> · ${r.state} · ` +
      `cells <span class="cells-done">${r.cells_done}</span>/${r.cells_total} · rows <span class="rows-done">${r.rows_done}</span>/${r.rows_total}` +
      ` · ${r.tokens_per_s ? Math.round(r.tokens_per_s).toLocaleString() + " tok/s" : "– tok/s"} · ${r.failures.length} failures` +
      `<table><tr><th>model</th><th>dataset</th><th>cells</th><th>rows</th><th></th></tr>${rows}</table>${failures}</div>`;
  }).join("");
  if (p.generation !== state.generation) {  // new shards landed: the curves and the table move too
    await loadOptions();
    await redraw();
  }
  return running;
}

async function pollProgress() {
  let running = false;
  try { running = await drawProgress(); } catch (e) { $("progress").textContent = e.message; }
  setTimeout(pollProgress, running ? 2000 : 10000);
}

async function redraw() { await Promise.all([drawCurve(), drawLeaderboard(), drawCompute()]); }

async function main() {
  const info = await api("info");
  if (info.dashboard_url) { $("dashboard-link").href = info.dashboard_url; $("dashboard-link").hidden = false; }
  const runs = await api("runs");
  $("report-links").innerHTML = runs.filter((r) => r.report).map((r) =>
    `<a href="/api/runs/${encodeURIComponent(r.name)}/files/${r.report}" target="_blank">report (${escapeHtml(r.name)})</a>`).join(" ");
  await loadOptions();
  for (const id of ["model", "dataset", "compare"]) $(id).addEventListener("change", redraw);
  $("metric").addEventListener("change", () => { state.pickedMetric = true; redraw(); });
  $("ranking").addEventListener("change", drawLeaderboard);
  $("compute-metric").addEventListener("change", drawCompute);
  $("leaderboard").tHead.addEventListener("click", (e) => {
    const column = e.target.closest("th")?.dataset.column;
    if (!column) return;
    state.sort = { by: column, ascending: state.sort.by === column ? !state.sort.ascending : false };
    drawLeaderboard();
  });
  $("leaderboard").tBodies[0].addEventListener("click", (e) => {
    const tr = e.target.closest("tr");
    if (tr) openProblem(tr.dataset.model, tr.dataset.dataset, tr.dataset.problem);
  });
  $("seed").addEventListener("change", () => {
    const p = state.problem;
    if (p) openProblem(p.model, p.dataset, p.problemId, $("seed").value);
  });
  await redraw();
  document.body.dataset.ready = "1";
  pollProgress();
}

main().catch((e) => { document.body.insertAdjacentHTML("afterbegin", `<p class="failure">${escapeHtml(e.message)}</p>`); });

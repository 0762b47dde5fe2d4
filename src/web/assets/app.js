// The llm_proxy web view. Everything from a record reaches the page through textContent (or
// attribute values that are never executed): nothing is inserted as HTML.
"use strict";

const flows = new Map(); // id -> summary
let selected = null;
let renderQueued = false;
const MAX_ROWS = 5000;

// --- DOM helpers -------------------------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fold(summary, ...children) {
  return el("details", null, el("summary", { text: summary }), ...children);
}

const $ = (id) => document.getElementById(id);

// --- Formatting ----------------------------------------------------------------------------

function fmtTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}
const fmtNum = (n) => (n === null || n === undefined ? "" : Number(n).toLocaleString());
const fmtMs = (n) => (n === null || n === undefined ? "" : Math.round(n).toLocaleString());
const fmtCost = (n) => (n === null || n === undefined ? "" : n < 0.01 ? n.toPrecision(3) : n.toFixed(4));

function statusClass(f) {
  if (f.state === "in_flight") return "inflight";
  if (f.state === "error") return "error";
  return f.status ? String(Math.floor(f.status / 100)) : "error";
}

// --- Flow list ---------------------------------------------------------------------------

function filters() {
  return {
    host: $("f-host").value.trim().toLowerCase(),
    model: $("f-model").value.trim().toLowerCase(),
    status: $("f-status").value,
    text: $("f-text").value.trim().toLowerCase(),
  };
}

function matches(f, q) {
  if (q.host && !f.host.toLowerCase().includes(q.host)) return false;
  if (q.model && !(f.model || "").toLowerCase().includes(q.model)) return false;
  if (q.status && statusClass(f) !== q.status) return false;
  if (q.text) {
    const hay = [f.id, f.method, f.host, f.path, f.model, f.error, String(f.status)].join(" ").toLowerCase();
    if (!hay.includes(q.text)) return false;
  }
  return true;
}

function visibleFlows() {
  const q = filters();
  const out = [];
  for (const f of flows.values()) if (matches(f, q)) out.push(f);
  out.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
  return out;
}

function row(f) {
  const cls = "state-" + f.state + " status-" + statusClass(f) + (f.id === selected ? " selected" : "");
  return el(
    "tr",
    { class: cls, "data-id": f.id, onclick: () => showDetail(f.id) },
    el("td", { text: fmtTime(f.time) }),
    el("td", { text: f.method }),
    el("td", { text: f.host }),
    el("td", { class: "path", text: f.path, title: f.path }),
    el("td", { class: "status", text: f.state === "in_flight" ? (f.status ? f.status + " …" : "…") : f.status || f.error }),
    el("td", { text: f.model || "" }),
    el("td", { class: "num", text: fmtNum(f.input_tokens) }),
    el("td", { class: "num", text: fmtNum(f.output_tokens) }),
    el("td", { class: "num", text: fmtCost(f.cost_usd) }),
    el("td", { class: "num", text: f.state === "in_flight" ? "" : fmtMs(f.duration_ms) }),
    el("td", { class: "num", text: fmtMs(f.ttft_ms) })
  );
}

function render() {
  renderQueued = false;
  const list = visibleFlows();
  const body = $("flows").tBodies[0];
  body.replaceChildren(...list.slice(0, MAX_ROWS).map(row));
  let inTok = 0, outTok = 0, cost = 0, inflight = 0, errors = 0;
  for (const f of list) {
    inTok += f.input_tokens || 0;
    outTok += f.output_tokens || 0;
    cost += f.cost_usd || 0;
    if (f.state === "in_flight") inflight++;
    if (f.state === "error" || f.status >= 400) errors++;
  }
  $("totals").replaceChildren(
    el("span", { id: "total-flows", text: list.length + " of " + flows.size + " flows" }),
    el("span", { text: inflight + " in flight" }),
    el("span", { text: errors + " errors" }),
    el("span", { text: fmtNum(inTok) + " tokens in" }),
    el("span", { text: fmtNum(outTok) + " tokens out" }),
    el("span", { text: "$" + (fmtCost(cost) || "0") })
  );
  drawCharts(list);
}

function queueRender() {
  if (!renderQueued) {
    renderQueued = true;
    requestAnimationFrame(render);
  }
}

function upsert(summary) {
  flows.set(summary.id, summary);
  // The page keeps as many flows as it shows: the oldest arrivals go first.
  for (const id of flows.keys()) {
    if (flows.size <= MAX_ROWS) break;
    if (id !== selected) flows.delete(id);
  }
  queueRender();
  if (summary.id === selected && summary.state !== "in_flight") showDetail(summary.id);
}

// --- Charts (canvas) ---------------------------------------------------------------------

function colorOf(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return "hsl(" + (h % 360) + ",60%,45%)";
}

function drawCharts(list) {
  drawTokens($("chart-tokens"), list);
  drawLatency($("chart-latency"), list);
}

function prepare(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#666";
  return ctx;
}

// Cumulative tokens (in + out) over time, one line per model; the cost in the legend.
function drawTokens(canvas, list) {
  const ctx = prepare(canvas);
  const calls = list.filter((f) => f.model).slice().reverse();
  ctx.fillText("tokens over time by model (cumulative)", 4, 12);
  if (calls.length === 0) return;
  const t0 = Date.parse(calls[0].time), t1 = Date.parse(calls[calls.length - 1].time);
  const byModel = new Map();
  for (const f of calls) {
    const m = byModel.get(f.model) || { points: [], total: 0, cost: 0 };
    m.total += (f.input_tokens || 0) + (f.output_tokens || 0);
    m.cost += f.cost_usd || 0;
    m.points.push([Date.parse(f.time), m.total]);
    byModel.set(f.model, m);
  }
  const max = Math.max(1, ...[...byModel.values()].map((m) => m.total));
  const W = canvas.width - 160, H = canvas.height - 30;
  const x = (t) => 30 + (t1 > t0 ? ((t - t0) / (t1 - t0)) * (W - 30) : W - 30);
  const y = (v) => 20 + H - (v / max) * H;
  let legend = 24;
  for (const [model, m] of byModel) {
    ctx.strokeStyle = ctx.fillStyle = colorOf(model);
    ctx.beginPath();
    ctx.moveTo(x(m.points[0][0]), y(0));
    for (const [t, v] of m.points) ctx.lineTo(x(t), y(v));
    ctx.stroke();
    ctx.fillText(model.slice(0, 18) + " $" + (fmtCost(m.cost) || "0"), W + 10, legend);
    legend += 13;
  }
  ctx.fillStyle = "#666";
  ctx.fillText(fmtNum(max), 2, 26);
}

// Histogram of durations and times to first token (ms, log scale buckets).
function drawLatency(canvas, list) {
  const ctx = prepare(canvas);
  ctx.fillText("latency (grey) and time to first token (blue), ms", 4, 12);
  const edges = [10, 30, 100, 300, 1000, 3000, 10000, 30000, Infinity];
  const count = (vals) => {
    const c = new Array(edges.length).fill(0);
    for (const v of vals) c[edges.findIndex((e) => v < e)]++;
    return c;
  };
  const done = list.filter((f) => f.state !== "in_flight");
  const dur = count(done.map((f) => f.duration_ms).filter((v) => v !== null));
  const ttft = count(done.map((f) => f.ttft_ms).filter((v) => v !== null));
  const max = Math.max(1, ...dur, ...ttft);
  const H = canvas.height - 36, bw = (canvas.width - 20) / edges.length;
  edges.forEach((e, i) => {
    const x0 = 10 + i * bw;
    ctx.fillStyle = "#aaa";
    ctx.fillRect(x0, 20 + H - (dur[i] / max) * H, bw / 2 - 2, (dur[i] / max) * H);
    ctx.fillStyle = "#3b7dd8";
    ctx.fillRect(x0 + bw / 2 - 2, 20 + H - (ttft[i] / max) * H, bw / 2 - 2, (ttft[i] / max) * H);
    ctx.fillStyle = "#666";
    ctx.fillText(e === Infinity ? "more" : "<" + e, x0, canvas.height - 3);
  });
}

// --- Detail ------------------------------------------------------------------------------

function headerTable(headers) {
  if (!headers) return el("p", { class: "muted", text: "(not logged)" });
  const rows = [];
  for (const [name, values] of Object.entries(headers)) {
    for (const v of Array.isArray(values) ? values : [values]) {
      rows.push(el("tr", null, el("th", { text: name }), el("td", { text: String(v) })));
    }
  }
  return el("table", { class: "headers" }, el("tbody", null, ...rows));
}

const PAGE = 64 * 1024;

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

// A body, pretty printed when it is JSON, shown a page at a time.
function bodyView(part) {
  if (!part || !part.body) return el("p", { class: "muted", text: "(no body)" });
  const text = part.body_encoding === "base64" ? "[base64] " + part.body : pretty(part.body);
  const pre = el("pre", { class: "body" });
  let shown = Math.min(text.length, PAGE);
  pre.textContent = text.slice(0, shown);
  const box = el("div", null, pre);
  if (part.body_truncated) box.append(el("p", { class: "muted", text: "(cut at the capture limit; " + fmtNum(part.body_size) + " bytes on the wire)" }));
  if (shown < text.length) {
    const more = el("button", { type: "button", text: "show more" });
    more.addEventListener("click", () => {
      shown = Math.min(text.length, shown + PAGE);
      pre.textContent = text.slice(0, shown);
      if (shown >= text.length) more.remove();
    });
    box.append(more);
  }
  return box;
}

function shellQuote(s) {
  return "'" + String(s).replace(/'/g, "'\\''") + "'";
}

function curlOf(record) {
  const r = record.request || {};
  const parts = ["curl", "-X", r.method || "GET", shellQuote(r.url || "")];
  for (const [name, values] of Object.entries(r.header || {})) {
    if (/^(content-length|host|accept-encoding)$/i.test(name)) continue;
    for (const v of Array.isArray(values) ? values : [values]) parts.push("-H", shellQuote(name + ": " + v));
  }
  if (r.body && r.body_encoding !== "base64") parts.push("--data-raw", shellQuote(r.body));
  return parts.join(" ");
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "copied";
  } catch {
    const area = el("textarea", { class: "copy", readonly: "" });
    area.value = text;
    button.after(area);
    area.select();
  }
}

async function showDetail(id) {
  selected = id;
  for (const tr of $("flows").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.id === id);
  const pane = $("detail");
  pane.hidden = false;
  let data;
  try {
    const res = await fetch("/api/flows/" + encodeURIComponent(id));
    data = await res.json();
    if (!res.ok) throw new Error(data.error || res.status);
  } catch (e) {
    pane.replaceChildren(el("p", { class: "error", text: "cannot load the flow: " + e.message }));
    return;
  }
  if (selected !== id) return;
  const s = data.summary, record = data.record;
  const close = el("button", { type: "button", class: "close", text: "×", title: "close" });
  close.addEventListener("click", () => {
    selected = null;
    pane.hidden = true;
    pane.replaceChildren();
    queueRender();
  });
  const head = el("div", { class: "detail-head" }, close, el("h2", { text: s.method + " " + s.host + s.path }),
    el("p", { text: [s.state === "in_flight" ? "in flight" : s.status || s.error, s.model, s.duration_ms !== null ? fmtMs(s.duration_ms) + " ms" : ""].filter(Boolean).join(" · ") }));
  const parts = [head];
  if (!record) {
    parts.push(el("p", { class: "muted", text: s.state === "in_flight" ? "The flow is in flight: its detail comes when it is done." : "The detail of this flow is no longer kept." }));
    pane.replaceChildren(...parts);
    return;
  }
  const curl = el("button", { type: "button", text: "copy as curl" });
  curl.addEventListener("click", () => copyText(curlOf(record), curl));
  parts.push(el("div", { class: "actions" }, curl,
    el("a", { href: "/api/flows/" + encodeURIComponent(id) + "/record", download: id + ".json", text: "download record" }),
    el("a", { href: "/api/har?ids=" + encodeURIComponent(id), download: id + ".har", text: "HAR" })));
  if (record.error) parts.push(el("p", { class: "error", text: record.error.kind + ": " + record.error.message }));
  if (record.llm) parts.push(conversation(record));
  if (data.timeline) parts.push(timelineView(data.timeline));
  parts.push(el("h3", { text: "Request" }), headerTable(record.request && record.request.header), bodyView(record.request));
  if (record.response) {
    parts.push(el("h3", { text: "Response " + record.response.status }), headerTable(record.response.header), bodyView(record.response));
  }
  if (record.tags) parts.push(fold("tags", el("pre", { text: JSON.stringify(record.tags, null, 2) })));
  pane.replaceChildren(...parts);
}

// --- Conversation view -------------------------------------------------------------------

function textOf(content) {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((c) => (typeof c === "string" ? c : c.text || c.content || JSON.stringify(c))).join("\n");
  return JSON.stringify(content, null, 2);
}

function argsText(args) {
  if (typeof args !== "string") return JSON.stringify(args, null, 2);
  return pretty(args);
}

function image(src) {
  // Only inline (data:) images are shown: the page fetches nothing but the proxy.
  if (typeof src === "string" && src.startsWith("data:image/")) return el("img", { class: "thumb", src, alt: "image" });
  return el("p", { class: "muted", text: "[image " + String(src).slice(0, 120) + "]" });
}

function message(role, ...children) {
  return el("div", { class: "msg role-" + role }, el("div", { class: "role", text: role }), ...children);
}

function toolCall(name, id, args) {
  return el("div", { class: "tool-call" }, el("div", { class: "tool-name", text: "→ " + name + (id ? " (" + id + ")" : "") }), el("pre", { text: argsText(args) }));
}

function toolResult(name, id, content) {
  return message("tool", el("div", { class: "tool-name", text: "← " + (name || "tool") + (id ? " (" + id + ")" : "") }), el("pre", { text: textOf(content) }));
}

// Parts of a message in any provider's shape.
function contentParts(content, names) {
  if (typeof content === "string") return [el("div", { class: "text", text: content })];
  if (!Array.isArray(content)) return content ? [el("pre", { text: JSON.stringify(content, null, 2) })] : [];
  const out = [];
  for (const p of content) {
    if (typeof p === "string") out.push(el("div", { class: "text", text: p }));
    else if (p.type === "text" || p.type === "input_text" || p.type === "output_text") out.push(el("div", { class: "text", text: p.text }));
    else if (p.type === "image_url") out.push(image(p.image_url && (p.image_url.url || p.image_url)));
    else if (p.type === "input_image") out.push(image(p.image_url));
    else if (p.type === "image" && p.source) out.push(image(p.source.type === "base64" ? "data:" + p.source.media_type + ";base64," + p.source.data : p.source.url));
    else if (p.type === "thinking" || p.type === "reasoning") out.push(fold("reasoning", el("pre", { text: p.thinking || textOf(p.summary) })));
    else if (p.type === "tool_use") {
      names.set(p.id, p.name);
      out.push(toolCall(p.name, p.id, p.input));
    } else if (p.type === "tool_result") out.push(toolResult(names.get(p.tool_use_id), p.tool_use_id, p.content));
    else if (p.text !== undefined) out.push(el("div", { class: "text", text: p.text }));
    else if (p.functionCall) out.push(toolCall(p.functionCall.name, "", p.functionCall.args));
    else if (p.functionResponse) out.push(toolResult(p.functionResponse.name, "", JSON.stringify(p.functionResponse.response, null, 2)));
    else if (p.inlineData) out.push(image("data:" + p.inlineData.mimeType + ";base64," + p.inlineData.data));
    else out.push(el("pre", { text: JSON.stringify(p, null, 2) }));
  }
  return out;
}

function requestMessages(body) {
  const names = new Map(); // tool call id -> tool name
  const out = [];
  const system = body.system ?? body.instructions ?? (body.systemInstruction && body.systemInstruction.parts);
  if (system) out.push(message("system", ...contentParts(system, names)));
  const list = body.messages || body.contents || (typeof body.input === "string" ? [{ role: "user", content: body.input }] : body.input) || [];
  for (const m of Array.isArray(list) ? list : []) {
    if (m.type === "function_call") {
      names.set(m.call_id, m.name);
      out.push(message("assistant", toolCall(m.name, m.call_id, m.arguments)));
    } else if (m.type === "function_call_output") {
      out.push(toolResult(names.get(m.call_id), m.call_id, m.output));
    } else if (m.role === "tool") {
      out.push(toolResult(names.get(m.tool_call_id), m.tool_call_id, m.content));
    } else {
      const role = m.role || "user";
      const parts = contentParts(m.content ?? m.parts, names);
      for (const c of m.tool_calls || []) {
        names.set(c.id, c.function && c.function.name);
        parts.push(toolCall(c.function && c.function.name, c.id, c.function && c.function.arguments));
      }
      out.push(message(role === "model" ? "assistant" : role, ...parts));
    }
  }
  return out;
}

function conversation(record) {
  const llm = record.llm;
  const box = el("section", { class: "conversation" }, el("h3", { text: "Conversation" }));
  let body = null;
  if (record.request && record.request.body && record.request.body_encoding !== "base64") {
    try {
      body = JSON.parse(record.request.body);
    } catch {
      body = null;
    }
  }
  if (body && typeof body === "object") {
    if (Array.isArray(body.tools) && body.tools.length) {
      box.append(fold(body.tools.length + " tool definitions", el("pre", { text: JSON.stringify(body.tools, null, 2) })));
    }
    box.append(...requestMessages(body));
  }
  const out = llm.output;
  if (out) {
    const parts = [];
    if (out.reasoning) parts.push(fold("reasoning", el("pre", { text: out.reasoning })));
    if (out.content) parts.push(el("div", { class: "text", text: out.content }));
    if (out.refusal) parts.push(el("div", { class: "error", text: "refusal: " + out.refusal }));
    for (const c of out.tool_calls || []) parts.push(toolCall(c.function && c.function.name, c.id, c.function && c.function.arguments));
    box.append(message("answer", ...parts));
  }
  const u = llm.usage || {};
  const usage = Object.entries(u).map(([k, v]) => k.replace(/_tokens$/, "").replace(/_/g, " ") + " " + fmtNum(v));
  const cost = llm.cost_usd ? "$" + llm.cost_usd.total + " (in $" + llm.cost_usd.input + ", out $" + llm.cost_usd.output + ")" : "no price known";
  box.append(el("p", { class: "usage", text: [llm.provider + " " + llm.api, llm.response_model || llm.request_model, usage.join(", "), cost, llm.finish_reason ? "finish: " + llm.finish_reason : "", llm.first_token_ms !== undefined ? "first token " + llm.first_token_ms + " ms" : "", llm.incomplete ? "incomplete" : ""].filter(Boolean).join(" · ") }));
  return box;
}

// --- Stream timeline ---------------------------------------------------------------------

// When the pieces of a streamed answer arrived: a step chart of the events so far against
// the milliseconds since the request, and the arrivals as a table (folded).
function timelineView(t) {
  const pts = t.points || [];
  const box = el("section", { class: "timeline" }, el("h3", { text: "Stream timeline" }));
  let gap = 0;
  for (let i = 1; i < pts.length; i++) gap = Math.max(gap, pts[i][0] - pts[i - 1][0]);
  const first = pts.length ? pts[0][0] : null, last = pts.length ? pts[pts.length - 1][0] : null;
  box.append(el("p", { class: "timeline-summary", text: [fmtNum(t.events) + " events", fmtNum(t.pieces) + " pieces", fmtNum(t.bytes) + " bytes",
    first !== null ? "first at " + fmtMs(first) + " ms" : "", last !== null ? "last at " + fmtMs(last) + " ms" : "",
    pts.length > 1 ? "longest gap " + fmtMs(gap) + " ms" : "", pts.length < t.pieces ? "first " + fmtNum(pts.length) + " pieces shown" : ""].filter(Boolean).join(" · ") }));
  const canvas = el("canvas", { width: 600, height: 110 });
  box.append(canvas);
  const ctx = prepare(canvas);
  ctx.fillText("events received over time (ms since the request)", 4, 12);
  if (pts.length) {
    const maxT = Math.max(1, last), maxE = Math.max(1, t.events, pts[pts.length - 1][2]);
    const W = canvas.width - 50, H = canvas.height - 40;
    const x = (ms) => 40 + (ms / maxT) * W, y = (e) => 20 + H - (e / maxE) * H;
    ctx.strokeStyle = "#3b7dd8";
    ctx.beginPath();
    ctx.moveTo(x(0), y(0));
    let prev = 0;
    for (const [ms, , events] of pts) {
      ctx.lineTo(x(ms), y(prev));
      ctx.lineTo(x(ms), y(events));
      prev = events;
    }
    ctx.stroke();
    ctx.fillStyle = "#666";
    ctx.fillText(fmtNum(maxE), 2, 26);
    ctx.fillText("0", 30, canvas.height - 6);
    ctx.fillText(fmtMs(maxT) + " ms", canvas.width - 60, canvas.height - 6);
  }
  const rows = pts.map(([ms, bytes, events], i) => el("tr", null, el("td", { text: fmtMs(ms) }),
    el("td", { text: fmtNum(events - (i ? pts[i - 1][2] : 0)) }), el("td", { text: fmtNum(bytes) })));
  box.append(fold("arrivals", el("table", { class: "arrivals" },
    el("thead", null, el("tr", null, el("th", { text: "ms" }), el("th", { text: "events" }), el("th", { text: "bytes so far" }))),
    el("tbody", null, ...rows))));
  return box;
}

// --- Start -------------------------------------------------------------------------------

function downloadHar() {
  const ids = visibleFlows().filter((f) => f.state !== "in_flight").slice(0, 1000).map((f) => f.id);
  if (ids.length === 0) return;
  const a = el("a", { href: "/api/har?ids=" + ids.map(encodeURIComponent).join(","), download: "flows.har" });
  document.body.append(a);
  a.click();
  a.remove();
}

async function start() {
  for (const id of ["f-host", "f-model", "f-text"]) $(id).addEventListener("input", queueRender);
  $("f-status").addEventListener("change", queueRender);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("har").addEventListener("click", downloadHar);
  const res = await fetch("/api/flows");
  const data = await res.json();
  for (const f of data.flows) flows.set(f.id, f);
  $("mode").textContent = data.live ? "live" : "records";
  document.body.dataset.ready = "true";
  queueRender();
  if (!data.live) return;
  const events = new EventSource("/api/events?since=" + data.version);
  for (const kind of ["started", "updated", "finished"]) {
    events.addEventListener(kind, (e) => upsert(JSON.parse(e.data)));
  }
  events.addEventListener("open", () => $("mode").classList.remove("offline"));
  events.addEventListener("error", () => $("mode").classList.add("offline"));
}

start();

/* slawatch reports: the compliance report and the SLA log for a manager, read from
 *   GET /api/reports/compliance?period=&by=&<filters>  (table, totals, and the per-day chart)
 *   GET /api/reports/log?on=&sort=&order=&limit=&after=&<filters>  (one keyset page)
 * and downloaded as CSV from the same URLs with format=csv.
 *
 * The filters are this page's own query string, with the API's names and meanings (`to`
 * is the first day *not* included), so a report can be bookmarked; the "To" field shows
 * the last day included. Without dates the page shows this calendar month in the server's
 * time zone (its report_time_zone, learnt from the API's `time_zone`).
 *
 * The log pages by cursor: "Next" passes the page's `next`; the cursors of the pages come
 * through are kept on a stack for "Previous". Errors of the API (400 {error, parameter},
 * 503 {error}) are shown above the reports and mark the field they name.
 *
 * Test hooks: [data-testid], section[data-state] = loading | ready | error, tr[data-key]
 * with td[data-field][data-value] in the log, g[data-testid="chart-day"][data-day].
 */
"use strict";
(() => {
  const API = "/api/reports";
  const PAGE_SIZES = [25, 50, 100, 200];
  const LIST_FILTERS = ["department", "agent", "level"]; // text fields, comma-separated
  const ONE_FILTERS = ["metric", "status"]; // selects
  const URL_ONLY_FILTERS = ["channel", "queue", "tenant", "customer_group"]; // from a link
  const GROUPS = ["department", "level", "metric", "agent", "channel", "queue", "priority",
    "customer_group", "tenant"];
  const METRICS = {
    first_reply: "first reply", next_reply: "next reply", chat_reply: "chat reply",
    call_answer: "call answer", resolution: "resolution",
  };
  const GROUP_LABELS = { customer_group: "customer group" };
  /** The log's columns: the row's field, its header, and the API's sort key if it sorts. */
  const LOG_COLUMNS = [
    { field: "conversation_id", label: "Ticket / chat / call", sort: "conversation_id" },
    { field: "requester", label: "Requester", sort: "requester" },
    { field: "department", label: "Department", sort: "department" },
    { field: "agent", label: "Agent", sort: "agent" },
    { field: "level", label: "Level", sort: "level" },
    { field: "metric", label: "Metric", sort: "metric" },
    { field: "status", label: "Status", sort: "status" },
    { field: "started_at", label: "SLA start", sort: "started" },
    { field: "due_at", label: "Due", sort: "due" },
    { field: "stopped_at", label: "Closed", sort: "stopped" },
    { field: "remaining_s", label: "Remaining", sort: "remaining" },
    { field: "stop", label: "Stop" },
    { field: "reason", label: "Reason" },
  ];
  const SORTS = new Set(LOG_COLUMNS.filter((c) => c.sort).map((c) => c.sort));
  const DEFAULTS = {
    period: "day", by: ["department"], goal: 80, on: "start", sort: "started", order: "desc",
    limit: 50,
  };
  /** Which control an API parameter is about (to mark it invalid). */
  const CONTROLS = {
    from: "f-from", to: "f-to", tz: "f-tz", time_zone: "f-tz", department: "f-department",
    agent: "f-agent", level: "f-level", metric: "f-metric", status: "f-status",
    period: "f-period", on: "f-on", limit: "f-limit", goal: "f-goal",
  };

  const $ = (id) => document.getElementById(id);
  const isNum = (x) => typeof x === "number" && Number.isFinite(x);
  const pad = (n) => String(n).padStart(2, "0");

  /** An element: el("td", {class: "x", "data-field": "y"}, "text" | Node | [...]). */
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
    }
    for (const child of [].concat(children ?? [])) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of [].concat(children ?? [])) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // --- formatting ------------------------------------------------------------------------

  /** Working time for a person: 45 s, 12 min, 3 h 05 min, 2 d 4 h. */
  function duration(seconds) {
    if (!isNum(seconds)) return "—";
    const abs = Math.abs(seconds);
    const s = Math.round(abs);
    if (s < 60) return `${s} s`;
    const m = Math.round(abs / 60);
    if (m < 60) return `${m} min`;
    if (m < 1440) return `${Math.floor(m / 60)} h ${pad(m % 60)} min`;
    const h = Math.round(abs / 3600);
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  /** Seconds left: "12 min", or "overdue 5 min" when negative. */
  function remaining(seconds) {
    if (!isNum(seconds)) return "—";
    return seconds < 0 ? `overdue ${duration(seconds)}` : duration(seconds);
  }

  const percent = (x) => (isNum(x) ? `${+x.toFixed(1)}%` : "—");
  const count = (x) => (isNum(x) ? x.toLocaleString("en-US") : "—");

  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  /** "2 Mar 14:05" in ``zone`` (the browser's zone if that one is not known), with the
   * year when it is not ``year`` (the report's first): short, as a log has three a row. */
  function localTime(iso, zone, year) {
    if (!iso) return "—";
    const instant = new Date(iso);
    if (Number.isNaN(instant.getTime())) return String(iso);
    let parts;
    try {
      parts = timeFormat(zone).formatToParts(instant);
    } catch (err) {
      parts = timeFormat(undefined).formatToParts(instant);
    }
    const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
    const day = `${Number(p.day)} ${MONTHS[Number(p.month) - 1]}${p.year === year ? "" : ` ${p.year}`}`;
    return `${day} ${p.hour}:${p.minute}`;
  }

  const formats = new Map();
  function timeFormat(zone) {
    const key = zone || "";
    if (!formats.has(key)) {
      formats.set(key, new Intl.DateTimeFormat("en-GB", {
        timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      }));
    }
    return formats.get(key);
  }

  // --- calendar days (YYYY-MM-DD strings; arithmetic in UTC, where days are 24 h) ------

  const DAY_MS = 86400000;
  const dayMs = (day) => Date.UTC(+day.slice(0, 4), +day.slice(5, 7) - 1, +day.slice(8, 10));
  const dayOf = (ms) => new Date(ms).toISOString().slice(0, 10);
  const addDays = (day, n) => dayOf(dayMs(day) + n * DAY_MS);
  const isDay = (text) => /^\d{4}-\d{2}-\d{2}$/.test(text || "") && !Number.isNaN(dayMs(text));
  const monthStart = (day) => `${day.slice(0, 8)}01`;
  function nextMonth(day) {
    const y = +day.slice(0, 4);
    const m = +day.slice(5, 7);
    return m === 12 ? `${y + 1}-01-01` : `${y}-${pad(m + 1)}-01`;
  }

  /** Today's date in ``zone``. */
  function today(zone) {
    let format;
    try {
      format = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" });
    } catch (err) {
      format = new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit" });
    }
    const p = Object.fromEntries(format.formatToParts(new Date()).map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day}`;
  }

  /** [first day, last day included] of a quick range. */
  function quickRange(name, zone) {
    const now = today(zone);
    if (name === "last-month") {
      const first = monthStart(addDays(monthStart(now), -1));
      return [first, addDays(monthStart(now), -1)];
    }
    if (name === "last-7") return [addDays(now, -6), now];
    if (name === "last-30") return [addDays(now, -29), now];
    return [monthStart(now), addDays(nextMonth(now), -1)]; // this month
  }

  function periodLabel(day, period) {
    if (!isDay(day)) return String(day ?? "—");
    const date = new Date(dayMs(day));
    if (period === "month") {
      return date.toLocaleDateString("en-GB", { timeZone: "UTC", month: "long", year: "numeric" });
    }
    const weekday = date.toLocaleDateString("en-GB", { timeZone: "UTC", weekday: "short" });
    return period === "week" ? `week of ${day}` : `${weekday} ${day}`;
  }

  // --- the filters: one state, the page's query string, the form -------------------------

  const state = {
    serverZone: null, tz: null, from: null, toIncl: null,
    department: [], agent: [], level: [], metric: "", status: "",
    extra: {}, // URL_ONLY_FILTERS -> [values]
    ...structuredClone(DEFAULTS),
  };
  let cursors = [null]; // the `after` of every log page come through; the last is this page's
  let nextCursor = null;

  const splitList = (text) => [...new Set(String(text || "").split(",").map((v) => v.trim()).filter(Boolean))];

  /** The filters both reports share, with the API's names (``to`` exclusive). */
  function filterParams() {
    const params = new URLSearchParams();
    params.set("from", state.from);
    params.set("to", addDays(state.toIncl, 1));
    if (state.tz) params.set("tz", state.tz);
    for (const name of LIST_FILTERS) for (const value of state[name]) params.append(name, value);
    for (const name of ONE_FILTERS) if (state[name]) params.append(name, state[name]);
    for (const name of URL_ONLY_FILTERS) for (const value of state.extra[name] || []) params.append(name, value);
    return params;
  }

  function complianceParams(period, by) {
    const params = new URLSearchParams({ period });
    if (by.length) params.set("by", by.join(","));
    for (const [k, v] of filterParams()) params.append(k, v);
    return params;
  }

  function logParams() {
    const params = new URLSearchParams({ on: state.on, sort: state.sort, order: state.order });
    for (const [k, v] of filterParams()) params.append(k, v);
    return params;
  }

  function withParams(path, params, extra) {
    const all = new URLSearchParams(params);
    for (const [k, v] of Object.entries(extra || {})) all.set(k, v);
    return `${path}?${all}`;
  }

  /** The page's own query string: the filters and the page's options. */
  function pageQuery() {
    const params = filterParams();
    params.set("period", state.period);
    params.set("by", state.by.join(","));
    params.set("goal", String(state.goal));
    params.set("on", state.on);
    params.set("sort", state.sort);
    params.set("order", state.order);
    params.set("limit", String(state.limit));
    return params;
  }

  function readLocation() {
    const q = new URLSearchParams(location.search);
    const from = q.get("from");
    const to = q.get("to");
    if (isDay(from) && isDay(to) && from < to) {
      state.from = from;
      state.toIncl = addDays(to, -1);
    }
    if (q.get("tz")) state.tz = q.get("tz");
    for (const name of LIST_FILTERS) state[name] = q.getAll(name).flatMap(splitList);
    for (const name of ONE_FILTERS) state[name] = q.get(name) || "";
    state.extra = {};
    for (const name of URL_ONLY_FILTERS) if (q.getAll(name).length) state.extra[name] = q.getAll(name);
    if (["day", "week", "month"].includes(q.get("period"))) state.period = q.get("period");
    if (q.has("by")) state.by = splitList(q.get("by")).filter((g) => GROUPS.includes(g));
    const goal = Number(q.get("goal"));
    if (q.has("goal") && goal >= 0 && goal <= 100) state.goal = goal;
    if (["start", "due", "stop"].includes(q.get("on"))) state.on = q.get("on");
    if (SORTS.has(q.get("sort"))) state.sort = q.get("sort");
    if (["asc", "desc"].includes(q.get("order"))) state.order = q.get("order");
    if (PAGE_SIZES.includes(Number(q.get("limit")))) state.limit = Number(q.get("limit"));
  }

  function writeLocation() {
    const url = `${location.pathname}?${pageQuery()}`;
    if (url !== `${location.pathname}${location.search}`) history.replaceState(null, "", url);
  }

  /** The form shows the state. */
  function fillForm() {
    $("f-from").value = state.from || "";
    $("f-to").value = state.toIncl || "";
    $("f-tz").value = state.tz || "";
    for (const name of LIST_FILTERS) $(`f-${name}`).value = state[name].join(", ");
    for (const name of ONE_FILTERS) {
      const select = $(`f-${name}`);
      if (state[name] && ![...select.options].some((o) => o.value === state[name])) {
        select.append(el("option", { value: state[name] }, state[name]));
      }
      select.value = state[name];
    }
    $("f-period").value = state.period;
    for (const box of document.querySelectorAll('input[name="by"]')) box.checked = state.by.includes(box.value);
    $("f-goal").value = String(state.goal);
    $("f-on").value = state.on;
    $("f-limit").value = String(state.limit);
    renderExtra();
  }

  /** The state takes the form's values. */
  function readForm() {
    state.from = $("f-from").value;
    state.toIncl = $("f-to").value;
    state.tz = $("f-tz").value.trim() || state.serverZone;
    for (const name of LIST_FILTERS) state[name] = splitList($(`f-${name}`).value);
    for (const name of ONE_FILTERS) state[name] = $(`f-${name}`).value;
    state.period = $("f-period").value;
    // In the order of the boxes: the table's columns follow it.
    state.by = [...document.querySelectorAll('input[name="by"]')].filter((b) => b.checked).map((b) => b.value);
    const goal = Number($("f-goal").value);
    if ($("f-goal").value !== "" && goal >= 0 && goal <= 100) state.goal = goal;
    state.on = $("f-on").value;
    state.limit = Number($("f-limit").value) || DEFAULTS.limit;
  }

  /** Filters that came with a link and have no field: shown, each removable. */
  function renderExtra() {
    const box = $("extra");
    const chips = [];
    for (const [name, values] of Object.entries(state.extra)) {
      for (const value of values) {
        chips.push(el("span", { class: "chip", "data-filter": name }, [
          `${GROUP_LABELS[name] || name} = ${value} `,
          el("button", { type: "button", "aria-label": `remove the filter ${name} = ${value}`, "data-name": name, "data-value": value }, "×"),
        ]));
      }
    }
    box.replaceChildren(...(chips.length ? [el("span", { class: "hint" }, "also:"), ...chips] : []));
    box.hidden = !chips.length;
  }

  // --- talking to the API --------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, parameter, status) {
      super(message);
      this.parameter = parameter || null;
      this.status = status || 0;
    }
  }

  async function getJson(url) {
    let response;
    try {
      response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" });
    } catch (err) {
      throw new ApiError(`the server did not answer (${err.message})`, null, 0);
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (err) {
      body = null;
    }
    if (response.status === 401 || response.status === 403) {
      throw new ApiError("not authorised: open this page once with ?token=<the web token>", null, response.status);
    }
    if (!response.ok) {
      const message = body && typeof body.error === "string" ? body.error
        : `HTTP ${response.status} ${response.statusText} ${text.slice(0, 200)}`.trim();
      throw new ApiError(message, body && body.parameter, response.status);
    }
    if (!body || typeof body !== "object") throw new ApiError(`not a JSON document: ${url}`, null, response.status);
    return body;
  }

  // --- errors ------------------------------------------------------------------------------

  const errors = new Map(); // source -> ApiError

  function setError(source, error) {
    if (error) errors.set(source, error);
    else errors.delete(source);
    renderErrors();
  }

  function renderErrors() {
    for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    const seen = new Map();
    for (const error of errors.values()) seen.set(`${error.message}\u0000${error.parameter}`, error);
    const box = $("error");
    box.hidden = seen.size === 0;
    if (!seen.size) return;
    const first = [...seen.values()][0];
    $("error-message").textContent = [...seen.values()].map((e) => e.message).filter((m, i, all) => all.indexOf(m) === i).join(" · ");
    $("error-parameter").textContent = first.parameter || "";
    $("error-parameter-wrap").hidden = !first.parameter;
    box.dataset.status = String(first.status);
    for (const error of seen.values()) {
      const control = error.parameter && $(CONTROLS[error.parameter] || "");
      if (control) control.setAttribute("aria-invalid", "true");
      if (error.parameter === "by") document.querySelector("fieldset.by").setAttribute("aria-invalid", "true");
    }
  }

  // --- the compliance report ------------------------------------------------------------------

  let complianceSeq = 0;
  let chartDoc = null;

  async function loadCompliance() {
    const seq = ++complianceSeq;
    const section = $("compliance");
    section.dataset.state = "loading";
    section.setAttribute("aria-busy", "true");
    const by = [...state.by];
    const period = state.period;
    const tableUrl = withParams(`${API}/compliance`, complianceParams(period, by));
    const dayUrl = withParams(`${API}/compliance`, complianceParams("day", []));
    const range = [state.from, state.toIncl];
    const goal = state.goal;
    try {
      const table = getJson(tableUrl);
      const days = dayUrl === tableUrl ? table : getJson(dayUrl);
      const [doc, perDay] = await Promise.all([table, days]);
      if (seq !== complianceSeq) return;
      renderCompliance(doc, by, period, goal);
      chartDoc = { doc: perDay, range, goal };
      renderChart();
      const csv = $("compliance-csv");
      csv.href = withParams(`${API}/compliance`, complianceParams(period, by), { format: "csv" });
      csv.setAttribute("download", `sla-compliance-${range[0]}-${range[1]}.csv`);
      csv.removeAttribute("aria-disabled");
      section.dataset.state = "ready";
      setError("server", null); // the store answers now, if it did not when the page opened
      setError("compliance", null);
    } catch (error) {
      if (seq !== complianceSeq) return;
      if (!(error instanceof ApiError)) throw error;
      section.dataset.state = "error";
      $("compliance-csv").removeAttribute("href");
      $("compliance-csv").setAttribute("aria-disabled", "true");
      setError("compliance", error);
    } finally {
      if (seq === complianceSeq) section.removeAttribute("aria-busy");
      renderStatus();
    }
  }

  function groupValue(name, value) {
    if (value === null || value === undefined) return el("span", { class: "none" }, "none");
    return name === "metric" ? METRICS[value] || value : value;
  }

  function renderCompliance(doc, by, period, goal) {
    const columns = Array.isArray(doc.by) ? doc.by : by;
    const head1 = el("tr", {}, [
      el("th", { scope: "col", rowspan: 2, class: "text" }, "Period"),
      ...columns.map((name) => el("th", { scope: "col", rowspan: 2, class: "text" }, cap(GROUP_LABELS[name] || name))),
      el("th", { scope: "col", rowspan: 2 }, "Met"),
      el("th", { scope: "col", rowspan: 2 }, "Missed"),
      el("th", { scope: "col", rowspan: 2 }, "Cancelled"),
      el("th", { scope: "col", rowspan: 2 }, "Compliance"),
      el("th", { scope: "colgroup", colspan: 3, class: "group met" }, "Met: working time"),
      el("th", { scope: "colgroup", colspan: 3, class: "group missed" }, "Missed: working time"),
    ]);
    const sub = ["avg", "max", "min"];
    const head2 = el("tr", {}, [...sub, ...sub].map((name) => el("th", { scope: "col", class: "sub" }, name)));
    $("compliance-head").replaceChildren(head1, head2);

    const width = columns.length + 10;
    const rows = (doc.rows || []).map((row) => el("tr", {
      "data-period": row.period, "data-group": JSON.stringify(columns.map((c) => row[c] ?? null)),
    }, [
      el("th", { scope: "row", class: "text", "data-field": "period", "data-value": row.period }, periodLabel(row.period, period)),
      ...columns.map((c) => el("td", { class: "text", "data-field": c, "data-value": row[c] ?? "" }, groupValue(c, row[c]))),
      numberCell("met", row.met),
      numberCell("missed", row.missed),
      numberCell("cancelled", row.cancelled),
      pctCell("compliance_pct", row.compliance_pct, goal),
      ...["met_avg_s", "met_max_s", "met_min_s", "missed_avg_s", "missed_max_s", "missed_min_s"].map((f) =>
        el("td", { "data-field": f, "data-value": isNum(row[f]) ? row[f] : "", title: isNum(row[f]) ? `${Math.round(row[f])} s` : null }, duration(row[f]))),
    ]));
    if (!rows.length) {
      rows.push(el("tr", { class: "empty" }, el("td", { colspan: width }, "No cycles stopped in this range with these filters.")));
    }
    $("compliance-rows").replaceChildren(...rows);

    const totals = doc.totals || {};
    $("compliance-foot").replaceChildren(el("tr", { "data-testid": "compliance-totals" }, [
      el("th", { scope: "row", class: "text", colspan: columns.length + 1 }, "Total"),
      numberCell("met", totals.met),
      numberCell("missed", totals.missed),
      numberCell("cancelled", totals.cancelled),
      pctCell("compliance_pct", totals.compliance_pct, goal),
      el("td", { colspan: 6 }),
    ]));
    for (const [name, value] of [["met", totals.met], ["missed", totals.missed], ["cancelled", totals.cancelled]]) {
      const node = $(`total-${name}`);
      node.textContent = count(value);
      node.dataset.value = isNum(value) ? String(value) : "";
    }
    const pct = $("total-pct");
    pct.textContent = percent(totals.compliance_pct);
    pct.dataset.value = isNum(totals.compliance_pct) ? String(totals.compliance_pct) : "";
    pct.dataset.state = goalState(totals.compliance_pct, goal);
    const zone = doc.time_zone || state.tz;
    $("meta").textContent = `${state.from} → ${state.toIncl} · ${zone}`;
  }

  const cap = (text) => text.charAt(0).toUpperCase() + text.slice(1);
  const goalState = (pct, goal) => (!isNum(pct) ? "none" : pct >= goal ? "good" : "bad");

  function numberCell(field, value) {
    return el("td", { "data-field": field, "data-value": isNum(value) ? value : "" }, count(value));
  }

  function pctCell(field, value, goal) {
    return el("td", {
      class: "pct", "data-field": field, "data-value": isNum(value) ? value : "", "data-state": goalState(value, goal),
    }, percent(value));
  }

  // --- the chart: per day, met and missed stacked, compliance % as a line ---------------------

  function renderChart() {
    const box = $("chart");
    if (!chartDoc) return;
    const { doc, range, goal } = chartDoc;
    const byDay = new Map((doc.rows || []).map((row) => [row.period, row]));
    const days = [];
    for (let day = range[0]; day <= range[1] && days.length < 1200; day = addDays(day, 1)) days.push(day);
    for (const day of byDay.keys()) if (!days.includes(day)) days.push(day); // never drop data
    days.sort();

    const width = Math.max(320, Math.floor(box.clientWidth || 800));
    const height = 250;
    const m = { top: 24, right: 46, bottom: 30, left: 46 };
    const plotW = width - m.left - m.right;
    const plotH = height - m.top - m.bottom;
    const band = plotW / Math.max(1, days.length);
    const barW = Math.max(1, Math.min(40, band * 0.7));
    const most = Math.max(1, ...[...byDay.values()].map((r) => (r.met || 0) + (r.missed || 0)));
    const top = niceCeiling(most);
    const yCount = (n) => m.top + plotH * (1 - n / top);
    const yPct = (p) => m.top + plotH * (1 - p / 100);
    const xMid = (i) => m.left + band * (i + 0.5);

    const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const y = m.top + plotH * (1 - f);
      return svg("g", { class: "tick" }, [
        svg("line", { x1: m.left, x2: m.left + plotW, y1: y, y2: y, class: f === 0 ? "axis" : "grid" }),
        svg("text", { x: m.left - 6, y: y + 4, "text-anchor": "end" }, String(Math.round(top * f))),
        svg("text", { x: m.left + plotW + 6, y: y + 4, "text-anchor": "start" }, `${Math.round(100 * f)}%`),
      ]);
    });
    const every = Math.max(1, Math.ceil(days.length / Math.max(1, plotW / 44)));
    const labels = days.map((day, i) => {
      if (i % every !== 0) return null;
      const date = new Date(dayMs(day));
      const text = i === 0 || day.endsWith("-01")
        ? date.toLocaleDateString("en-GB", { timeZone: "UTC", day: "numeric", month: "short" })
        : String(date.getUTCDate());
      return svg("text", { x: xMid(i), y: height - m.bottom + 16, "text-anchor": "middle", class: "day-label" }, text);
    });

    const groups = [];
    const points = [];
    const line = [];
    let drawing = false;
    days.forEach((day, i) => {
      const row = byDay.get(day);
      if (!row) {
        drawing = false;
        return;
      }
      const met = row.met || 0;
      const missed = row.missed || 0;
      const pct = row.compliance_pct;
      const x = xMid(i) - barW / 2;
      const parts = [
        svg("title", {}, `${periodLabel(day, "day")}: ${percent(pct)} compliance · ${met} met, ${missed} missed, ${row.cancelled || 0} cancelled`),
        svg("rect", { class: "met", x, width: barW, y: yCount(met), height: plotH * met / top }),
        svg("rect", { class: "missed", x, width: barW, y: yCount(met + missed), height: plotH * missed / top }),
      ];
      groups.push(svg("g", {
        "data-testid": "chart-day", "data-day": day, "data-met": met, "data-missed": missed,
        "data-cancelled": row.cancelled || 0, "data-pct": isNum(pct) ? pct : "",
      }, parts));
      if (isNum(pct)) {
        points.push(svg("circle", {
          class: "pct", "data-testid": "chart-point", "data-day": day, "data-pct": pct,
          cx: xMid(i), cy: yPct(pct), r: Math.max(2.5, Math.min(5, band / 4)),
        }, svg("title", {}, parts[0].textContent)));
        line.push(`${drawing ? "L" : "M"}${xMid(i).toFixed(1)},${yPct(pct).toFixed(1)}`);
        drawing = true;
      } else {
        drawing = false; // no line across a day without met or missed cycles
      }
    });

    const goalY = yPct(Math.min(100, Math.max(0, goal)));
    const picture = svg("svg", {
      width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "data-testid": "chart-svg",
      "aria-label": `Compliance per day from ${range[0]} to ${range[1]}: ${groups.length} days with cycles stopped`,
    }, [
      svg("g", { class: "ticks" }, grid),
      svg("g", { class: "labels" }, labels),
      svg("text", { x: 4, y: 10, class: "axis-name" }, "cycles"),
      svg("text", { x: width - 4, y: 10, class: "axis-name", "text-anchor": "end" }, "compliance"),
      svg("g", { class: "bars" }, groups),
      svg("line", { class: "goal", x1: m.left, x2: m.left + plotW, y1: goalY, y2: goalY }),
      line.length ? svg("path", { class: "pct-line", d: line.join(" ") }) : null,
      svg("g", { class: "points" }, points),
    ]);
    box.replaceChildren(picture);
    box.dataset.days = String(groups.length);
    box.dataset.width = String(width);
  }

  /** The smallest of 1, 2, 2.5, 5 × 10^n at or above ``x`` (axis maximum, in quarters). */
  function niceCeiling(x) {
    const power = 10 ** Math.floor(Math.log10(x));
    for (const step of [1, 2, 2.5, 4, 5, 10]) if (step * power >= x) return step * power;
    return 10 * power;
  }

  // --- the SLA log ------------------------------------------------------------------------------

  let logSeq = 0;

  function renderLogHead() {
    $("log-head").replaceChildren(...LOG_COLUMNS.map((column) => {
      if (!column.sort) return el("th", { scope: "col", class: "text" }, column.label);
      const active = state.sort === column.sort;
      const sort = active ? (state.order === "asc" ? "ascending" : "descending") : "none";
      const arrow = active ? (state.order === "asc" ? "▲" : "▼") : "↕";
      const align = column.field === "remaining_s" ? "number" : "text";
      return el("th", { scope: "col", class: align, "aria-sort": sort, "data-sort": column.sort }, el("button", {
        type: "button", class: "sort", "data-testid": `sort-${column.sort}`, "data-sort": column.sort,
        title: active ? `sorted ${sort}; click to sort ${state.order === "asc" ? "descending" : "ascending"}` : "click to sort ascending",
      }, [column.label, el("span", { class: "arrow", "aria-hidden": "true" }, arrow)]));
    }));
  }

  /** Show the page whose cursor is last in ``stack``. */
  async function loadLog(stack) {
    const seq = ++logSeq;
    const section = $("log");
    section.dataset.state = "loading";
    section.setAttribute("aria-busy", "true");
    renderLogHead();
    const params = logParams();
    const after = stack[stack.length - 1];
    const extra = { limit: String(state.limit) };
    if (after) extra.after = after;
    const zone = state.tz;
    try {
      const doc = await getJson(withParams(`${API}/log`, params, extra));
      if (seq !== logSeq) return;
      cursors = stack;
      nextCursor = doc.next || null;
      renderLog(doc, zone);
      const csv = $("log-csv");
      csv.href = withParams(`${API}/log`, params, { format: "csv" });
      csv.setAttribute("download", `sla-log-${state.from}-${state.toIncl}.csv`);
      csv.removeAttribute("aria-disabled");
      section.dataset.state = "ready";
      setError("log", null);
    } catch (error) {
      if (seq !== logSeq) return;
      if (!(error instanceof ApiError)) throw error;
      section.dataset.state = "error";
      $("log-csv").removeAttribute("href");
      $("log-csv").setAttribute("aria-disabled", "true");
      setError("log", error);
    } finally {
      if (seq === logSeq) section.removeAttribute("aria-busy");
      renderPager();
      renderStatus();
    }
  }

  function logCell(column, row, zone) {
    const field = column.field;
    const value = row[field];
    const attrs = { "data-field": field, "data-value": value ?? "", class: "text" };
    if (value === null || value === undefined || value === "") {
      return el("td", attrs, el("span", { class: "none" }, "—"));
    }
    if (field === "conversation_id") {
      attrs.class = "text id";
      return el("td", attrs, [
        el("span", { class: "kind", "data-kind": row.conversation_kind, title: row.channel || null }, row.conversation_kind || "?"),
        " ", value,
      ]);
    }
    if (field === "status") {
      return el("td", attrs, [
        el("span", { class: "status", "data-status": value }, value),
        row.late ? el("span", { class: "late", title: "declared after the fact (the stream read the events late)" }, " late") : null,
      ]);
    }
    if (field === "metric") return el("td", attrs, METRICS[value] || value);
    if (field.endsWith("_at")) {
      attrs.class = "time";
      attrs.title = `${localTime(value, zone, "")} (${zone}) · ${value}`;
      return el("td", attrs, localTime(value, zone, (state.from || "").slice(0, 4)));
    }
    if (field === "remaining_s") {
      attrs.class = "remaining";
      attrs["data-state"] = isNum(value) && value < 0 ? "overdue" : "left";
      attrs.title = isNum(value) ? `${Math.round(value)} s of working time` : null;
      return el("td", attrs, remaining(value));
    }
    if (field === "level" && row.priority) attrs.title = `priority ${row.priority}`;
    return el("td", attrs, value);
  }

  function renderLog(doc, zone) {
    const rows = (doc.rows || []).map((row) => el("tr", {
      "data-key": `${row.conversation_key}|${row.metric}|${row.cycle}`, "data-status": row.status,
    }, LOG_COLUMNS.map((column) => logCell(column, row, zone))));
    if (!rows.length) {
      rows.push(el("tr", { class: "empty" }, el("td", { colspan: LOG_COLUMNS.length }, "No cycles match these filters.")));
    }
    $("log-rows").replaceChildren(...rows);
    const total = isNum(doc.total) ? doc.total : null;
    const first = (cursors.length - 1) * state.limit;
    const shown = (doc.rows || []).length;
    const on = { start: "SLA start", due: "due", stop: "closed" }[state.on];
    $("log-count").textContent = total === null ? ""
      : `${count(total)} cycle${total === 1 ? "" : "s"} (by ${on} date)${shown ? ` · showing ${count(first + 1)}–${count(first + shown)}` : ""}`;
    $("log-count").dataset.value = total === null ? "" : String(total);
    for (const row of doc.rows || []) {
      for (const name of LIST_FILTERS) remember(name, row[name]);
    }
  }

  function renderPager() {
    $("prev").disabled = cursors.length <= 1;
    $("next").disabled = !nextCursor;
    const info = $("page-info");
    info.textContent = `page ${cursors.length}`;
    info.dataset.page = String(cursors.length);
  }

  // --- suggestions for the text filters: what the data shows ------------------------------------

  const known = { department: new Set(), agent: new Set(), level: new Set() };

  function remember(name, value) {
    if (typeof value !== "string" || !value || known[name].has(value)) return;
    known[name].add(value);
    const list = $(`list-${name}`);
    const options = [...known[name]].sort().map((v) => el("option", { value: v }));
    list.replaceChildren(...options);
  }

  let suggestedFor = "";
  async function loadSuggestions() {
    const params = new URLSearchParams({ period: "month", by: "department,agent,level", from: state.from, to: addDays(state.toIncl, 1) });
    if (state.tz) params.set("tz", state.tz);
    const key = params.toString();
    if (key === suggestedFor) return;
    suggestedFor = key;
    try {
      const doc = await getJson(`${API}/compliance?${key}`);
      for (const row of doc.rows || []) for (const name of LIST_FILTERS) remember(name, row[name]);
    } catch (error) {
      suggestedFor = "";
      if (!(error instanceof ApiError)) throw error;
      // Not shown on its own: this asks with a part of the compliance report's own
      // parameters, and that report, asked at the same time, shows the error.
      console.warn("reports: no suggestions for the filters:", error.message);
    }
  }

  // --- status line -------------------------------------------------------------------------------

  function renderStatus() {
    const states = [$("compliance").dataset.state, $("log").dataset.state];
    const node = $("status");
    let text;
    let value;
    if (states.includes("loading")) [value, text] = ["loading", "loading…"];
    else if (states.includes("error") || errors.size) [value, text] = ["error", "error: see above"];
    else {
      const now = new Date();
      [value, text] = ["ready", `updated ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`];
    }
    node.dataset.state = value;
    if (node.textContent !== text) node.textContent = text;
  }

  // --- actions ----------------------------------------------------------------------------------

  /** Check the form locally before asking: an error names its field like the API's. */
  function localProblem() {
    if (!isDay(state.from)) return new ApiError("give the first day of the range", "from", 0);
    if (!isDay(state.toIncl)) return new ApiError("give the last day of the range", "to", 0);
    if (state.from > state.toIncl) return new ApiError("the first day is after the last day", "from", 0);
    return null;
  }

  let scheduled = null;
  /** Reload the sections ``what`` names (compliance, log) once the current event is
   * handled: a text field's change and the form's submit on one Enter make one request. */
  function refresh(what) {
    if (!scheduled) {
      scheduled = new Set();
      setTimeout(run, 0);
    }
    for (const name of what) {
      scheduled.add(name);
      // Marked at once, so that whoever acted can wait for "ready".
      $(name).dataset.state = "loading";
    }
    renderStatus();
  }

  function run() {
    const what = scheduled;
    scheduled = null;
    const problem = localProblem();
    setError("form", problem);
    if (problem) {
      for (const name of what) $(name).dataset.state = "error";
      renderStatus();
      return;
    }
    writeLocation();
    if (what.has("compliance")) {
      loadCompliance();
      loadSuggestions();
    }
    if (what.has("log")) loadLog([null]);
  }

  function applyForm(what) {
    readForm();
    refresh(what || ["compliance", "log"]);
  }

  async function goToPage(stack) {
    $("log").dataset.state = "loading";
    renderStatus();
    await loadLog(stack);
    // "Next" on the last page (or "Previous" on the first) is now disabled: keep the
    // keyboard in the log rather than losing it to the page's start.
    const focused = document.activeElement;
    if (!focused || focused === document.body || focused.disabled) $("log-heading").focus();
  }

  function resetAll() {
    const zone = state.serverZone;
    Object.assign(state, structuredClone(DEFAULTS), { department: [], agent: [], level: [], metric: "", status: "", extra: {} });
    state.tz = zone;
    [state.from, state.toIncl] = quickRange("this-month", zone);
    fillForm();
    refresh(["compliance", "log"]);
  }

  function bind() {
    const form = $("filters");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      applyForm();
    });
    form.addEventListener("change", (event) => {
      const target = event.target;
      if (!(target instanceof HTMLElement) || target.closest("#extra")) return;
      if (target.id === "f-goal") {
        readForm();
        refresh(["compliance"]);
        return;
      }
      const complianceOnly = target.id === "f-period" || target.name === "by";
      applyForm(complianceOnly ? ["compliance"] : ["compliance", "log"]);
    });
    for (const button of document.querySelectorAll("[data-range]")) {
      button.addEventListener("click", () => {
        [state.from, state.toIncl] = quickRange(button.dataset.range, $("f-tz").value.trim() || state.serverZone);
        $("f-from").value = state.from;
        $("f-to").value = state.toIncl;
        applyForm();
      });
    }
    $("reset").addEventListener("click", resetAll);
    $("extra").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-name]");
      if (!button) return;
      const { name, value } = button.dataset;
      state.extra[name] = (state.extra[name] || []).filter((v) => v !== value);
      if (!state.extra[name].length) delete state.extra[name];
      renderExtra();
      $("f-department").focus();
      applyForm();
    });
    $("f-on").addEventListener("change", () => {
      state.on = $("f-on").value;
      refresh(["log"]);
    });
    $("f-limit").addEventListener("change", () => {
      state.limit = Number($("f-limit").value) || DEFAULTS.limit;
      refresh(["log"]);
    });
    $("log-head").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-sort]");
      if (!button) return;
      const key = button.dataset.sort;
      if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
      else [state.sort, state.order] = [key, "asc"];
      refresh(["log"]);
      renderLogHead();
      // The header was rebuilt: keep the keyboard where it was.
      document.querySelector(`#log-head button[data-sort="${key}"]`).focus();
    });
    $("next").addEventListener("click", () => {
      if (nextCursor) goToPage([...cursors, nextCursor]);
    });
    $("prev").addEventListener("click", () => {
      if (cursors.length > 1) goToPage(cursors.slice(0, -1));
    });
    for (const id of ["compliance-csv", "log-csv"]) {
      $(id).addEventListener("click", (event) => {
        if ($(id).getAttribute("aria-disabled") === "true") event.preventDefault();
      });
    }
    if (typeof ResizeObserver === "function") {
      let lastWidth = 0;
      new ResizeObserver(() => {
        const width = Math.floor($("chart").clientWidth);
        if (width !== lastWidth && chartDoc) renderChart();
        lastWidth = width;
      }).observe($("chart"));
    }
  }

  /** The server's zone: the API's ``time_zone`` for a request that names none. */
  async function learnServerZone() {
    const now = new Date();
    const stamp = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
    const params = new URLSearchParams({ period: "day", from: stamp(now.getTime()), to: stamp(now.getTime() + 1000) });
    try {
      const doc = await getJson(`${API}/compliance?${params}`);
      setError("server", null);
      return typeof doc.time_zone === "string" ? doc.time_zone : null;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setError("server", error);
      return null;
    }
  }

  async function start() {
    bind();
    readLocation();
    renderLogHead();
    if (typeof Intl.supportedValuesOf === "function") {
      $("tz-list").replaceChildren(...Intl.supportedValuesOf("timeZone").map((z) => el("option", { value: z })));
    }
    const zone = await learnServerZone();
    state.serverZone = zone || Intl.DateTimeFormat().resolvedOptions().timeZone;
    $("tz-hint").textContent = zone ? `server: ${zone}` : "server's zone unknown";
    $("tz-hint").dataset.zone = zone || "";
    if (!state.tz) state.tz = state.serverZone;
    if (!state.from) [state.from, state.toIncl] = quickRange("this-month", state.tz);
    fillForm();
    refresh(["compliance", "log"]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

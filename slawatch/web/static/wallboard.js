/* slawatch wallboard: shows the live view (the document of GET /wallboard/state) and keeps
 * it current through server-sent events (GET /wallboard/events, `event: view`), falling
 * back to polling the state every 5 s when the event stream keeps failing. Between views,
 * waits count up and due times count down each second on the browser's clock, corrected
 * by the offset between the view's `at_ms` and the browser's clock when it arrived.
 *
 * URL options: ?sl=asterisk|asterisk_sl2|genesys|connect picks the headline service level.
 * Test hooks: body[data-updated-ms] is Date.now() when the last view was applied.
 */
"use strict";
(() => {
  const BASE = location.pathname.replace(/\/+$/, "") || "/wallboard";
  const POLL_MS = 5000;
  const SSE_FAILURES_BEFORE_POLLING = 3;
  const SSE_RETRY_MS = 30000;
  const STALE_MS = 15000;
  const VARIANTS = { asterisk: "Asterisk", asterisk_sl2: "SL2", genesys: "Genesys", connect: "Connect" };
  const METRICS = {
    first_reply: "first reply", next_reply: "next reply", chat_reply: "chat reply",
    call_answer: "answer", resolution: "resolution",
  };
  const requested = new URLSearchParams(location.search).get("sl");
  const HEADLINE = requested in VARIANTS ? requested : "asterisk";

  let view = null; // the last document applied
  let offset = 0; // view.at_ms - Date.now() when it arrived: server time = Date.now() + offset
  let lastViewAt = 0; // Date.now() when the last view arrived
  let connection = "connecting"; // connecting | live | reconnecting | unauthorised
  let transport = "sse"; // sse | poll
  let source = null;
  let sseFailures = 0;
  let pollTimer = null;
  let sseRetryTimer = null;

  const $ = (id) => document.getElementById(id);
  const serverNow = () => Date.now() + offset;

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

  // --- formatting ------------------------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");
  const isNum = (x) => typeof x === "number" && Number.isFinite(x);

  /** m:ss under an hour, h:mm:ss under a day, then "2d 03h". */
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s >= 86400) return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`;
    if (s >= 3600) return `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
    return `${Math.floor(s / 60)}:${pad(s % 60)}`;
  }

  function clock(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  /** A ratio as a percent; one decimal when rounding would cross the goal (79.6 is not 80). */
  function percent(ratio, goal) {
    if (!isNum(ratio)) return "—";
    const whole = Math.round(ratio * 100);
    const crosses = isNum(goal) && (ratio < goal) !== (whole / 100 < goal);
    return `${crosses ? (ratio * 100).toFixed(1) : whole}%`;
  }

  const number = (x) => (isNum(x) ? String(+x.toFixed(1)) : "—");
  const seconds = (s) => (isNum(s) ? duration(s * 1000) : "—");

  // --- the queue table -------------------------------------------------------------------

  function slCell(field, win, goal) {
    const levels = (win && win.service_level) || {};
    const main = levels[HEADLINE];
    const state = !isNum(main) ? "none" : !isNum(goal) ? "neutral" : main >= goal ? "good" : "bad";
    const others = Object.keys(VARIANTS).filter((v) => v !== HEADLINE).map((v) =>
      el("span", { "data-variant": v, "data-value": isNum(levels[v]) ? levels[v] : "" },
        `${VARIANTS[v]} ${percent(levels[v])}`));
    return el("td", {
      class: "sl", "data-field": field, "data-state": state,
      "data-value": isNum(main) ? main : "", "data-offered": win ? win.offered : 0,
    }, [el("div", { class: "sl-main" }, percent(main, goal)), el("div", { class: "sl-variants" }, others)]);
  }

  function queueRow(name, q, target) {
    const windows = q.windows || {};
    const day = windows.day || null;
    const goal = target ? target.goal : commonGoal();
    const waiting = isNum(q.waiting) ? q.waiting : 0;
    return el("tr", { "data-queue": name, class: target ? "queue" : "overall" }, [
      el("td", { class: "name", "data-field": "name", title: name }, target ? name : "All queues"),
      el("td", { "data-field": "target" }, target && isNum(target.goal) && isNum(target.target_s)
        ? `${Math.round(target.goal * 100)}/${number(target.target_s)}` : ""),
      el("td", { "data-field": "waiting", "data-value": waiting, "data-state": waiting ? "busy" : "idle" }, waiting),
      el("td", {
        "data-field": "longest-wait", "data-tick": "wait",
        "data-base-ms": isNum(q.longest_wait_s) && waiting ? q.longest_wait_s * 1000 : "",
        "data-target-ms": target && isNum(target.target_s) ? target.target_s * 1000 : "",
      }, "—"),
      slCell("sl-day", day, goal),
      slCell("sl-15m", windows["15m"] || null, goal),
      el("td", { "data-field": "asa", "data-value": day && isNum(day.asa_s) ? day.asa_s : "" }, seconds(day && day.asa_s)),
      el("td", { "data-field": "abandon", "data-value": day && isNum(day.abandonment_rate) ? day.abandonment_rate : "" },
        percent(day && day.abandonment_rate)),
    ]);
  }

  /** The goal of every queue when they all share one (the "All queues" row's colour). */
  function commonGoal() {
    const goals = new Set((view.queues || []).map((q) => q.goal));
    return goals.size === 1 ? [...goals][0] : null;
  }

  function renderQueues() {
    const rows = (view.queues || []).map((q) => queueRow(q.queue, q, q));
    if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: 8 }, "no calls yet")));
    rows.push(queueRow("*", view.overall || {}, null));
    $("queue-rows").replaceChildren(...rows);
    $("headline-sl").textContent = `(${VARIANTS[HEADLINE]})`;
  }

  // --- the at-risk and breach panels -------------------------------------------------------

  const kindBadge = (kind) => el("span", { class: "kind", "data-kind": kind }, kind || "?");
  const where = (item) => item.department || item.queue || "—";

  function renderWatched() {
    // Tickets and chats first (they wait hours), then calls; soonest due first within each.
    const items = [...(view.watched || [])].sort((a, b) =>
      (a.kind === "call") - (b.kind === "call") || a.due_ms - b.due_ms || String(a.id).localeCompare(String(b.id)));
    const rows = items.map((w) => el("tr", {
      "data-id": w.id, "data-kind": w.kind, "data-metric": w.metric, "data-key": `${w.kind}:${w.id}:${w.metric}`,
      "data-due-ms": w.due_ms, "data-breached": w.breached ? "true" : "false",
    }, [
      el("td", { class: "kind-cell" }, kindBadge(w.kind)),
      el("td", { class: "id", "data-field": "id" }, w.id),
      el("td", { class: "metric", "data-field": "metric" }, METRICS[w.metric] || w.metric),
      el("td", { class: "where", "data-field": "where" }, where(w)),
      el("td", { class: "who", "data-field": "assignee" }, w.assignee || el("span", { class: "none" }, "unassigned")),
      el("td", { class: "group", "data-field": "customer-group" }, w.customer_group || ""),
      el("td", { class: "remaining", "data-field": "remaining", "data-tick": "due" }, ""),
    ]));
    if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: 7 }, "nothing at risk")));
    $("at-risk").replaceChildren(...rows);
    $("at-risk-count").textContent = items.length ? String(items.length) : "";
  }

  function renderBreaches() {
    const items = view.breaches || [];
    const rows = items.map((b) => el("tr", {
      "data-id": b.id, "data-kind": b.kind, "data-metric": b.metric, "data-detected-ms": b.detected_ms,
    }, [
      el("td", { class: "time", "data-field": "time" }, isNum(b.detected_ms) ? clock(b.detected_ms) : "—"),
      el("td", { class: "kind-cell" }, kindBadge(b.kind)),
      el("td", { class: "id", "data-field": "id" }, b.id),
      el("td", { class: "metric", "data-field": "metric" }, METRICS[b.metric] || b.metric),
      el("td", { class: "level", "data-field": "level" }, b.level || ""),
      el("td", { class: "where", "data-field": "where" }, where(b)),
    ]));
    if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: 6 }, "no breaches")));
    $("breaches").replaceChildren(...rows);
  }

  /** Hide the rows that do not fit their panel (nothing scrolls) and say how many. */
  function fit(tbodyId, moreId) {
    const body = $(tbodyId);
    const box = body.closest(".panel-body");
    const rows = [...body.rows];
    rows.forEach((row) => { row.hidden = false; });
    let hidden = 0;
    for (let i = rows.length - 1; i > 0 && box.scrollHeight > box.clientHeight + 1; i--) {
      rows[i].hidden = true;
      hidden++;
    }
    $(moreId).textContent = hidden ? `+${hidden} more` : "";
  }

  // --- header, status and the one-second tick ------------------------------------------------

  function renderStatus() {
    let state = "live";
    let text = transport === "poll" ? "live (polling)" : "live";
    const problems = [];
    if (view && view.error) problems.push(String(view.error));
    const missing = (view && view.missing_partitions) || [];
    if (missing.length) problems.push(`no data for partition${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);
    if (connection === "unauthorised") [state, text] = ["unauthorised", "not authorised"];
    else if (connection === "reconnecting") [state, text] = ["reconnecting", "reconnecting…"];
    else if (!view) [state, text] = ["connecting", "connecting…"];
    else if (view.error) [state, text] = ["error", problems.join(" · ")];
    else if (Date.now() - lastViewAt > STALE_MS) {
      [state, text] = ["stale", `no update for ${duration(Date.now() - lastViewAt)}`];
    } else if (missing.length) [state, text] = ["partial", problems.join(" · ")];
    const status = $("status");
    if (status.textContent !== text) status.textContent = text;
    status.dataset.state = state;
    status.dataset.transport = transport;
    status.title = text;
  }

  function tick() {
    if (view) {
      const now = serverNow();
      const since = Math.max(0, now - view.at_ms);
      for (const cell of document.querySelectorAll('[data-tick="wait"]')) {
        const base = cell.dataset.baseMs;
        if (base === "") { cell.textContent = "—"; continue; }
        const wait = Number(base) + since;
        cell.textContent = duration(wait);
        const target = cell.dataset.targetMs;
        cell.dataset.state = target !== "" && wait > Number(target) ? "bad" : "ok";
      }
      for (const cell of document.querySelectorAll('#at-risk [data-tick="due"]')) {
        const row = cell.parentElement;
        const left = Number(row.dataset.dueMs) - now;
        const overdue = row.dataset.breached === "true" || left < 0;
        cell.textContent = overdue ? `overdue ${duration(-left)}` : duration(left + 999);
        row.dataset.state = overdue ? "overdue" : "at-risk";
      }
    }
    renderStatus();
  }

  function apply(doc) {
    view = doc;
    lastViewAt = Date.now();
    offset = isNum(doc.at_ms) ? doc.at_ms - lastViewAt : 0;
    if (!isNum(doc.at_ms)) view.at_ms = lastViewAt;
    renderQueues();
    renderWatched();
    renderBreaches();
    $("view-time").textContent = clock(view.at_ms);
    const parts = isNum(doc.partitions) ? doc.partitions : "?";
    const workers = isNum(doc.workers) ? doc.workers : "?";
    $("meta").textContent = `${workers} worker${workers === 1 ? "" : "s"} · ${parts} partitions`;
    tick();
    fit("at-risk", "at-risk-more");
    fit("breaches", "breaches-more");
    document.body.dataset.atMs = String(view.at_ms);
    document.body.dataset.views = String(Number(document.body.dataset.views || 0) + 1);
    document.body.dataset.updatedMs = String(Date.now());
  }

  function receive(text) {
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      console.warn("wallboard: not a view", err);
      return;
    }
    if (doc && typeof doc === "object") apply(doc);
  }

  // --- transport: server-sent events, polling as the fallback --------------------------------

  function connectEvents() {
    if (!("EventSource" in window)) return startPolling();
    if (source) source.close();
    source = new EventSource(`${BASE}/events`, { withCredentials: true });
    const onView = (event) => {
      sseFailures = 0;
      connection = "live";
      if (transport === "poll") stopPolling();
      transport = "sse";
      receive(event.data);
    };
    source.addEventListener("view", onView);
    source.onmessage = onView; // a server that sends unnamed events
    source.onerror = () => {
      sseFailures++;
      // CLOSED: the server answered with an error (401, 404, ...): EventSource gives up.
      if (source.readyState === EventSource.CLOSED || sseFailures >= SSE_FAILURES_BEFORE_POLLING) {
        source.close();
        source = null;
        startPolling();
      } else if (transport === "sse") {
        connection = "reconnecting";
        renderStatus();
      }
    };
  }

  async function pollOnce() {
    try {
      const response = await fetch(`${BASE}/state`, { cache: "no-store", credentials: "same-origin" });
      if (response.status === 401 || response.status === 403) connection = "unauthorised";
      else if (!response.ok) connection = "reconnecting";
      else {
        const text = await response.text();
        if (transport === "poll") {
          connection = "live";
          receive(text);
        }
      }
    } catch (err) {
      connection = "reconnecting";
    }
    renderStatus();
  }

  function startPolling() {
    if (pollTimer) return;
    transport = "poll";
    pollOnce();
    pollTimer = setInterval(pollOnce, POLL_MS);
    // Try the event stream again now and then; its first view stops the polling.
    sseRetryTimer = setInterval(() => {
      if (!source && connection !== "unauthorised") {
        sseFailures = SSE_FAILURES_BEFORE_POLLING - 1; // one failure and it is back to polling
        connectEvents();
      }
    }, SSE_RETRY_MS);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    clearInterval(sseRetryTimer);
    pollTimer = sseRetryTimer = null;
  }

  function start() {
    setInterval(tick, 500);
    window.addEventListener("resize", () => {
      if (!view) return;
      fit("at-risk", "at-risk-more");
      fit("breaches", "breaches-more");
    });
    connectEvents();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

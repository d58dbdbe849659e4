// optivgi-csms dashboard: stations, sessions and site power, updated live from /api/v1/events.
// Plain ES module, no build step and nothing loaded from elsewhere. Every value from the server is put
// on the page as text (textContent), never as HTML.

import { drawChart } from "./chart.js";

const API = "/api/v1";
const TOKEN_KEY = "optivgi-csms.token";
const SITE_KEY = "optivgi-csms.site";
const HOUR = 3600 * 1000;
const HEARTBEAT_S = 15;
const MAX_EVENTS_SHOWN = 30;

const state = {
  token: localStorage.getItem(TOKEN_KEY),
  siteId: localStorage.getItem(SITE_KEY) || "default",
  sites: [],
  site: null,
  sitesApi: true,
  plan: null,
  stations: new Map(),
  sessions: new Map(),
  power: new Map(), // "station/evse" -> [[ms, kW], ...] (a step function)
  limitNow: null,
  stream: null,
};

const $ = (selector) => document.querySelector(selector);

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// --- the API ----------------------------------------------------------------------------------------------

async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401) {
    signOut("The token was refused (unknown or revoked): sign in again.");
  }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.detail) || `${response.status} ${response.statusText}`);
  }
  return data;
}

// --- small helpers --------------------------------------------------------------------------------------------

function ms(text) {
  const value = Date.parse(text);
  return Number.isNaN(value) ? null : value;
}

function kw(value, digits = 1) {
  return value === null || value === undefined || !Number.isFinite(value) ? "–" : `${value.toFixed(digits)} kW`;
}

function kwh(value) {
  return value === null || value === undefined || !Number.isFinite(value) ? "–" : `${value.toFixed(1)} kWh`;
}

function clock(text) {
  const value = ms(text);
  if (value === null) return "–";
  const date = new Date(value);
  const today = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return today ? time : `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

function node(tag, text, className) {
  const element = document.createElement(tag);
  if (text !== undefined && text !== null) element.textContent = text;
  if (className) element.className = className;
  return element;
}

function statusClass(status) {
  const word = (status || "").toLowerCase();
  if (word === "available") return "ok";
  if (["charging", "occupied", "preparing", "finishing", "suspendedev", "suspendedevse"].includes(word)) return "busy";
  if (["reserved"].includes(word)) return "warn";
  if (["faulted", "unavailable"].includes(word)) return "bad";
  return "off";
}

function onSite(stationId) {
  const station = state.stations.get(stationId);
  if (!state.sitesApi || !station) return true;
  return (station.site_id || "default") === state.siteId;
}

let timers = new Map();
function soon(key, fn, delay = 300) {
  // Coalesce a burst of events into one reload.
  clearTimeout(timers.get(key));
  timers.set(key, setTimeout(() => { timers.delete(key); fn().catch(report); }, delay));
}

function report(error) {
  if (!(error instanceof ApiError) || error.status !== 401) console.warn(error);
}

// --- loading --------------------------------------------------------------------------------------------------

async function loadSites() {
  try {
    const sites = await api("/sites");
    state.sites = Array.isArray(sites) ? sites : (sites && sites.items) || [];
    state.sitesApi = true;
  } catch (error) {
    if (error.status !== 404) throw error;
    state.sites = [];
    state.sitesApi = false; // an older CSMS without the sites endpoints: one site, no limit form
  }
  if (state.sites.length && !state.sites.some((site) => site.id === state.siteId)) {
    state.siteId = state.sites[0].id;
  }
  state.site = state.sites.find((site) => site.id === state.siteId) || null;
  renderSitePicker();
}

async function loadSite() {
  if (!state.sitesApi) return;
  state.site = await api(`/sites/${encodeURIComponent(state.siteId)}`);
  const index = state.sites.findIndex((site) => site.id === state.siteId);
  if (index >= 0) state.sites[index] = state.site;
  renderFigures();
  renderLimitForm();
  scheduleChart();
}

async function loadStations() {
  const stations = await api("/stations?limit=1000");
  state.stations = new Map(stations.map((station) => [station.id, station]));
  renderStations();
  renderReservationStations();
}

function addPowerSamples(key, samples) {
  // Power samples of one session: the total, or the phases summed when the station reports only those.
  const totals = new Map();
  const phases = new Map();
  for (const sample of samples) {
    if (sample.measurand !== "Power.Active.Import" || sample.value === null) continue;
    const t = ms(sample.timestamp);
    if (t === null) continue;
    const value = (sample.unit || "W").toLowerCase() === "kw" ? sample.value : sample.value / 1000;
    if (sample.phase) phases.set(t, (phases.get(t) || 0) + value);
    else totals.set(t, value);
  }
  const points = [...(totals.size ? totals : phases).entries()];
  for (const [t, value] of points) addPoint(key, t, value);
}

function addPoint(key, t, value) {
  const points = state.power.get(key) || [];
  if (!points.length || points[points.length - 1][0] <= t) points.push([t, value]);
  else {
    points.push([t, value]);
    points.sort((a, b) => a[0] - b[0]);
  }
  state.power.set(key, points);
}

function sessionFrom(detail) {
  const needs = detail.needs || {};
  return {
    id: detail.id,
    station_id: detail.station_id,
    evse_id: detail.evse_id,
    id_tag: detail.id_tag,
    started_at: detail.started_at,
    meter_start_wh: detail.meter_start_wh,
    delivered_kwh: detail.energy_kwh,
    wanted_kwh: needs.energy_kwh ?? detail.energy_target_kwh ?? null,
    departure_at: needs.departure_at ?? detail.departure_at ?? null,
    planned_kw: detail.plan ? detail.plan.power_now_kw : null,
    power_kw: null,
    charging_state: detail.charging_state,
  };
}

async function loadSession(id, { backfill = false } = {}) {
  const detail = await api(`/transactions/${id}?samples=${backfill ? 1000 : 1}`);
  const key = `${detail.station_id}/${detail.evse_id}`;
  if (backfill) addPowerSamples(key, detail.meter_values || []);
  if (detail.stopped_at) {
    state.sessions.delete(detail.id);
    const end = ms(detail.stopped_at);
    if (end !== null) addPoint(key, end, 0);
    return;
  }
  const session = sessionFrom(detail);
  const points = state.power.get(key);
  session.power_kw = points && points.length ? points[points.length - 1][1] : null;
  const previous = state.sessions.get(session.id);
  if (previous && previous.power_kw !== null && session.power_kw === null) session.power_kw = previous.power_kw;
  state.sessions.set(session.id, session);
}

async function loadSessions() {
  const since = new Date(Date.now() - 24 * HOUR).toISOString();
  const [open, closed] = await Promise.all([
    api("/transactions?state=open&limit=1000"),
    api(`/transactions?state=closed&since=${encodeURIComponent(since)}&limit=200`),
  ]);
  state.sessions = new Map();
  state.power = new Map();
  const recent = closed.filter((session) => (ms(session.stopped_at) || 0) > Date.now() - HOUR);
  // Each session's latest samples rebuild the last hour of the chart.
  await Promise.all([...open, ...recent].map((session) => loadSession(session.id, { backfill: true })));
  renderSessions();
  scheduleChart();
}

function normalisePlan(plan) {
  // The site's plan as step functions of the planned total and the limit it was held under.
  if (!plan) return null;
  const starts = [];
  let totals = [];
  let limits = [];
  if (Array.isArray(plan.slots)) {
    for (const slot of plan.slots) {
      starts.push(ms(slot.start));
      totals.push(slot.total_kw ?? slot.planned_kw ?? slot.power_kw ?? 0);
      limits.push(slot.limit_kw ?? null);
    }
  } else {
    const start = ms(plan.start);
    const resolution = (plan.resolution_s ?? 900) * 1000;
    limits = plan.limit_kw || [];
    totals = plan.total_kw || [];
    if (!totals.length && Array.isArray(plan.evs)) {
      totals = limits.map((_, k) => plan.evs.reduce((sum, ev) => sum + ((ev.power_kw || [])[k] || 0), 0));
    }
    const count = Math.max(limits.length, totals.length);
    for (let k = 0; k < count; k += 1) starts.push(start + k * resolution);
  }
  if (!starts.length || starts.some((t) => t === null)) return null;
  const resolution = plan.resolution_s ? plan.resolution_s * 1000 : starts.length > 1 ? starts[1] - starts[0] : 900000;
  const end = starts[starts.length - 1] + resolution;
  const total = starts.map((t, k) => [t, totals[k] ?? 0]).concat([[end, null]]);
  const limit = starts.map((t, k) => [t, limits[k] ?? null]).concat([[end, null]]);
  return { total, limit, end };
}

async function loadPlan() {
  if (!state.sitesApi) return;
  let plan = null;
  try {
    plan = await api(`/sites/${encodeURIComponent(state.siteId)}/plan`);
  } catch (error) {
    if (error.status !== 404) throw error; // 404: an unknown site
  }
  state.plan = normalisePlan(plan);
  // Each session's power in the plan's first slot, without asking for every session again.
  const planned = new Map(((plan && plan.evs) || []).map((ev) => [ev.transaction_id, (ev.power_kw || [])[0]]));
  for (const session of state.sessions.values()) {
    if (planned.has(session.id)) session.planned_kw = planned.get(session.id) ?? null;
  }
  renderSessions();
  renderFigures();
  scheduleChart();
}

async function loadAll() {
  await loadSites().catch(report);
  await Promise.all([loadStations(), loadSite()].map((p) => p.catch(report)));
  await Promise.all([loadSessions(), loadPlan()].map((p) => p.catch(report)));
}

// --- rendering ------------------------------------------------------------------------------------------------

function renderSitePicker() {
  const picker = $(".site-picker");
  const select = $("#site");
  picker.hidden = state.sites.length < 2;
  select.replaceChildren(...state.sites.map((site) => {
    const option = node("option", site.name ? `${site.name} (${site.id})` : site.id);
    option.value = site.id;
    option.selected = site.id === state.siteId;
    return option;
  }));
}

function renderStations() {
  const body = $("#stations tbody");
  const stations = [...state.stations.values()].filter((station) => onSite(station.id));
  stations.sort((a, b) => a.id.localeCompare(b.id));
  $("#stations-count").textContent = stations.length
    ? `(${stations.filter((station) => station.connected).length} of ${stations.length} connected)` : "";
  if (!stations.length) {
    const row = node("tr", null, "empty");
    const cell = node("td", "No stations yet.");
    cell.colSpan = 3;
    row.append(cell);
    body.replaceChildren(row);
    return;
  }
  body.replaceChildren(...stations.map((station) => {
    const row = node("tr");
    row.dataset.station = station.id;
    const name = node("td");
    name.append(node("strong", station.id));
    const about = [station.ocpp_version && `OCPP ${station.ocpp_version}`, station.vendor, station.model]
      .filter(Boolean).join(" · ");
    if (about) name.append(node("span", about, "sub"));
    const connection = node("td");
    connection.append(node("span", station.connected ? "Connected" : "Disconnected",
      `badge ${station.connected ? "ok" : "off"}`));
    const since = station.connected ? station.connected_since : station.last_disconnected_at;
    if (since) connection.append(node("span", `since ${clock(since)}`, "sub"));
    const connectors = node("td");
    const list = (station.connectors || []).filter((c) => c.evse_id > 0 || (station.connectors || []).length === 1);
    if (!list.length) connectors.append(node("span", "none reported", "sub"));
    for (const connector of list) {
      const label = `${connector.evse_id}${connector.connector_id > 1 ? `.${connector.connector_id}` : ""}: ${connector.status}`;
      // A disconnected station's statuses are only the last it reported: shown, but greyed.
      const badge = node("span", label, `badge ${station.connected ? statusClass(connector.status) : "off"}`);
      if (!station.connected) badge.title = "last reported status";
      badge.dataset.evse = connector.evse_id;
      connectors.append(badge);
    }
    row.append(name, connection, connectors);
    return row;
  }));
}

function renderSessions() {
  const body = $("#sessions tbody");
  const sessions = [...state.sessions.values()].filter((session) => onSite(session.station_id));
  sessions.sort((a, b) => `${a.station_id}/${a.evse_id}`.localeCompare(`${b.station_id}/${b.evse_id}`));
  $("#sessions-count").textContent = sessions.length ? `(${sessions.length})` : "";
  if (!sessions.length) {
    const row = node("tr", null, "empty");
    const cell = node("td", "No session charging.");
    cell.colSpan = 5;
    row.append(cell);
    body.replaceChildren(row);
    return;
  }
  body.replaceChildren(...sessions.map((session) => {
    const row = node("tr");
    row.dataset.transaction = session.id;
    const where = node("td");
    where.dataset.label = "Station / EVSE";
    where.append(node("strong", `${session.station_id} / ${session.evse_id}`));
    where.append(node("span", `#${session.id} since ${clock(session.started_at)}`, "sub"));
    const tag = node("td", session.id_tag || "–");
    tag.dataset.label = "Id tag";
    const power = node("td", kw(session.power_kw));
    power.dataset.label = "Power";
    power.className = "power";
    if (session.planned_kw !== null && session.planned_kw !== undefined) {
      power.append(node("span", `plan ${kw(session.planned_kw)}`, "sub"));
    }
    const energy = node("td");
    energy.dataset.label = "Energy";
    const box = node("div", null, "energy");
    const text = `${kwh(session.delivered_kwh)} of ${kwh(session.wanted_kwh)}`;
    box.append(node("span", text));
    if (Number.isFinite(session.wanted_kwh) && session.wanted_kwh > 0) {
      const bar = node("progress");
      bar.max = session.wanted_kwh;
      bar.value = Math.min(session.delivered_kwh || 0, session.wanted_kwh);
      bar.setAttribute("aria-label", `${session.station_id} / ${session.evse_id}: ${text}`);
      box.append(bar);
    }
    energy.append(box);
    const departure = node("td", clock(session.departure_at));
    departure.dataset.label = "Departure";
    row.append(where, tag, power, energy, departure);
    return row;
  }));
}

function siteLimitAt(t) {
  const site = state.site;
  if (!site) return state.limitNow;
  let value = site.limit_kw ?? null;
  for (const step of site.limit_schedule || []) {
    const start = ms(step.start);
    if (start !== null && start <= t) value = step.limit_kw ?? step.value ?? value;
  }
  return value;
}

function limitSeries(start, end) {
  // The connection limit over the window: the site's limit and its scheduled steps.
  const site = state.site;
  if (!site) {
    if (state.plan) return state.plan.limit;
    return state.limitNow === null ? [] : [[start, state.limitNow]];
  }
  const times = [start, ...(site.limit_schedule || []).map((step) => ms(step.start)).filter((t) => t > start && t < end)];
  return times.map((t) => [t, siteLimitAt(t)]);
}

function sitePower(start, now) {
  // The sum of every EVSE's latest power at each moment one of them changed.
  const keys = [...state.power.keys()].filter((key) => onSite(key.slice(0, key.lastIndexOf("/"))));
  const times = new Set([start]);
  for (const key of keys) for (const [t] of state.power.get(key)) if (t >= start && t <= now) times.add(t);
  const sorted = [...times].sort((a, b) => a - b);
  const cursor = new Map(keys.map((key) => [key, -1]));
  const series = [];
  for (const t of sorted) {
    let sum = 0;
    for (const key of keys) {
      const points = state.power.get(key);
      let i = cursor.get(key);
      while (i + 1 < points.length && points[i + 1][0] <= t) i += 1;
      cursor.set(key, i);
      if (i >= 0) sum += points[i][1];
    }
    series.push([t, Math.round(sum * 1000) / 1000]);
  }
  return keys.length ? series : [];
}

function prunePower(start) {
  // Keep an hour (and the value in force at its start) per EVSE.
  for (const [key, points] of state.power) {
    let first = 0;
    while (first + 1 < points.length && points[first + 1][0] <= start) first += 1;
    if (first > 0) points.splice(0, first);
    if (points.length === 1 && points[0][1] === 0 && points[0][0] < start) state.power.delete(key);
  }
}

function renderFigures() {
  const now = Date.now();
  const series = sitePower(now - HOUR, now);
  const current = series.length ? series[series.length - 1][1] : null;
  $("#power-now").textContent = kw(current);
  const limit = state.site ? siteLimitAt(now) : state.limitNow;
  $("#limit-now").textContent = limit === null || limit === undefined ? "none" : kw(limit);
  let planned = null;
  if (state.plan) {
    for (const [t, value] of state.plan.total) if (t <= now && value !== null) planned = value;
  }
  $("#planned-now").textContent = kw(planned);
  return { series, current, limit, planned };
}

let chartPending = false;
let chartDrawnAt = 0;
function scheduleChart() {
  // At most a few redraws a second, however many meter values arrive.
  if (chartPending) return;
  chartPending = true;
  const wait = Math.max(0, 400 - (Date.now() - chartDrawnAt));
  setTimeout(() => requestAnimationFrame(() => {
    chartPending = false;
    chartDrawnAt = Date.now();
    renderChart();
  }), wait);
}

function renderChart() {
  const now = Date.now();
  const start = now - HOUR;
  prunePower(start);
  const { series, current, limit, planned } = renderFigures();
  const planEnd = state.plan ? Math.min(state.plan.end, now + 6 * HOUR) : now + HOUR / 4;
  const end = Math.max(planEnd, now + HOUR / 4);
  const figure = $("#chart");
  figure.dataset.sitePowerKw = current === null ? "" : String(current);
  figure.dataset.points = String(series.length);
  const svg = $("#chart-svg");
  drawChart(svg, {
    start, now, end,
    power: series,
    limit: limitSeries(start, end),
    plan: state.plan ? state.plan.total : [],
  });
  $("#chart-desc").textContent =
    `Site power now ${kw(current)}; limit ${limit === null || limit === undefined ? "none" : kw(limit)}; ` +
    `planned now ${kw(planned)}.`;
}

function renderLimitForm() {
  const input = $("#limit-kw");
  const form = $("#limit-form");
  form.hidden = !state.sitesApi;
  if (document.activeElement !== input && state.site) {
    input.value = state.site.limit_kw === null || state.site.limit_kw === undefined ? "" : state.site.limit_kw;
  }
}

function renderReservationStations() {
  const select = $("#res-station");
  const chosen = select.value;
  const ids = [...state.stations.keys()].filter(onSite).sort();
  select.replaceChildren(...ids.map((id) => {
    const option = node("option", id);
    option.value = id;
    option.selected = id === chosen;
    return option;
  }));
}

function logEvent(message) {
  const list = $("#events");
  const item = node("li");
  const time = node("time", new Date(ms(message.at) || Date.now()).toLocaleTimeString());
  time.dateTime = message.at || new Date().toISOString();
  item.append(time, node("span", describe(message)));
  list.prepend(item);
  while (list.children.length > MAX_EVENTS_SHOWN) list.lastChild.remove();
}

function describe(message) {
  const where = message.evse_id !== undefined ? `${message.station_id} / ${message.evse_id}` : message.station_id;
  switch (message.type) {
    case "station.connected": return `${message.station_id} connected`;
    case "station.booted": return `${message.station_id} booted (${message.accepted ? "accepted" : "not accepted"})`;
    case "station.disconnected": return `${message.station_id} disconnected`;
    case "connector.status": return `${where}: ${message.status}`;
    case "transaction.started": return `${where}: session ${message.transaction_id} started${message.id_tag ? ` for ${message.id_tag}` : ""}`;
    case "transaction.updated": return `${where}: session ${message.transaction_id} ${message.charging_state || "updated"}`;
    case "transaction.ended": return `${where}: session ${message.transaction_id} ended${message.energy_kwh !== null ? `, ${kwh(message.energy_kwh)}` : ""}`;
    case "reservation.status": return `${message.station_id}: reservation ${message.reservation_id} ${message.status}`;
    case "cycle.finished": {
      const sent = (message.limits || []).length;
      return `site ${message.site_id}: plan ${message.status}${sent ? `, ${sent} limit${sent > 1 ? "s" : ""} sent` : ""}`;
    }
    case "site.changed": return `site ${message.site_id} changed`;
    case "dropped": return `${message.count} events missed (the page reloads its data)`;
    default: return message.type;
  }
}

// --- live events ------------------------------------------------------------------------------------------

function onEvent(message) {
  switch (message.type) {
    case "ready":
      return;
    case "dropped":
      logEvent(message);
      loadAll().catch(report);
      return;
    case "meter.value": {
      if (message.power_kw === null || message.power_kw === undefined) break;
      const key = `${message.station_id}/${message.evse_id}`;
      addPoint(key, ms(message.at) || Date.now(), message.power_kw);
      const session = state.sessions.get(message.transaction_id);
      if (session) {
        session.power_kw = message.power_kw;
        if (message.energy_kwh !== null && session.meter_start_wh !== null && session.meter_start_wh !== undefined) {
          session.delivered_kwh = Math.max(0, message.energy_kwh - session.meter_start_wh / 1000);
        }
        renderSessions();
      } else if (message.transaction_id !== null) {
        soon(`session-${message.transaction_id}`, () => loadSession(message.transaction_id).then(renderSessions));
      }
      scheduleChart();
      return; // too frequent for the event list
    }
    case "station.connected":
    case "station.booted":
    case "station.disconnected": {
      const station = state.stations.get(message.station_id);
      if (station && message.type !== "station.booted") {
        station.connected = message.type === "station.connected";
        renderStations();
      }
      soon("stations", loadStations);
      break;
    }
    case "connector.status": {
      const station = state.stations.get(message.station_id);
      const connector = station && (station.connectors || []).find(
        (c) => c.evse_id === message.evse_id && (c.connector_id === message.connector_id || message.connector_id === 0),
      );
      if (connector) {
        connector.status = message.status;
        renderStations();
      } else {
        soon("stations", loadStations);
      }
      break;
    }
    case "transaction.started":
    case "transaction.updated":
      soon(`session-${message.transaction_id}`, () => loadSession(message.transaction_id).then(renderSessions));
      break;
    case "transaction.ended": {
      state.sessions.delete(message.transaction_id);
      addPoint(`${message.station_id}/${message.evse_id}`, ms(message.at) || Date.now(), 0);
      renderSessions();
      scheduleChart();
      break;
    }
    case "cycle.finished":
      if (message.site_id === state.siteId) {
        state.limitNow = message.limit_kw;
        soon("plan", loadPlan);
      }
      break;
    case "site.changed":
      if (message.site_id === state.siteId) soon("site", loadSite);
      soon("stations", loadStations);
      break;
    case "session.needs":
      soon(`session-${message.transaction_id}`, () => loadSession(message.transaction_id).then(renderSessions));
      return;
    default:
      break;
  }
  logEvent(message);
}

function setLive(mode, text) {
  const live = $("#live");
  live.dataset.state = mode;
  live.querySelector(".text").textContent = text;
}

async function readStream(signal) {
  const response = await fetch(`${API}/events?heartbeat=${HEARTBEAT_S}`, {
    headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
    cache: "no-store",
    signal,
  });
  if (response.status === 401) {
    signOut("The token was refused (unknown or revoked): sign in again.");
    return false;
  }
  if (!response.ok || !response.body) throw new Error(`event stream: HTTP ${response.status}`);
  setLive("on", "Live");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let watchdog = null;
  const arm = () => {
    clearTimeout(watchdog);
    // Three heartbeats missed: the connection is dead even if the socket does not say so.
    watchdog = setTimeout(() => reader.cancel().catch(() => {}), 3 * HEARTBEAT_S * 1000);
  };
  arm();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      arm();
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trim());
        if (!data.length) continue; // a heartbeat comment
        try {
          const message = JSON.parse(data.join("\n"));
          if (message.type === "closing") return true;
          onEvent(message);
        } catch (error) {
          console.warn("bad event", error);
        }
      }
    }
  } finally {
    clearTimeout(watchdog);
  }
}

async function connectStream() {
  if (state.stream) state.stream.abort();
  const controller = new AbortController();
  state.stream = controller;
  let delay = 1000;
  while (!controller.signal.aborted && state.token) {
    try {
      const again = await readStream(controller.signal);
      if (!again) return;
      delay = 1000;
    } catch (error) {
      if (controller.signal.aborted) return;
      console.warn(error);
    }
    setLive("retry", "Reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 30000);
    await loadAll().catch(report); // what happened while away
  }
}

// --- forms ------------------------------------------------------------------------------------------------

function say(form, text, ok) {
  const message = form.querySelector(".message");
  message.textContent = text;
  message.className = `message ${ok ? "ok" : "bad"}`;
}

async function submitting(form, work) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await work();
  } catch (error) {
    say(form, error.message || String(error), false);
  } finally {
    button.disabled = false;
  }
}

function localToIso(value) {
  // <input type=datetime-local> has no zone: it is the browser's local time.
  return value ? new Date(value).toISOString() : null;
}

function setUpForms() {
  $("#limit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    submitting(form, async () => {
      const text = $("#limit-kw").value.trim();
      const limit = text === "" ? null : Number(text);
      if (limit !== null && (!Number.isFinite(limit) || limit < 0)) throw new Error("limit_kw: a number of kW, 0 or more");
      state.site = await api(`/sites/${encodeURIComponent(state.siteId)}`, { method: "PATCH", body: { limit_kw: limit } });
      say(form, limit === null ? "Limit removed." : `Limit set to ${kw(limit)}.`, true);
      renderFigures();
      scheduleChart();
    });
  });

  $("#reservation-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    submitting(form, async () => {
      const values = new FormData(form);
      const body = {
        station_id: values.get("station_id"),
        evse_id: Number(values.get("evse_id")),
        id_tag: String(values.get("id_tag")).trim(),
        expires_at: localToIso(values.get("expires_at")),
      };
      const starts = localToIso(values.get("starts_at"));
      if (starts) body.starts_at = starts;
      const energy = String(values.get("energy_kwh") || "").trim();
      if (energy) body.energy_kwh = Number(energy);
      const created = await api("/reservations", { method: "POST", body });
      say(form, `Reservation ${created.id} on ${created.station_id} / ${created.evse_id}: ${created.status}.`, true);
    });
  });

  $("#site").addEventListener("change", (event) => {
    state.siteId = event.target.value;
    localStorage.setItem(SITE_KEY, state.siteId);
    state.plan = null;
    state.site = state.sites.find((site) => site.id === state.siteId) || null;
    renderStations();
    renderSessions();
    renderReservationStations();
    renderLimitForm();
    Promise.all([loadSite(), loadPlan()]).catch(report);
  });
}

function defaultReservationTimes() {
  const end = $("#res-end");
  if (end.value) return;
  const later = new Date(Date.now() + 2 * HOUR);
  later.setSeconds(0, 0);
  end.value = new Date(later.getTime() - later.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

// --- signing in and out ---------------------------------------------------------------------------------

function showLogin(error) {
  $("#main").hidden = true;
  $("#sign-out").hidden = true;
  $("#who").textContent = "";
  $("#login").hidden = false;
  $("#login-error").textContent = error || "";
  setLive("off", "Not connected");
  $("#token").focus();
}

function signOut(reason) {
  if (state.stream) state.stream.abort();
  state.stream = null;
  state.token = null;
  localStorage.removeItem(TOKEN_KEY);
  showLogin(reason);
}

async function signIn(token) {
  state.token = token;
  let who;
  try {
    who = await api("/token");
  } catch (error) {
    if (state.token) signOut(error.status === 401 ? "This token is not valid." : error.message);
    return false;
  }
  localStorage.setItem(TOKEN_KEY, token);
  $("#login").hidden = true;
  $("#main").hidden = false;
  $("#sign-out").hidden = false;
  $("#who").textContent = `Signed in as ${who.name}${who.scope === "read" ? " (read only)" : ""}`;
  defaultReservationTimes();
  await loadAll();
  connectStream();
  return true;
}

function main() {
  setUpForms();
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("#token").value.trim();
    if (!token) return;
    $("#token").value = "";
    signIn(token).catch(report);
  });
  $("#sign-out").addEventListener("click", () => signOut(""));
  window.addEventListener("resize", scheduleChart);
  setInterval(scheduleChart, 10000); // the window slides even when nothing happens
  if (state.token) signIn(state.token).catch(report);
  else showLogin();
}

main();

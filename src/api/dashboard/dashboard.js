// tokenkeeper health dashboard. Talks only to this service's JSON API with the
// operator's key (kept in sessionStorage); never asks for token values.
"use strict";

const KEY_STORAGE = "tokenkeeper.apiKey";
const AUTO_STORAGE = "tokenkeeper.autoRefresh";
const AUTO_INTERVAL_MS = 30000;
const PROVIDERS = ["facebook", "tiktok_shop", "google"];
const HEALTHS = ["healthy", "expiring_soon", "needs_refresh", "degraded", "expired", "cannot_refresh", "reauth_required"];
const HEALTH_COLOUR = {
  healthy: "green",
  expiring_soon: "amber", needs_refresh: "amber", degraded: "amber",
  expired: "red", cannot_refresh: "red", reauth_required: "red",
};
const PROVIDER_NAME = { facebook: "Facebook", tiktok_shop: "TikTok Shop", google: "Google Ads" };
const AUTH_URL_PATH = { facebook: "/facebook/auth/url", tiktok_shop: "/tiktok/auth/url", google: "/google/auth/url" };

// Outcomes of "Try automatic refresh", kept across re-renders: id -> {ok, text}.
const outcomes = new Map();
let autoTimer = null;

const $ = (id) => document.getElementById(id);

/** Builds an element; children are nodes or strings (always text, never HTML). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function apiKey() { return sessionStorage.getItem(KEY_STORAGE); }

/** Calls the API; resolves to {status, ok, body} and never throws on HTTP errors. */
async function api(method, path) {
  const response = await fetch(path, {
    method,
    headers: { "X-API-Key": apiKey(), "Accept": "application/json" },
    cache: "no-store",
    credentials: "omit",
  });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  return { status: response.status, ok: response.ok, body };
}

/** The message of our error envelope, or a fallback naming the status. */
function errorText(result) {
  const e = result.body && result.body.error;
  if (e && e.message) return e.code ? `${e.message} (${e.code})` : e.message;
  return `HTTP ${result.status}`;
}

function providerName(p) { return PROVIDER_NAME[p] || p; }

// Every time on the page is in UTC, as the API and the logs give them.
function formatTime(iso, none = "never") {
  if (!iso) return none;
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

/** "14:03:22 UTC" for the moment `d`. */
function clockTime(d) {
  return d.toISOString().slice(11, 19) + " UTC";
}

// Providers whose access tokens the service renews with a refresh token:
// their access-token expiry is no lapse, their refresh token's is.
const RENEWS_WITH_REFRESH_TOKEN = new Set(["tiktok_shop", "google"]);

function relative(iso) {
  if (!iso) return "";
  const diff = new Date(iso).getTime() - Date.now();
  const abs = Math.abs(diff);
  const units = [["day", 86400000], ["hour", 3600000], ["minute", 60000]];
  let text = "just now";
  for (const [unit, ms] of units) {
    if (abs >= ms) {
      const n = Math.round(abs / ms);
      text = `${n} ${unit}${n === 1 ? "" : "s"}`;
      return diff >= 0 ? `in ${text}` : `${text} ago`;
    }
  }
  return text;
}

/** A time cell; `label` names the column in the narrow (stacked) layout. */
function timeCell(iso, label, cls, none) {
  return el("td", { class: `time ${cls || ""}`.trim(), title: iso || "", "data-label": label },
    formatTime(iso, none), iso ? el("div", { class: "muted" }, relative(iso)) : null);
}

/** A cell for a fact the connection's platform does not have. */
function notApplicable(label, cls) {
  return el("td", { class: `time ${cls}`, "data-label": label, title: "not applicable" }, "—");
}

function badge(health) {
  return el("span", { class: `badge health-${HEALTH_COLOUR[health] || "amber"}`, "data-health": health },
    (health || "unknown").replace(/_/g, " "));
}

/** "class: message (code 190/460)" for a connection's last error. */
function describeError(e) {
  if (!e) return "";
  const code = e.code !== undefined && e.code !== null
    ? ` (code ${e.code}${e.subcode !== undefined && e.subcode !== null ? "/" + e.subcode : ""})`
    : "";
  return `${(e.class || "error").replace(/_/g, " ")}: ${e.message}${code}`;
}

/** The soonest of what only the user can renew: [what, when] or null. */
function soonestLapse(c) {
  const candidates = [
    ["access token", RENEWS_WITH_REFRESH_TOKEN.has(c.provider) ? null : c.expires_at],
    ["data access", c.data_access_expires_at],
    ["refresh token", c.refresh_token_expires_at],
  ].filter(([, at]) => at);
  candidates.sort((a, b) => new Date(a[1]) - new Date(b[1]));
  return candidates[0] || null;
}

function connectionName(c) {
  return `${c.label || c.external_id} (${providerName(c.provider)} ${c.kind}${c.team_id ? ", team " + c.team_id : ""})`;
}

function needsReauth(c) { return c.health === "reauth_required" || c.reauth_required === true; }

// ---- rendering ----

function renderBanners(connections) {
  const banners = $("banners");
  banners.replaceChildren();
  for (const c of connections) {
    const outcome = outcomes.get(c.id);
    if (needsReauth(c) || (outcome && outcome.ok)) banners.append(reauthBanner(c, outcome));
  }
  for (const c of connections) {
    if (c.health !== "expiring_soon") continue;
    const lapse = soonestLapse(c);
    const what = lapse ? `${lapse[0]} lapses ${formatTime(lapse[1])} (${relative(lapse[1])})` : "expires soon";
    banners.append(el("div", { class: "banner banner-expiry", role: "status", "data-connection-id": c.id },
      el("span", { class: "text" }, el("strong", {}, "Expiring soon: "), `${connectionName(c)} — ${what}.`)));
  }
}

function reauthBanner(c, outcome) {
  const resolved = outcome && outcome.ok;
  // A failed try shows the platform's latest answer in its outcome; the
  // reason is not repeated beside it.
  const failed = outcome && !outcome.ok;
  const reason = el("span", { class: "reason" }, c.last_error && !failed ? ` — ${describeError(c.last_error)}` : "");
  const outcomeNode = el("span", {
    class: "refresh-outcome", role: "status",
    "data-outcome": outcome ? (outcome.ok ? "success" : "failure") : null,
  }, outcome ? outcome.text : "");
  const tryButton = el("button", { type: "button", class: "try-refresh" }, "Try automatic refresh");
  tryButton.addEventListener("click", () => tryRefresh(c, tryButton, outcomeNode, reason));
  const reconnect = el("a", { href: "#", class: "reconnect", "data-provider": c.provider }, "Reconnect");
  reconnect.addEventListener("click", (event) => { event.preventDefault(); reconnectTo(c, outcomeNode); });
  return el("div", {
    class: `banner banner-reauth${resolved ? " resolved" : ""}`, role: "alert", "data-connection-id": c.id,
  },
  el("span", { class: "text" },
    el("strong", {}, resolved ? "Recovered: " : "Reconnect needed: "), connectionName(c), reason),
  resolved ? null : tryButton, resolved ? null : reconnect, outcomeNode);
}

async function tryRefresh(c, button, outcomeNode, reasonNode) {
  button.disabled = true;
  outcomeNode.textContent = "Refreshing…";
  outcomeNode.removeAttribute("data-outcome");
  let outcome;
  try {
    const result = await api("POST", `/tokens/${encodeURIComponent(c.id)}/refresh?force=true`);
    const after = result.body && result.body.connection;
    if (result.ok && !(after && needsReauth(after))) outcome = { ok: true, text: "Refreshed" };
    else {
      // The platform's own words are the connection's last error, as the
      // refresh recorded it; the API's message is only the fallback.
      const latest = (after && after.last_error) || (await lastErrorOf(c.id));
      const why = latest ? describeError(latest) : result.ok ? "it still needs reconnecting" : errorText(result);
      outcome = { ok: false, text: `Refresh failed: ${why}` };
    }
  } catch (err) {
    outcome = { ok: false, text: `Refresh failed: ${err.message}` };
  }
  outcomes.set(c.id, outcome);
  if (!outcome.ok) reasonNode.textContent = "";
  outcomeNode.textContent = outcome.text;
  outcomeNode.dataset.outcome = outcome.ok ? "success" : "failure";
  button.disabled = false;
  loadAll();
}

/** The connection's last error as now stored, or null. */
async function lastErrorOf(id) {
  const result = await api("GET", "/tokens");
  const conn = result.ok && (result.body.connections || []).find((x) => x.id === id);
  return (conn && conn.last_error) || null;
}

async function reconnectTo(c, outcomeNode) {
  // Open the tab now, while the click still counts as a user gesture.
  const tab = window.open("about:blank", "_blank");
  const params = c.team_id ? `?team_id=${encodeURIComponent(c.team_id)}` : "";
  try {
    const result = await api("GET", `${AUTH_URL_PATH[c.provider] || "/facebook/auth/url"}${params}`);
    if (!result.ok || !result.body || !result.body.url) throw new Error(errorText(result));
    if (tab) { tab.opener = null; tab.location.href = result.body.url; } else window.location.assign(result.body.url);
  } catch (err) {
    if (tab) tab.close();
    outcomeNode.textContent = `Reconnect failed: ${err.message}`;
    outcomeNode.dataset.outcome = "failure";
  }
}

function renderConnections(connections) {
  $("connection-count").textContent = `(${connections.length})`;
  const rows = connections.map((c) => {
    const facebook = c.provider === "facebook";
    return el("tr", { "data-connection-id": c.id, "data-health": c.health },
      el("td", { "data-label": "Provider" }, providerName(c.provider)),
      el("td", { "data-label": "Kind" }, c.kind),
      el("td", { class: "label", "data-label": "Label" }, c.label || c.external_id, el("div", { class: "muted" }, c.external_id)),
      el("td", { "data-label": "Team" }, c.team_id || "—"),
      el("td", { class: "health", "data-label": "Health" }, badge(c.health)),
      timeCell(c.expires_at, "Token expires", "token-expires"),
      // Data access is Facebook's; a refresh token is everyone else's.
      facebook ? timeCell(c.data_access_expires_at, "Data access expires", "data-access-expires")
        : notApplicable("Data access expires", "data-access-expires"),
      facebook ? notApplicable("Refresh token expires", "refresh-token-expires")
        : timeCell(c.refresh_token_expires_at, "Refresh token expires", "refresh-token-expires", "no fixed date"),
      timeCell(c.last_refreshed_at, "Last refresh", "last-refresh"),
      el("td", { class: "last-error", "data-label": "Last error" }, c.last_error ? describeError(c.last_error) : "—",
        c.consecutive_failures ? el("div", { class: "muted" }, `${c.consecutive_failures} failure(s) in a row`) : null),
    );
  });
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 10, class: "muted" }, "No connections yet.")));
  $("connections-body").replaceChildren(...rows);
}

function renderHealth(health) {
  $("health-head").replaceChildren(el("th", {}, "Provider"), el("th", { class: "num" }, "Total"),
    ...HEALTHS.map((h) => el("th", { class: "num" }, badge(h))), el("th", {}, "Next scheduled run"));
  const rows = PROVIDERS.map((p) => {
    const info = (health.providers || {})[p] || { total: 0, by_health: {} };
    const next = info.next_scheduled_run;
    return el("tr", { "data-provider": p },
      el("td", { "data-label": "Provider" }, providerName(p)),
      el("td", { class: "num", "data-label": "Total" }, info.total || 0),
      ...HEALTHS.map((h) => {
        const n = (info.by_health || {})[h] || 0;
        // Zeros are left out of the narrow layout.
        return el("td", { class: n ? "num" : "num zero", "data-health": h, "data-label": h.replace(/_/g, " ") }, n);
      }),
      el("td", { class: "next-run", "data-label": "Next scheduled run" },
        next ? `${formatTime(next)} (${relative(next)})` : "not scheduled"));
  });
  $("health-body").replaceChildren(...rows);
  $("running-run").textContent = health.running_run ? `A sweep is running: ${health.running_run}` : "";
}

function renderRuns(result) {
  const note = $("runs-note");
  if (result.status === 403) {
    note.textContent = "This key may not see refresh runs (needs scope internal or tokens:read).";
    note.hidden = false;
    $("runs-body").replaceChildren();
    return;
  }
  if (!result.ok) {
    note.textContent = `Refresh runs unavailable: ${errorText(result)}`;
    note.hidden = false;
    return;
  }
  note.hidden = true;
  const runs = (result.body.runs || []).slice(0, 20);
  const rows = runs.map((r) => el("tr", { "data-run-id": r.id, "data-status": r.status },
    timeCell(r.started_at, "Started", "started"),
    el("td", { "data-label": "Trigger" }, r.trigger),
    el("td", { "data-label": "Status" }, r.status),
    el("td", { class: "num", "data-label": "Done" }, `${r.done}/${r.total}`),
    el("td", { class: "counts", "data-label": "Counts" }, Object.entries(r.counts || {}).map(([k, n]) => el("span", { "data-count": k }, `${k.replace(/_/g, " ")}: ${n}`))),
    el("td", { "data-label": "Errors" }, (r.errors || []).map((e) => el("div", {}, `${e.label}: ${describeError(e)}`)))));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No refresh runs yet.")));
  $("runs-body").replaceChildren(...rows);
}

// ---- loading ----

async function loadAll() {
  const error = $("load-error");
  try {
    const [tokens, health, runs] = await Promise.all([
      api("GET", "/tokens"), api("GET", "/tokens/health"), api("GET", "/internal/refresh-runs"),
    ]);
    if (tokens.status === 401 || tokens.status === 403) {
      showKeyForm(`The key was refused: ${errorText(tokens)}`);
      return;
    }
    if (!tokens.ok) throw new Error(errorText(tokens));
    renderBanners(tokens.body.connections || []);
    renderConnections(tokens.body.connections || []);
    if (health.ok) renderHealth(health.body);
    renderRuns(runs);
    error.hidden = true;
    $("last-updated").textContent = `Updated ${clockTime(new Date())}`;
  } catch (err) {
    error.textContent = `Could not load: ${err.message}`;
    error.hidden = false;
  }
}

function showKeyForm(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  setAuto(false);
  $("dashboard").hidden = true;
  $("controls").hidden = true;
  $("key-form").hidden = false;
  $("key-error").textContent = message || "";
  $("api-key").focus();
}

function showDashboard() {
  $("key-form").hidden = true;
  $("dashboard").hidden = false;
  $("controls").hidden = false;
  setAuto(sessionStorage.getItem(AUTO_STORAGE) === "on");
  loadAll();
}

function setAuto(on) {
  if (autoTimer) clearInterval(autoTimer);
  autoTimer = on ? setInterval(loadAll, AUTO_INTERVAL_MS) : null;
  sessionStorage.setItem(AUTO_STORAGE, on ? "on" : "off");
  const button = $("auto-refresh");
  button.setAttribute("aria-pressed", on ? "true" : "false");
  button.textContent = on ? `Auto-refresh: every ${AUTO_INTERVAL_MS / 1000} s` : "Auto-refresh: off";
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    $("api-key").value = "";
    showDashboard();
  });
  $("refresh-now").addEventListener("click", loadAll);
  $("auto-refresh").addEventListener("click", () => setAuto(!autoTimer));
  $("forget-key").addEventListener("click", () => showKeyForm(""));
  if (apiKey()) showDashboard(); else showKeyForm("");
});

// The live page: reads /ui/config.json for the regions, signs in (with
// [ui.oidc], at the identity provider: oidc.js; else a reader token; either
// kept in sessionStorage), opens one feed per region, and routes between
// the overview and one check (#check=region/agent/check).

import { CheckView, stats } from "./check.js";
import { Feed, LIVE, POLLING, RECONNECTING, SIGNED_OUT } from "./feed.js";
import { el } from "./format.js";
import * as oidc from "./oidc.js";
import { Overview, Row, rowKey } from "./overview.js";

const TOKEN_KEY = "sonde.token";
const app = document.getElementById("app");
const regionsBar = document.getElementById("regions");
const banner = document.getElementById("banner");

const state = { config: null, feeds: new Map(), overview: null, view: null, dirty: false, paintPending: [], useToken: false, redirecting: false };

window.sonde = { state, stats };

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

async function main() {
  // `#token=…` (the quickstart's link): kept for this tab, then taken out
  // of the address bar. A fragment never reaches the server or its logs.
  const given = /^#token=(.+)$/.exec(location.hash);
  if (given) {
    let value = given[1];
    try {
      value = decodeURIComponent(value);
    } catch {
      // Not percent-encoding: the token as written.
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    history.replaceState(null, "", location.pathname + location.search);
  }
  // `#code=…&state=…` (or `#error=…`): the identity provider's answer,
  // taken out of the address bar (and the tab's history) at once.
  const answer = oidc.returned();
  if (answer) history.replaceState(null, "", location.pathname + location.search);
  const r = await fetch("ui/config.json", { cache: "no-store" });
  state.config = await r.json();
  document.title = `sonde · ${state.config.gateway}`;
  if (answer) {
    if (!state.config.oidc) return signIn("An identity provider answered, but this gateway has no [ui.oidc].");
    app.replaceChildren(el("p", { class: "signin", id: "signing-in" }, `Signing in with ${oidc.issuerHost(state.config.oidc)}…`));
    try {
      const { token: idToken, back } = await oidc.complete(state.config.oidc, answer);
      sessionStorage.setItem(TOKEN_KEY, idToken);
      if (back) history.replaceState(null, "", location.pathname + location.search + back);
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      return signIn(`Sign-in failed: ${e.message}`);
    }
  }
  if (!token()) return signIn();
  start();
}

function stopFeeds() {
  for (const f of state.feeds.values()) f.stop();
  state.feeds.clear();
}

/** Goes to the identity provider; back on this page with a code (main). */
function toProvider(auto) {
  state.redirecting = true;
  oidc.begin(state.config.oidc, { auto }).catch((e) => {
    state.redirecting = false;
    signIn(`Sign-in failed: ${e.message}`);
  });
}

/** Sign-in with [ui.oidc]: a button to the provider, and a way to use a reader token instead. */
function providerSignIn(reason) {
  const host = oidc.issuerHost(state.config.oidc);
  const button = el("button", { type: "submit", id: "oidc-signin" }, `Sign in with ${host}`);
  const other = el("button", { type: "button", class: "link", id: "use-token" }, "use a reader token instead");
  const form = el(
    "form",
    { class: "signin", id: "signin" },
    el("h2", {}, "Sign in"),
    el("p", {}, `With your account at ${host}. Its ID token is kept for this tab only (sessionStorage) and sent to every region in an Authorization header, never in a URL.`),
    reason ? el("p", { class: "error", id: "signin-error" }, reason) : null,
    button,
    el("p", { class: "alt" }, other),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    button.disabled = true;
    toProvider(false);
  });
  other.addEventListener("click", () => {
    state.useToken = true;
    signIn(reason);
  });
  app.append(form);
  button.focus();
}

function signIn(reason) {
  stopFeeds();
  app.replaceChildren();
  if (state.config?.oidc && !state.useToken) return providerSignIn(reason);
  const input = el("input", { type: "password", id: "token", autocomplete: "current-password", placeholder: "reader token", "aria-label": "Reader token" });
  const form = el(
    "form",
    { class: "signin", id: "signin" },
    el("h2", {}, "Sign in"),
    el("p", {}, "A reader token from gateway.toml. It is kept for this tab only (sessionStorage) and sent in an Authorization header, never in a URL."),
    reason ? el("p", { class: "error", id: "signin-error" }, reason) : null,
    input,
    el("button", { type: "submit" }, "Sign in"),
    state.config?.oidc ? el("p", { class: "alt" }, el("button", { type: "button", class: "link", id: "use-provider" }, `sign in with ${oidc.issuerHost(state.config.oidc)} instead`)) : null,
  );
  form.querySelector("#use-provider")?.addEventListener("click", () => {
    state.useToken = false;
    signIn(reason);
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    start();
  });
  app.append(form);
  input.focus();
}

function start() {
  app.replaceChildren();
  regionsBar.replaceChildren();
  const overviewRoot = el("section", { id: "overview" });
  const checkRoot = el("section", { id: "check", hidden: true });
  app.append(overviewRoot, checkRoot);
  state.checkRoot = checkRoot;
  state.overviewRoot = overviewRoot;
  state.overview = new Overview(overviewRoot, (row) => {
    location.hash = `check=${[row.region, row.agent, row.check].map(encodeURIComponent).join("/")}`;
  });
  for (const region of state.config.regions) {
    const chip = el("span", { class: "region-chip", "data-region": region.name, "data-mode": RECONNECTING }, region.name, el("b", {}, "connecting"));
    regionsBar.append(chip);
    const feed = new Feed(region, token, {
      hello: () => {},
      snapshot: (f, states) => {
        // Signed in and reading: a later expiry may sign in again by itself.
        if (state.config.oidc) oidc.working();
        state.overview.take(f.region.name, states, false);
        schedule();
      },
      // live: news on the stream or a poll, not a replay or a heal (only
      // news counts in the paint-latency figures).
      records: (f, records, live) => {
        state.overview.take(f.region.name, records, true);
        const v = state.view;
        if (v && v.row.region === f.region.name) {
          for (const item of records) if (item.check === v.row.check && item.agent === v.row.agent) v.put(item, live);
        }
        if (live) {
          for (const item of records) state.paintPending.push(item.record.t + item.record.rt);
          // A hidden tab draws no frames: keep the newest only.
          if (state.paintPending.length > 50000) state.paintPending.splice(0, state.paintPending.length - 50000);
        }
        schedule();
      },
      restart: (f) => state.overview.restart(f.region.name),
      mode: (f, mode) => showMode(f.region.name, mode),
      unauthorized: (f, reason) => {
        if (state.redirecting) return;
        const why = shortReason(reason);
        // One region refusing the token (not configured there) is that
        // region's problem: its chip says "signed out", the others keep
        // streaming. Sign in again once every region refused, or the
        // token expired (then it is the same everywhere).
        const expired = /expired/.test(why);
        const others = [...state.feeds.values()].filter((g) => g !== f && g.mode !== SIGNED_OUT);
        if (!expired && others.length) return;
        sessionStorage.removeItem(TOKEN_KEY);
        // An ID token that expired: to the provider again by itself, once;
        // if that gives no working token, the button (no loop).
        if (state.config.oidc && !state.useToken && /expired/.test(why) && oidc.mayRetry()) {
          stopFeeds();
          app.replaceChildren(el("p", { class: "signin", id: "signing-in" }, `Signing in again with ${oidc.issuerHost(state.config.oidc)}…`));
          toProvider(true);
          return;
        }
        signIn(`${f.region.name}: ${why}`);
      },
    });
    state.feeds.set(region.name, feed);
    feed.start();
  }
  route();
}

function shortReason(text) {
  try {
    return JSON.parse(text).reason ?? text;
  } catch {
    return text;
  }
}

function showMode(region, mode) {
  const chip = regionsBar.querySelector(`[data-region="${CSS.escape(region)}"]`);
  if (chip) {
    chip.dataset.mode = mode;
    chip.querySelector("b").textContent = { [LIVE]: "live", [RECONNECTING]: "reconnecting", [POLLING]: "polling", [SIGNED_OUT]: "signed out" }[mode];
  }
  const degraded = [...regionsBar.querySelectorAll(".region-chip")].filter((c) => c.dataset.mode !== LIVE).map((c) => `${c.dataset.region} (${c.querySelector("b").textContent})`);
  banner.hidden = degraded.length === 0;
  banner.textContent = degraded.length ? `Degraded: ${degraded.join(", ")}. The other regions keep streaming.` : "";
}

function schedule() {
  if (state.dirty) return;
  state.dirty = true;
  requestAnimationFrame(() => {
    state.dirty = false;
    // Probe end → painted, for the records this frame drew (stats.overview).
    if (!state.overviewRoot.hidden) {
      state.overview.render();
      const painted = Date.now();
      for (const end of state.paintPending) stats.overview.push(painted - end);
      if (stats.overview.length > 50000) stats.overview.splice(0, stats.overview.length - 50000);
    }
    state.paintPending.length = 0;
  });
}

function route() {
  const m = /^#check=([^/]*)\/([^/]*)\/(.*)$/.exec(location.hash);
  if (state.view) {
    state.view.close();
    state.view = null;
    state.checkRoot.replaceChildren();
  }
  if (!m || !state.overview) {
    state.checkRoot.hidden = true;
    state.overviewRoot.hidden = false;
    state.overview?.render();
    document.getElementById("rows")?.focus();
    return;
  }
  let region, agent, check;
  try {
    [region, agent, check] = m.slice(1).map(decodeURIComponent);
  } catch {
    location.hash = "";
    return;
  }
  const feed = state.feeds.get(region);
  if (!feed) {
    location.hash = "";
    return;
  }
  // A check the overview has not seen (a link from elsewhere) is shown without adding it there.
  const row = state.overview.rows.get(rowKey(region, agent, check)) ?? new Row(region, agent, check);
  state.overviewRoot.hidden = true;
  state.checkRoot.hidden = false;
  state.view = new CheckView(state.checkRoot, row, feed, () => {
    location.hash = "";
  });
  window.sonde.view = state.view;
}

window.addEventListener("hashchange", route);
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement) return;
  if (e.key === "/" && state.overviewRoot && !state.overviewRoot.hidden) {
    e.preventDefault();
    document.getElementById("filter")?.focus();
  } else if (e.key === "Escape" && state.view) {
    location.hash = "";
  } else if ((e.key === "]" || e.key === "[") && state.view) {
    // The next or previous check, in the overview's order.
    const order = state.overview.order;
    const at = order.findIndex((r) => r.key === state.view.row.key);
    const next = order[at + (e.key === "]" ? 1 : -1)];
    if (next) location.hash = `check=${[next.region, next.agent, next.check].map(encodeURIComponent).join("/")}`;
  }
});

main().catch((e) => {
  app.replaceChildren(el("p", { class: "error" }, `The page could not start: ${e.message}`));
});

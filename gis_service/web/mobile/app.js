/* 网格通: the grid worker's phone app. Plain JavaScript, no build step, everything from
   our own server: words.js (the words), outbox.js (reports kept and sent), media.js
   (photos and maps), report.js (the report screen), and here the session, the router and
   the other screens. */
(function () {
  "use strict";
  const WORDS = window.gisWords;  // words.js
  // The service's word lists (/m/vocabulary.js, made from gis_service/vocabulary.py):
  // statuses with their labels, levels, roles — never a copy of our own.
  const VOCAB = window.gisVocabulary;
  // labels of the service's words (statuses, account and roster roles) come from the
  // served vocabulary (gis_service/vocabulary.py), never from a copy here
  const LABEL = {};
  VOCAB.statuses.forEach((s) => { LABEL["status." + s.code] = s.label; });
  VOCAB.roles.concat(VOCAB.staff_role_labels).forEach((r) => { LABEL["role." + r.code] = r.label; });
  const OPEN = VOCAB.open_statuses;
  const TOP_LEVEL = VOCAB.levels[0].code;  // the district: left out of unit chains

  const params = new URLSearchParams(location.search);
  let lang = params.get("lang") || localStorage.getItem("gis.m.lang") || "zh";
  if (!WORDS[lang]) { lang = "zh"; }

  function t(key, vars) {
    const label = LABEL[key];
    let s = WORDS[lang][key] || WORDS.zh[key] || (label && (label[lang] || label.zh)) || esc(key);
    if (vars) { Object.keys(vars).forEach((k) => { s = s.replace("{" + k + "}", vars[k]); }); }
    return s;
  }
  function esc(v) {
    return String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  // The server answers in the district's time (GIS_TIMEZONE: ISO 8601 with its offset), so
  // its own digits are what a person should read, whatever zone the phone is set to. A time
  // the phone made itself (a queued report) has no offset of the district's: shown locally.
  function when(iso) {
    if (!iso) { return ""; }
    const m = /^\d{4}-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::[\d.]+)?[+-]\d\d:?\d\d$/.exec(iso);
    if (m) { return `${Number(m[1])}-${m[2]} ${m[3]}:${m[4]}`; }
    const d = new Date(iso);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getMonth() + 1}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  const $ = (sel, root) => (root || document).querySelector(sel);
  const screen = $("#screen");

  /* ---------- session and cached reads ---------- */
  /* { token, exp, refresh, user }: the access token lives minutes (expires_in) and is
     renewed with the single-use refresh token (RFC 6749 §6) — see renew(). */
  const session = JSON.parse(localStorage.getItem("gis.m.session") || "null") || {};
  function signedIn() { return !!session.token && (session.exp > Date.now() || !!session.refresh); }
  function saveSession() { localStorage.setItem("gis.m.session", JSON.stringify(session)); }

  /* Renew the access token with the refresh token. Resolves true when renewed (or another
     tab just did), false when the sign-in has ended (400 invalid_grant: signed out,
     deactivated, password changed, or the refresh token reused) — callers then keep what
     they hold and ask for sign-in; rejects when the network fails (try again later).
     One at a time, across tabs: a refresh token is single use, and the server ends the
     whole sign-in when one is sent twice (RFC 9700 §4.14.2). */
  let renewing = null;
  function renew() {
    const run = async () => {
      const stored = JSON.parse(localStorage.getItem("gis.m.session") || "null") || {};
      if (stored.refresh !== session.refresh && stored.user && session.user &&
          stored.user.id === session.user.id) {
        Object.assign(session, stored);  // another tab renewed (or ended) it meanwhile
        if (session.token && session.exp > Date.now()) { return true; }
      }
      if (!session.refresh) { return false; }
      const r = await fetch("/api/v1/auth/refresh", { method: "POST", body: new URLSearchParams({
        grant_type: "refresh_token", refresh_token: session.refresh }) });
      if (r.status === 400 || r.status === 401) {
        Object.assign(session, { token: null, refresh: null });
        saveSession();
        return false;
      }
      if (!r.ok) { throw new Error(t("err.server", { s: r.status })); }
      const body = await r.json();
      Object.assign(session, { token: body.access_token, refresh: body.refresh_token,
                               exp: Date.now() + body.expires_in * 1000, user: body.user });
      saveSession();
      return true;
    };
    if (!renewing) {
      renewing = Promise.resolve(navigator.locks ? navigator.locks.request("gis-m-refresh", run) : run())
        .finally(() => { renewing = null; });
    }
    return renewing;
  }
  /* Sent here by the front door (/ → /m/#handoff, desk/nav.py HOMES) after a sign-in
     there: take that sign-in over (POST /api/v1/auth/handoff with the page cookie and our
     pages' write header) unless the phone holds tokens of its own, so one sign-in serves
     every role. Resolves true when it did; otherwise the sign-in form stays the way in. */
  async function handOff() {
    if (location.hash !== "#handoff") { return false; }
    history.replaceState(null, "", location.pathname + location.search);
    if (signedIn() || !navigator.onLine) { return false; }
    try {
      const r = await fetch("/api/v1/auth/handoff", { method: "POST", credentials: "same-origin",
        headers: { "X-Requested-With": "XMLHttpRequest" } });
      if (!r.ok) { return false; }
      const body = await r.json();
      Object.assign(session, { token: body.access_token, refresh: body.refresh_token,
                               exp: Date.now() + body.expires_in * 1000, user: body.user });
      saveSession();
      return true;
    } catch (e) {
      return false;
    }
  }
  /* An access token good for the next few seconds, renewed first if need be (as renew). */
  function fresh() {
    return session.token && session.exp > Date.now() + 5000 ? Promise.resolve(true) : renew();
  }

  /* The server's reason, led by a phrase in the user's language (API details are English). */
  function reason(status, body) {
    const code = body && body.error;
    const lead = code && WORDS[lang]["err." + code];
    const detail = (body && (body.detail || body.error)) || String(status);
    return lead ? lead + (lang === "zh" ? "：" : ": ") + detail : detail;
  }

  /* what to tell the user about a failed request: fetch's own words mean no network */
  function said(err) { return err.message === "Failed to fetch" ? t("err.network") : err.message; }

  class ApiError extends Error {
    constructor(status, message, body) { super(message); this.status = status; this.body = body; }
  }

  async function api(path, options, again) {
    const had = !!(session.token || session.refresh);  // signed in when it was asked
    if (session.token) { await fresh().catch(() => null); }
    const opts = Object.assign({}, options || {});
    opts.headers = Object.assign({}, opts.headers || {});
    if (session.token) { opts.headers.Authorization = "Bearer " + session.token; }
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
      delete opts.json;
    }
    const r = await fetch(path, opts);
    const body = await r.json().catch(() => null);
    if (!r.ok) {
      if (r.status === 401 && had) {  // renewed once and asked again, or the sign-in ended
        if (!again && session.refresh && await renew().catch(() => false)) {
          return api(path, options, true);
        }
        expire();
      }
      throw new ApiError(r.status, reason(r.status, body), body);
    }
    return body;
  }

  /* A read that works offline: the last answer is kept per user and shown when the
     network fails (with a note saying so). The newest KEEP answers are kept. */
  const KEEP = 120;
  function keep(key, body) {
    const index = JSON.parse(localStorage.getItem("gis.m.cache") || "[]")
      .filter((k) => k !== key);
    index.push(key);
    while (index.length > KEEP) { localStorage.removeItem(index.shift()); }
    try {
      localStorage.setItem(key, JSON.stringify(body));
      localStorage.setItem("gis.m.cache", JSON.stringify(index));
    } catch (e) { /* storage full: this answer is simply not kept */ }
  }
  async function cachedGet(path) {
    const key = "gis.m.cache." + (session.user ? session.user.id : "-") + ":" + path;
    try {
      const body = await api(path);
      keep(key, body);
      return { body, cached: false };
    } catch (err) {
      if (err instanceof ApiError) { throw err; }
      const kept = localStorage.getItem(key);
      if (kept) { return { body: JSON.parse(kept), cached: true }; }
      throw err;
    }
  }

  function expire() {
    Object.assign(session, { token: null, refresh: null });
    saveSession();
    if (location.hash !== "#login") { location.hash = "#login"; }
  }

  /* ---------- the outbox (outbox.js) ---------- */
  const outbox = window.gisOutbox({
    session: () => session, signedIn, expire, fresh, renew, t, reason,
    changed: () => refreshQueue(), counted: (items) => updateBadge(items),
    walkId: (key) => walk.walkId(key),
    progress: (key, done) => {
      const el = document.querySelector(
        `[data-testid=queue-item][data-key="${CSS.escape(key)}"] .progress`);
      if (el) { el.textContent = Math.round(done * 100) + "%"; }
    }
  });
  const flush = outbox.flush;

  function updateBadge(items) {
    const n = items.filter((i) => i.state !== "sent").length;
    $("#queue-count").textContent = n ? String(n) : "";
  }

  function refreshQueue() {
    if (current === "queue") { renderQueue(); } else { outbox.all().then(updateBadge); }
  }

  /* ---------- screens ---------- */
  const media = window.gisMedia;  // media.js
  let current = null;
  let cleanup = [];
  let routeGen = 0;
  const ROUTES = {
    login: renderLogin, report: (arg, live) => report.render(arg, live), queue: renderQueue, cases: renderCases,
    case: renderCase, tasks: renderTasks, grids: renderGrids, inbox: renderInbox,
    walk: (arg, live) => walk.render(arg, live)
  };

  let newBuild = false;
  function route() {
    if (newBuild && !report.busy()) {
      location.reload();  // a new build took over: load its page, not half of each
      return Promise.resolve();
    }
    cleanup.forEach((fn) => fn());
    cleanup = [];
    const [name, arg] = (location.hash.slice(1) || "").split("/");
    let target = ROUTES[name] ? name : home();
    if (!signedIn()) { target = "login"; }
    current = target;
    const gen = ++routeGen;
    const live = () => gen === routeGen;  // false once the user has moved on
    document.querySelectorAll("#tabs a").forEach((a) =>
      a.classList.toggle("on", a.dataset.tab === target || (target === "case" && a.dataset.tab === "cases")));
    $("#tabs").hidden = target === "login";
    // walks are a grid worker's (docs/walks.md "Who sees what")
    $("#tabs [data-tab=walk]").hidden = !(session.user && session.user.role === "grid_worker");
    window.scrollTo(0, 0);
    return Promise.resolve(ROUTES[target](arg, live))
      .catch((err) => { if (live()) { showError(err); } });
  }

  function home() {
    return session.user && session.user.role === "team_member" ? "tasks" : "report";
  }

  function title(key) {
    $("#title").textContent = t(key);
    document.title = t(key) + " · " + t("app");
  }

  function showError(err) {
    const p = document.createElement("p");
    p.className = "error";
    p.dataset.testid = "error";
    p.textContent = err.message || String(err);
    screen.prepend(p);
  }

  function renderLogin() {
    title("login.title");
    screen.innerHTML = `<form class="login" data-testid="login-form" novalidate>
      <p class="error" data-testid="login-error" hidden></p>
      <label for="u">${t("login.username")}</label>
      <input id="u" name="username" autocomplete="username" autocapitalize="none"
             data-testid="login-username" required value="${esc(session.user ? session.user.username : "")}">
      <label for="p">${t("login.password")}</label>
      <input id="p" name="password" type="password" autocomplete="current-password"
             data-testid="login-password" required>
      <p><button class="primary" type="submit" data-testid="login-submit">${t("login.submit")}</button></p>
    </form>`;
    const form = $("form", screen);
    if (session.user) {  // what waits for this sign-in: kept, sent once it is back
      outbox.all().then((items) => {
        const n = items.filter((i) => i.state !== "sent" && i.user_id === session.user.id).length;
        if (n && form.isConnected) {
          const note = document.createElement("p");
          note.className = "note";
          note.dataset.testid = "login-kept";
          note.textContent = t("login.kept", { n });
          form.prepend(note);
        }
      }).catch(() => null);
    }
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const err = $("[data-testid=login-error]", screen);
      err.hidden = true;
      try {
        const r = await fetch("/api/v1/auth/token", { method: "POST", body: new URLSearchParams({
          username: form.username.value.trim(), password: form.password.value }) });
        const body = await r.json().catch(() => null);
        if (!r.ok) {
          throw new Error(r.status === 429 ? t("login.throttled") : r.status === 401 ?
            t("login.failed") : (body && body.detail) || String(r.status));
        }
        if (!session.user || session.user.id !== body.user.id) { report.clear(); }
        Object.assign(session, { token: body.access_token, refresh: body.refresh_token,
                                 user: body.user, exp: Date.now() + body.expires_in * 1000 });
        saveSession();
        await reviveAuthFailures();
        await walk.resume().catch(() => null);
        const target = "#" + home();
        if (location.hash === target) { route(); } else { location.hash = target; }
        flush();
        refreshTaskBadge();
        refreshInboxBadge();
        loadCategories();
      } catch (ex) {
        err.textContent = said(ex);
        err.hidden = false;
      }
    });
  }

  function reviveAuthFailures() {
    const me = session.user.id;
    return outbox.requeue((i) => i.state === "failed" && i.auth && i.user_id === me,
                   (i) => Object.assign(i, { state: "queued", auth: false, error: null, next_at: 0 }));
  }

  /* categories: the taxonomy, kept for offline use */
  let categories = null;
  let categoriesLoading = null;
  function loadCategories() {
    if (categories) { return Promise.resolve(categories); }
    categoriesLoading = categoriesLoading || cachedGet("/api/v1/categories").then((r) => {
      categories = r.body.domains.filter((d) => d.active !== false);
      return categories;
    }).finally(() => { categoriesLoading = null; });
    return categoriesLoading;
  }
  function categoryName(code) {
    for (const d of categories || []) {
      for (const c of [d, ...(d.children || [])]) {
        if (c.code === code) { return lang === "zh" ? c.name_zh : c.name_en; }
      }
    }
    return code;
  }

  const walk = window.gisWalk({  // walk.js
    t, esc, $, screen, title, api, cachedGet, session, when, outbox,
    onLeave: (fn) => cleanup.push(fn), refresh: () => { if (current === "walk") { route(); } }
  });
  const report = window.gisReport({  // report.js
    t, esc, $, screen, title, api, cachedGet, session, lang: () => lang, loadCategories,
    categoryName, outbox, onLeave: (fn) => cleanup.push(fn), go: (hash) => { location.hash = hash; },
    walkKey: () => walk.runningKey()
  });

  async function renderQueue(_, live) {
    title("queue.title");
    const items = (await outbox.all()).reverse();
    updateBadge(items);
    if (current !== "queue" || (live && !live())) { return; }
    const mine = session.user ? session.user.id : null;
    screen.innerHTML = items.length ? `<ul class="list" data-testid="queue">${items.map((i) => `
      <li data-testid="queue-item" data-state="${i.state}" data-key="${esc(i.key)}"
          data-case-id="${esc(i.case_id || "")}">
        <span class="badge ${i.state}">${t("queue." + i.state)}</span>
        <b>${esc(i.category_name || i.fields.category)}</b>
        <div>${esc(i.fields.description)}</div>
        <div class="meta">${when(new Date(i.created_at).toISOString())} ·
          ${t("queue.photos", { n: i.photo_count })}${i.attempts > 1 ? " · " + t("queue.attempts", { n: i.attempts }) : ""}${i.state === "sending" ? ' · <span class="progress"></span>' : ""}
          ${i.case_no ? ` · <a href="#case/${esc(i.case_id)}" data-testid="queue-case">${esc(i.case_no)}</a>` : ""}</div>
        ${i.user_id !== mine && i.state !== "sent" ? `<div class="note">${t("queue.other_user", { u: esc(i.user_name) })}</div>` : ""}
        ${i.error && i.state !== "sent" ? `<div class="error" data-testid="queue-error">${esc(i.error)}</div>` : ""}
        ${i.state === "failed" ? `<div class="row"><button type="button" data-retry="${esc(i.key)}"
            data-testid="queue-retry">${t("queue.retry")}</button><button type="button" class="danger"
            data-delete="${esc(i.key)}" data-testid="queue-delete">${t("queue.delete")}</button></div>` : ""}
      </li>`).join("")}</ul>` : `<p class="note" data-testid="queue-empty">${t("queue.empty")}</p>`;
    screen.querySelectorAll("[data-retry]").forEach((b) => b.addEventListener("click", async () => {
      const key = b.dataset.retry;
      await outbox.requeue((i) => i.key === key && i.state === "failed",
                    (i) => Object.assign(i, { state: "queued", error: null, next_at: 0, auth: false }));
      renderQueue();
      flush();
    }));
    screen.querySelectorAll("[data-delete]").forEach((b) => b.addEventListener("click", async () => {
      if (!confirm(t("queue.confirm_delete"))) { return; }
      const key = b.dataset.delete;
      await outbox.remove(key);
      renderQueue();
    }));
  }

  function caseList(features, empty) {
    if (!features.length) { return `<p class="note">${t(empty)}</p>`; }
    return `<ul class="list">${features.map((f) => {
      const c = f.properties;
      return `<li data-testid="case-item" data-case-id="${esc(c.id)}" data-status="${esc(c.status)}">
        <a href="#case/${esc(c.id)}"><span class="badge ${esc(c.status)}">${t("status." + c.status)}</span>
        ${c.overdue ? `<span class="badge overdue">${t("case.overdue")}</span>` : ""}
        <b>${esc(categoryName(c.category))}</b><div>${esc(c.description)}</div>
        <div class="meta">${esc(c.case_no)} · ${when(c.reported_at)}${c.deadline_at && OPEN.includes(c.status) ?
          ` · ${t("case.deadline")} ${when(c.deadline_at)}` : ""}</div></a></li>`;
    }).join("")}</ul>`;
  }

  let casesScope = "mine";
  async function renderCases(_, live) {
    title("cases.title");
    await loadCategories().catch(() => null);
    const q = casesScope === "mine" ? "mine=true" : "";
    const { body, cached } = await cachedGet(`/api/v1/cases?${q}&limit=50&order=newest`);
    if (!live()) { return; }
    screen.innerHTML = `<div class="row">
      <button type="button" data-scope="mine" data-testid="cases-mine" class="${casesScope === "mine" ? "primary" : ""}">${t("cases.mine")}</button>
      <button type="button" data-scope="area" data-testid="cases-area" class="${casesScope === "area" ? "primary" : ""}">${t("cases.area")}</button></div>
      ${cached ? `<p class="note">${t("cases.cached")}</p>` : ""}
      <div data-testid="cases">${caseList(body.features, "cases.empty")}</div>`;
    screen.querySelectorAll("[data-scope]").forEach((b) => b.addEventListener("click", () => {
      casesScope = b.dataset.scope;
      renderCases();
    }));
  }

  /* My tasks: cases dispatched to my team (to start and handle), and handled cases in my
     grids (to check), each list most urgent first. */
  function taskLists() {
    const user = session.user;
    const lists = [];
    if (user.team_id) {
      lists.push(["tasks.team", "tasks-team", `/api/v1/cases?team_id=${Number(user.team_id)}` +
                  "&status=dispatched&status=in_progress&order=deadline&limit=50"]);
    }
    if (user.role === "grid_worker") {
      lists.push(["tasks.check", "tasks-check", "/api/v1/cases?status=handled&order=deadline&limit=50"]);
    }
    if (user.role === "supervisor") {  // a supervisor out in the field
      lists.push(["tasks.dispatch", "tasks-dispatch",
                  "/api/v1/cases?status=reported&status=accepted&order=deadline&limit=50"]);
    }
    return lists;
  }

  async function renderTasks(_, live) {
    title("tasks.title");
    await loadCategories().catch(() => null);
    const parts = [];
    let waiting = 0;
    for (const [head, id, path] of taskLists()) {
      const r = await cachedGet(path);
      waiting += r.body.numberMatched || 0;
      parts.push(`<h2>${t(head)}</h2><div data-testid="${id}">${caseList(r.body.features, "tasks.empty")}</div>`);
    }
    setTaskBadge(waiting);
    if (!live()) { return; }
    screen.innerHTML = parts.join("") || `<p class="note">${t("tasks.empty")}</p>`;
  }

  function setTaskBadge(n) { $("#tasks-count").textContent = n ? String(n) : ""; }

  /* the tasks tab shows how many wait, so a new dispatch is seen without opening it */
  async function refreshTaskBadge() {
    if (!signedIn() || !navigator.onLine || document.hidden) { return; }
    let n = 0;
    try {
      for (const [, , path] of taskLists()) {
        n += (await api(path.replace("limit=50", "limit=1"))).numberMatched || 0;
      }
      setTaskBadge(n);
    } catch (e) { /* offline or signed out: keep the last count */ }
  }

  /* ---------- the inbox (GET /api/v1/notifications; notify/routes.py) ---------- */
  function setInboxBadge(n) { $("#inbox-count").textContent = n ? String(n) : ""; }

  async function refreshInboxBadge() {
    if (!signedIn() || !navigator.onLine || document.hidden) { return; }
    try {
      setInboxBadge((await api("/api/v1/notifications/unread")).unread);
    } catch (e) { /* offline or signed out: keep the last count */ }
  }

  async function renderInbox(arg, live) {
    if (arg === "settings") { return renderInboxSettings(live); }
    title("inbox.title");
    const page = await api("/api/v1/notifications?limit=50");
    setInboxBadge(page.unread);
    if (!live()) { return; }
    const items = page.items.map((n) => `
      <li data-testid="inbox-item" data-id="${esc(n.id)}" data-case-id="${esc(n.case_id || "")}"
          class="${n.read_at ? "read" : "unread"}">
        <b>${esc(n.title)}</b><div>${esc(n.body)}</div>
        <div class="meta">${esc(new Date(n.created_at).toLocaleString())}</div>
      </li>`).join("");
    const settings = `<a class="btn" href="#inbox/settings" data-testid="inbox-settings">${t("prefs.title")}</a>`;
    screen.innerHTML = page.items.length
      ? `<div class="row">${settings}<button type="button" class="secondary" data-testid="inbox-read-all">${t("inbox.all_read")}</button></div>
         <ul class="list" data-testid="inbox-list">${items}</ul>`
      : `<div class="row">${settings}</div><p class="note" data-testid="inbox-empty">${t("inbox.empty")}</p>`;
    const all = screen.querySelector("[data-testid=inbox-read-all]");
    if (all) {
      all.addEventListener("click", async () => {
        await api("/api/v1/notifications/read-all", { method: "POST" });
        if (live()) { renderInbox(arg, live); }
      });
    }
    screen.querySelectorAll("[data-testid=inbox-item]").forEach((li) => {
      li.addEventListener("click", async () => {
        await api(`/api/v1/notifications/${li.dataset.id}/read`, { method: "POST" });
        await refreshInboxBadge();
        if (li.dataset.caseId) { location.hash = "#case/" + li.dataset.caseId; }
      });
    });
  }

  /* The notification settings (#inbox/settings): GET/PUT /api/v1/notifications/preferences.
     The kinds and channels and their labels come in the answer (notify/kinds.py), a
     channel the account has no address for comes with its reason and stays disabled; only
     what the person changed is sent, and the server's error is shown as it says it. */
  async function renderInboxSettings(live) {
    title("prefs.title");
    const prefs = await api("/api/v1/notifications/preferences");
    if (!live()) { return; }
    drawSettings(prefs, live);
  }

  function drawSettings(prefs, live, saved) {
    const label = (l) => esc(l[lang] || l.zh);
    const on = {};
    prefs.choices.forEach((c) => { on[c.kind + "/" + c.channel] = c; });
    const reasons = prefs.channels.filter((ch) => !ch.reachable).map((ch) => `
      <p class="note warn" data-testid="channel-reason-${esc(ch.code)}">${label(ch.label)}：${label(ch.unreachable_reason)}</p>`
    ).join("");
    const kinds = prefs.kinds.map((k) => `
      <fieldset class="card pref" data-testid="prefs-kind-${esc(k.code)}">
        <legend>${label(k.label)}${k.urgent ? ` <span class="badge overdue">${t("prefs.urgent")}</span>` : ""}</legend>
        <div class="row">${prefs.channels.map((ch) => {
          const c = on[k.code + "/" + ch.code] || {};
          return `<label class="check"><input type="checkbox" data-kind="${esc(k.code)}"
            data-channel="${esc(ch.code)}" data-testid="pref-${esc(k.code)}-${esc(ch.code)}"
            ${c.enabled && ch.reachable ? "checked" : ""} ${ch.reachable ? "" : "disabled"}> ${label(ch.label)}</label>`;
        }).join("")}</div>
      </fieldset>`).join("");
    const q = prefs.quiet_hours;
    screen.innerHTML = `<a class="btn" href="#inbox" data-testid="inbox-back">‹ ${t("inbox.title")}</a>
      <form class="prefs" data-testid="prefs-form" novalidate>
        <p class="note">${t("prefs.inbox_always")}</p>${reasons}${kinds}
        <h2>${t("prefs.quiet")}${q.chosen ? "" : ` <span class="meta">${t("prefs.default")}</span>`}</h2>
        <div class="row">
          <label>${t("prefs.starts")}<input type="time" step="60" data-testid="quiet-starts" value="${esc(q.starts)}"></label>
          <label>${t("prefs.ends")}<input type="time" step="60" data-testid="quiet-ends" value="${esc(q.ends)}"></label>
        </div>
        <p class="note">${t("prefs.quiet_note")}</p>
        <div class="sticky">
          <p class="error" data-testid="prefs-error" role="alert" hidden></p>
          <p class="note ok" data-testid="prefs-result" role="status" ${saved ? "" : "hidden"}>${saved ? t(saved) : ""}</p>
          <button class="primary" type="submit" data-testid="prefs-save">${t("prefs.save")}</button>
        </div>
      </form>`;
    const form = $("form", screen);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const error = $("[data-testid=prefs-error]", form);
      const result = $("[data-testid=prefs-result]", form);
      error.hidden = true;
      result.hidden = true;
      const choices = [...form.querySelectorAll("input[data-kind]")]
        .filter((box) => !box.disabled &&
                box.checked !== !!(on[box.dataset.kind + "/" + box.dataset.channel] || {}).enabled)
        .map((box) => ({ kind: box.dataset.kind, channel: box.dataset.channel, enabled: box.checked }));
      const body = { choices };
      const starts = $("[data-testid=quiet-starts]", form).value;
      const ends = $("[data-testid=quiet-ends]", form).value;
      if (starts !== q.starts || ends !== q.ends) { body.quiet_hours = { starts, ends }; }
      if (!choices.length && !body.quiet_hours) {
        result.textContent = t("prefs.nothing");
        result.hidden = false;
        return;
      }
      const save = $("[data-testid=prefs-save]", form);
      save.disabled = true;
      try {
        const answer = await api("/api/v1/notifications/preferences", { method: "PUT", json: body });
        if (live()) { drawSettings(answer, live, "prefs.saved"); }
      } catch (err) {
        save.disabled = false;
        error.textContent = said(err);
        error.hidden = false;
      }
    });
  }

  async function photoImg(caseId, photo) {
    await fresh().catch(() => null);
    const r = await fetch(`/api/v1/cases/${caseId}/photos/${photo.id}?thumb=true`,
                          { headers: { Authorization: "Bearer " + session.token } });
    return r.ok ? URL.createObjectURL(await r.blob()) : "";
  }

  async function renderCase(id, live) {
    title("case.title");
    await loadCategories().catch(() => null);
    const { body: c, cached } = await cachedGet(`/api/v1/cases/${Number(id)}`);
    if (!live()) { return; }
    const acts = c.allowed_actions || [];
    const has = (a) => acts.includes(a);
    // the nearest teams first: the community's own before the district's
    const teams = has("dispatch") && !cached ? (await api(`/api/v1/teams?unit=${encodeURIComponent(c.unit_code)}`))
      .teams.sort((a, b) => b.unit_code.length - a.unit_code.length) : [];
    if (!live()) { return; }
    const units = (c.units || []).filter((u) => u.level !== TOP_LEVEL).map((u) => u.name).join(" › ");
    screen.innerHTML = `<div class="card" data-testid="case" data-case-id="${esc(c.id)}" data-status="${esc(c.status)}">
      <span class="badge ${esc(c.status)}" data-testid="case-status">${t("status." + c.status)}</span>
      ${c.overdue ? `<span class="badge overdue">${t("case.overdue")}</span>` : ""}
      <h2>${esc(c.category_name ? c.category_name[lang] : categoryName(c.category))}</h2>
      <div>${esc(c.description)}</div>
      <div class="meta">${esc(c.case_no)} · ${when(c.reported_at)}</div>
      <div class="meta">${esc(units || c.address || "")}</div>
      ${c.deadline_at ? `<div class="meta">${t("case.deadline")}: ${when(c.deadline_at)}</div>` : ""}
      ${c.team ? `<div class="meta">${t("case.team")}: ${esc(c.team.name || "")}</div>` : ""}
      <div class="photos" data-testid="case-photos"></div></div>
      ${cached ? `<p class="note" data-testid="cached">${t("cases.cached")}</p>` : actionsPanel(has, teams)}
      <h2>${t("case.timeline")}</h2><ol class="timeline" data-testid="timeline">${(c.timeline || []).map((e) => `
        <li data-action="${esc(e.action)}"><b>${esc(t("ev." + e.action))}</b>
        ${e.to_status && e.to_status !== e.from_status ? `→ ${t("status." + e.to_status)}` : ""}
        <div class="meta">${when(e.at)} ${esc(e.actor_name || e.client_name || "")}</div>
        ${e.note ? `<div>${esc(e.note)}</div>` : ""}</li>`).join("")}</ol>`;
    bindActions(c, live);
    const box = $("[data-testid=case-photos]", screen);
    for (const p of c.photos || []) {
      const url = await photoImg(c.id, p).catch(() => "");
      if (!url) { continue; }
      if (!live()) { URL.revokeObjectURL(url); return; }
      cleanup.push(() => URL.revokeObjectURL(url));
      box.insertAdjacentHTML("beforeend", `<figure data-testid="case-photo" data-stage="${esc(p.stage)}"><img src="${url}" alt=""></figure>`);
    }
  }

  function actionsPanel(allowed, teams) {
    const buttons = [];
    const drawn = new Set();  // actions with a panel of their own; the rest are plain buttons
    const has = (a) => { drawn.add(a); return allowed(a); };
    if (has("accept")) { buttons.push(`<button type="button" class="primary" data-act="accept" data-testid="action-accept">${t("act.accept")}</button>`); }
    if (has("dispatch")) {
      buttons.push(`<label for="team">${t("case.team_pick")}</label>
        <select id="team" data-testid="dispatch-team">${teams.map((tm) =>
          `<option value="${esc(tm.id)}">${esc(tm.name)} · ${esc(tm.unit_name)}</option>`).join("")}</select>
        <button type="button" class="primary" data-act="dispatch" data-testid="action-dispatch">${t("act.dispatch")}</button>`);
    }
    if (has("start")) { buttons.push(`<button type="button" class="primary" data-act="start" data-testid="action-start">${t("act.start")}</button>`); }
    if (has("handle")) {
      buttons.push(`<label for="after">${t("case.after_photo")}</label>
        <input id="after" type="file" accept="image/*" capture="environment" data-testid="handle-photo">
        <button type="button" class="primary" data-act="handle" data-testid="action-handle">${t("act.handle")}</button>`);
    }
    if (has("verify")) {
      buttons.push(`<div class="row"><button type="button" class="primary" data-act="verify-pass" data-testid="verify-pass">${t("act.verify_pass")}</button>
        <button type="button" class="danger" data-act="verify-fail" data-testid="verify-fail">${t("act.verify_fail")}</button></div>`);
    }
    if (has("rate")) {
      buttons.push(`<div class="row"><select id="score" data-testid="rate-score">${[5, 4, 3, 2, 1].map((s) =>
        `<option value="${s}">${"★".repeat(s)}</option>`).join("")}</select>
        <button type="button" data-act="rate" data-testid="action-rate">${t("act.rate")}</button></div>`);
    }
    // plain buttons: the actions that take nothing but a note (the phone has no form for
    // the fields of the desk's actions: vocabulary action_fields)
    const extra = VOCAB.actions.filter((a) => !drawn.has(a) && allowed(a)
      && !(VOCAB.action_fields[a] || []).length).map((a) =>
      `<button type="button" data-act="${a}" data-testid="action-${a}">${t("act." + a)}</button>`);
    if (extra.length) { buttons.push(`<div class="row">${extra.join("")}</div>`); }
    if (!buttons.length) { return ""; }
    return `<div class="card" data-testid="actions"><label for="note">${t("case.note")}</label>
      <textarea id="note" data-testid="note-text" maxlength="2000"></textarea>
      <p class="error" data-testid="action-error" hidden></p>${buttons.join("")}</div>`;
  }

  function bindActions(c, live) {
    const errBox = $("[data-testid=action-error]", screen);
    screen.querySelectorAll("[data-act]").forEach((b) => b.addEventListener("click", async () => {
      errBox.hidden = true;
      const note = ($("#note", screen) || {}).value || "";
      const name = b.dataset.act;
      try {
        if (!navigator.onLine) { throw new Error(t("act.offline")); }
        b.disabled = true;
        const body = { action: name.split("-")[0], note: note.trim() || null };
        if (name === "verify-pass" || name === "verify-fail") { body.passed = name === "verify-pass"; }
        if (name === "rate") { body.score = Number($("#score", screen).value); }
        if (name === "dispatch") { body.team_id = Number($("#team", screen).value); }
        if ((VOCAB.note_required_actions.includes(name) || name === "verify-fail") && !body.note) {
          throw new Error(t("act.need_note"));
        }
        if (name === "handle") {
          const file = $("#after", screen).files[0];
          const hasAfter = (c.photos || []).some((p) => p.stage === "after");
          if (!file && !hasAfter) { throw new Error(t("act.need_photo")); }
          if (file) {
            const shot = await media.downscale(file, t("report.not_image"));
            const form = new FormData();
            form.append("stage", "after");
            form.append("file", shot.blob, "after.jpg");
            const photo = await api(`/api/v1/cases/${c.id}/photos`, { method: "POST", body: form });
            body.photo_ids = [photo.id];
          }
        }
        await api(`/api/v1/cases/${c.id}/actions`, { method: "POST", json: body });
        if (live()) { route(); }
      } catch (ex) {
        b.disabled = false;
        errBox.textContent = said(ex);
        errBox.hidden = false;
      }
    }));
  }

  async function renderGrids(_, live) {
    title("grids.title");
    const codes = session.user.scopes || [];
    const me = `<div class="card" data-testid="me"><b>${esc(session.user.display_name || session.user.username)}</b>
      <span class="meta">${esc(t("role." + session.user.role))}</span>
      <p><button type="button" class="danger" data-testid="sign-out">${t("signout")}</button></p></div>`;
    const bindSignOut = () => $("[data-testid=sign-out]", screen).addEventListener("click", () => {
      report.clear();
      if (session.token) {  // ends the sign-in on the server too (its refresh token with it)
        fetch("/api/v1/auth/sign-out", { method: "POST",
          headers: { Authorization: "Bearer " + session.token } }).catch(() => null);
      }
      Object.assign(session, { token: null, refresh: null });
      saveSession();
      location.hash = "#login";
    });
    if (!codes.length) { screen.innerHTML = `<p class="note">${t("grids.none")}</p>${me}`; bindSignOut(); return; }
    const units = [];
    for (const code of codes) { units.push((await cachedGet(`/api/v1/units/${code}`)).body); }
    if (!live()) { return; }
    screen.innerHTML = `<div id="grid-map" class="map tall" data-testid="grid-map"></div>${units.map((u) => {
      const p = u.properties;
      return `<div class="card" data-testid="grid" data-code="${esc(p.code)}"><h2>${esc(p.name)}</h2>
        <div class="meta">${esc((p.ancestors || []).filter((a) => a.level !== TOP_LEVEL).map((a) => a.name).join(" › "))}</div>
        <div class="meta">${t("grids.population", { p: esc(p.population ?? "-"), h: esc(p.households ?? "-") })}</div>
        <h2>${t("grids.roster")}</h2><ul class="list">${(p.roster || []).map((r) => `
          <li data-testid="roster-item">${esc(t("role." + r.role))} · <b>${esc(r.name)}</b>
          ${r.phone ? ` · <a href="tel:${esc(r.phone)}">${esc(r.phone)}</a>` : ""}</li>`).join("")}</ul></div>`;
    }).join("")}${me}`;
    bindSignOut();
    const el = $("#grid-map");
    const map = await media.makeMap(el, [34.75, 113.65]).catch(() => null);
    if (!map || !el.isConnected) { if (map) { map.remove(); } return; }
    cleanup.push(() => map.remove());
    const layer = L.geoJSON({ type: "FeatureCollection", features: units.filter((u) => u.geometry) },
      { style: { color: "#0b6e4f", weight: 3, fillOpacity: 0.08 } }).addTo(map);
    window.gisMobile.gridLayer = layer;
    if (layer.getLayers().length) { map.fitBounds(layer.getBounds(), { padding: [12, 12] }); }
  }

  /* ---------- chrome: network state, language, start ---------- */
  function showNetwork() {
    const el = $("#net");
    el.textContent = navigator.onLine ? t("online") : t("offline");
    el.classList.toggle("offline", !navigator.onLine);
    el.dataset.online = String(navigator.onLine);
  }

  function applyLanguage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    $("#lang").textContent = lang === "zh" ? "EN" : "中文";
    document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
    $("link[rel=manifest]").href = "/m/manifest.webmanifest" + (lang === "en" ? "?lang=en" : "");
    showNetwork();
  }

  window.addEventListener("online", () => {
    showNetwork();
    outbox.requeue((i) => i.state === "queued" && i.next_at > 0, (i) => Object.assign(i, { next_at: 0 }))
      .finally(flush);
    walk.sync(false);
  });
  window.addEventListener("offline", showNetwork);
  window.addEventListener("hashchange", route);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) { flush(); walk.sync(false); refreshTaskBadge(); refreshInboxBadge(); }
  });
  $("#lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("gis.m.lang", lang);
    applyLanguage();
    route();
  });

  window.gisMobile = { ready: null, flush, outbox, walk, version: document.body.dataset.version };
  applyLanguage();
  if ("serviceWorker" in navigator) {
    const hadWorker = !!navigator.serviceWorker.controller;
    navigator.serviceWorker.addEventListener("controllerchange", () => { newBuild = hadWorker; });
    navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" })
      .then((reg) => { window.gisMobile.sw = reg; })
      .catch(() => { /* the app works without it, only not offline after a reload */ });
  }
  outbox.recover().then(handOff).then(() => walk.resume()).catch(() => null)
    .then(() => route()).then(() => {
    window.gisMobile.ready = performance.now();
    flush();
    refreshTaskBadge();
    refreshInboxBadge();
  });
  setInterval(refreshTaskBadge, 120000);
  setInterval(refreshInboxBadge, 60000);
})();

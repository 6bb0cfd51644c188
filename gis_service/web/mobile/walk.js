/* The walk (巡查): start it for the worker's grid, record positions while it runs, show
   the track, the grid's buildings still to visit today and today's suggested route
   through them, end it (docs/walks.md "On the phone").

   Every fix is written to IndexedDB (gisDb, outbox.js: stores "walks" and "walk_fixes")
   before anything is sent. Fixes are cut into chunks — a chunk_id is made once, stored on
   each of its fixes, and the chunk is sent under that id until the server has it — so
   offline stretches, reloads, a closed app and retries end with every fix stored once
   (the server also keeps each fix once per walk and fix time). The walk's start is sent
   with its own Idempotency-Key (the walk record's key), so a walk can start offline.
   Nothing is recorded outside a walk: the position is watched only while one runs.

   window.gisWalk(app) makes it; app gives t, esc, $, screen, title, api, cachedGet,
   session, onLeave, when, outbox, refresh() (draw the current screen again). */
"use strict";
window.gisWalk = function (app) {
  const { t, esc, $, screen, title, api, cachedGet, session, onLeave, when } = app;
  const db = window.gisDb;
  const media = window.gisMedia;
  // Sampling (battery and privacy): keep a fix when 5 s have passed since the last kept
  // one or the worker has moved 10 m; cut a chunk at 20 fixes or when its oldest fix is
  // 30 s old; a chunk sent after an outage holds at most 100 (the server takes 500).
  const KEEP_EVERY_MS = 5000;
  const KEEP_MOVED_M = 10;
  const CHUNK_FIXES = 20;
  const CHUNK_AGE_MS = 30000;
  const CHUNK_MAX = 100;
  const DUE_DAYS = 1;  // "still to visit today"
  // The suggested route (GET /grids/{code}/due-route) is asked for again when the due list
  // changes (a building passed drops out) or ROUTE_EVERY_MS after the last ask — never on
  // every fix. The last one is kept (localStorage, per walk) and shown when offline.
  const ROUTE_EVERY_MS = 120000;

  let walk = null;     // the running (or ending) walk of the signed-in user, as stored
  let watchId = null;
  let ticker = null;
  let shown = null;    // { map, track, dueLayer } while the walk screen is open
  let due = null;      // the last due list: { grid_code, buildings, ... }
  let plan = null;     // the last route: { key, codes, at, body, failed, error }
  let planAsked = 0;   // when the route was last asked for (ms), and for which due list
  let askedCodes = null;
  let planning = null;
  let syncing = null;
  let lastError = null;

  const me = () => (session.user ? session.user.id : null);
  function metres(a, b) {
    const dx = (a.lon - b.lon) * 111320 * Math.cos(a.lat * Math.PI / 180);
    return Math.hypot(dx, (a.lat - b.lat) * 110540);
  }

  /* ---------- storage ---------- */
  function getWalks() {
    return db.tx(["walks"], "readonly", (x, done) => {
      x.objectStore("walks").getAll().onsuccess = (e) => done(e.target.result || []);
    });
  }
  function fixesOf(key) {
    return db.tx(["walk_fixes"], "readonly", (x, done) => {
      x.objectStore("walk_fixes").index("walk_key").getAll(key).onsuccess =
        (e) => done((e.target.result || []).sort((a, b) => a.t - b.t));
    });
  }
  function putWalk(w) { return db.tx(["walks"], "readwrite", (x) => { x.objectStore("walks").put(w); }); }
  /* Change the stored walk in one transaction (never put back a stale copy). */
  function changeWalk(key, change) {
    return db.tx(["walks"], "readwrite", (x, done) => {
      const s = x.objectStore("walks");
      s.get(key).onsuccess = (e) => {
        const w = e.target.result;
        if (w) { change(w); s.put(w); }
        done(w || null);
      };
    });
  }

  /* Store one fix and the walk's last kept position together. */
  function addFix(fix) {
    return db.tx(["walks", "walk_fixes"], "readwrite", (x) => {
      x.objectStore("walk_fixes").add(fix);
      const s = x.objectStore("walks");
      s.get(fix.walk_key).onsuccess = (e) => {
        const w = e.target.result;
        if (w) { w.last = { t: fix.t, lon: fix.lon, lat: fix.lat }; w.fixes = (w.fixes || 0) + 1; s.put(w); }
      };
    });
  }

  /* Give the walk's fixes that have no chunk yet their chunk_ids (in one transaction, so a
     fix is never in two chunks): when force (the walk ends, the worker asks), when
     CHUNK_FIXES wait, or when the oldest has waited CHUNK_AGE_MS. */
  function cut(key, force) {
    return db.tx(["walks", "walk_fixes"], "readwrite", (x) => {
      const walks = x.objectStore("walks");
      const fixes = x.objectStore("walk_fixes");
      walks.get(key).onsuccess = (e) => {
        const w = e.target.result;
        if (!w) { return; }
        fixes.index("walk_key").getAll(key).onsuccess = (ev) => {
          const open = (ev.target.result || []).filter((f) => !f.chunk_id).sort((a, b) => a.t - b.t);
          if (!open.length) { return; }
          const ripe = force || open.length >= CHUNK_FIXES || Date.now() - open[0].t >= CHUNK_AGE_MS;
          if (!ripe) { return; }
          for (let i = 0; i < open.length; i += CHUNK_MAX) {
            w.seq = (w.seq || 0) + 1;
            const chunkId = `${w.key}-${w.seq}`;
            open.slice(i, i + CHUNK_MAX).forEach((f) => { f.chunk_id = chunkId; fixes.put(f); });
          }
          walks.put(w);
        };
      };
    });
  }

  function markSent(key, chunkId, refused) {
    return db.tx(["walk_fixes"], "readwrite", (x) => {
      const s = x.objectStore("walk_fixes");
      s.index("walk_key").getAll(key).onsuccess = (e) => {
        (e.target.result || []).filter((f) => f.chunk_id === chunkId).forEach((f) => {
          f.sent = true;
          if (refused) { f.refused = refused; }
          s.put(f);
        });
      };
    });
  }

  /* ---------- recording ---------- */
  function watch() {
    if (watchId !== null || !navigator.geolocation) { return; }
    watchId = navigator.geolocation.watchPosition(onFix, () => {
      const el = $("[data-testid=walk-gps]");
      if (el) { el.textContent = t("walk.nogps"); }
    }, { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 });
    tick(true);
  }
  function unwatch() {
    if (watchId !== null) { navigator.geolocation.clearWatch(watchId); }
    watchId = null;
  }
  /* While a walk of this user is kept here unfinished (running, or ended and not yet all
     sent), try every 10 s: chunks ripen by age, and an end waits for its reports. */
  function tick(on) {
    if (on && !ticker) { ticker = setInterval(() => { sync(false); planRoute(); }, 10000); }
    if (!on && ticker) { clearInterval(ticker); ticker = null; }
  }

  let writing = Promise.resolve();
  function onFix(p) {
    if (!walk || walk.state !== "running") { return; }
    const fix = { walk_key: walk.key, t: Math.round(Math.max(p.timestamp || 0, Date.now())),
                  lon: Math.round(p.coords.longitude * 1e7) / 1e7,
                  lat: Math.round(p.coords.latitude * 1e7) / 1e7,
                  accuracy_m: Math.round((p.coords.accuracy || 0) * 10) / 10,
                  chunk_id: null, sent: false };
    const last = walk.last;
    if (last && (fix.t <= last.t ||
                 (fix.t - last.t < KEEP_EVERY_MS && metres(last, fix) < KEEP_MOVED_M))) { return; }
    fix.id = `${walk.key}|${fix.t}`;
    walk.last = { t: fix.t, lon: fix.lon, lat: fix.lat };
    walk.fixes = (walk.fixes || 0) + 1;
    writing = writing.then(() => addFix(fix)).then(() => {
      draw();
      planRoute();  // asks only when the first route is still missing (or it is time)
      return sync(false);
    }).catch((err) => { lastError = err.message || String(err); draw(); });
  }

  /* ---------- sending ---------- */
  function locked(fn) {
    return navigator.locks ? navigator.locks.request("gis-m-walk", fn) : fn();
  }

  /* Send what waits, for every walk of this user kept here: the start, the chunks (cut
     now when force), then the end once all fixes and the walk's reports are sent. */
  function sync(force) {
    if (!navigator.onLine || !session.token) {
      return Promise.resolve(force ? cutAll(true) : cutAll(false)).then(draw);
    }
    if (!syncing) {
      syncing = locked(() => send(force)).catch((err) => {
        lastError = err.message === "Failed to fetch" ? t("err.network") : (err.message || String(err));
      }).finally(() => { syncing = null; draw(); });
    } else if (force) {
      return syncing.then(() => sync(force));
    }
    return syncing;
  }

  async function cutAll(force) {
    for (const w of await getWalks()) {
      if (w.user_id === me() && !w.done) { await cut(w.key, force || w.state === "ended"); }
    }
  }

  async function send(force) {
    let uploaded = false;
    for (const w of await getWalks()) {
      if (w.user_id !== me() || w.done) { continue; }
      let id = w.walk_id;
      if (!id) {
        const body = { client_started_at: new Date(w.started_at).toISOString() };
        if (w.grid_code) { body.grid_code = w.grid_code; }
        let got;
        try {
          got = await api("/api/v1/walks", { method: "POST", json: body,
                                             headers: { "Idempotency-Key": w.key } });
        } catch (err) {
          if (!err.status || err.status >= 500 || [401, 408, 429].includes(err.status)) { throw err; }
          // refused (another walk runs, the grid is not yours): this one cannot start
          await changeWalk(w.key, (cur) => { cur.done = true; cur.refused = err.message; });
          if (walk && walk.key === w.key) { unwatch(); tick(false); walk = null; }
          lastError = err.message;
          continue;
        }
        id = got.id;
        const stored = await changeWalk(w.key, (cur) => {
          cur.walk_id = id;
          cur.grid_code = got.properties.grid_code;
        });
        if (walk && walk.key === w.key) { Object.assign(walk, stored); }
      }
      await cut(w.key, force || w.state === "ended");
      const fixes = await fixesOf(w.key);
      const chunks = [];
      fixes.forEach((f) => { if (f.chunk_id && !f.sent && !chunks.includes(f.chunk_id)) { chunks.push(f.chunk_id); } });
      for (const chunkId of chunks) {
        const points = fixes.filter((f) => f.chunk_id === chunkId).map((f) => ({
          t: new Date(f.t).toISOString(), lon: f.lon, lat: f.lat, accuracy_m: f.accuracy_m }));
        try {
          await api(`/api/v1/walks/${id}/points`, { method: "POST", json: { chunk_id: chunkId, points } });
          await markSent(w.key, chunkId, null);
          uploaded = true;
        } catch (err) {
          // a refusal (4xx but 401/408/429) will not change on a retry: keep its reason and
          // go on, so one bad chunk never holds the walk; anything else: try again later
          if (!err.status || err.status >= 500 || [401, 408, 429].includes(err.status)) { throw err; }
          await markSent(w.key, chunkId, err.message);
        }
      }
      lastError = null;
      if (w.state === "ended") {
        const left = (await fixesOf(w.key)).some((f) => !f.sent);
        // a report made on the walk must reach the server while the walk runs there
        const reports = (await app.outbox.all()).some((i) => i.walk_key === w.key &&
          (i.state === "queued" || i.state === "sending"));
        if (!left && !reports) {
          await api(`/api/v1/walks/${id}/end`, { method: "POST",
            json: { client_ended_at: new Date(w.ended_at).toISOString() } });
          await changeWalk(w.key, (cur) => { cur.done = true; });
          if (walk && walk.key === w.key) {
            walk = null;
            tick(false);
            if (shown) { app.refresh(); }  // the screen showed it uploading: now idle
          }
          uploaded = true;
        }
      }
    }
    if (uploaded && shown) { loadDue(); }
  }

  /* ---------- starting, resuming, ending ---------- */
  async function start(gridCode) {
    const w = { key: db.newKey(), user_id: me(), grid_code: gridCode || null,
                started_at: Date.now(), state: "running", walk_id: null, seq: 0, fixes: 0,
                last: null, done: false };
    await putWalk(w);
    walk = w;
    watch();
    sync(false);
  }

  async function end() {
    if (!walk) { return; }
    unwatch();
    await writing;
    const key = walk.key;
    walk = await changeWalk(key, (cur) => { cur.state = "ended"; cur.ended_at = Date.now(); });
    await cut(key, true);
    await sync(true);
  }

  /* After a reload or a sign-in: take up this user's running walk where it was. */
  async function resume() {
    unwatch();
    tick(false);
    walk = null;
    if (!me()) { return; }
    const mine = (await getWalks()).filter((w) => w.user_id === me() && !w.done)
      .sort((a, b) => a.started_at - b.started_at);
    walk = mine.find((w) => w.state === "running") || mine[mine.length - 1] || null;
    if (walk && walk.state === "running") { watch(); }
    if (mine.length) { tick(true); sync(false); }
  }

  /* ---------- the screen ---------- */
  async function loadDue() {
    const code = walk && walk.grid_code;
    if (!code) { return; }
    try {
      const r = await cachedGet(`/api/v1/grids/${encodeURIComponent(code)}/due-buildings?days=${DUE_DAYS}`);
      due = Object.assign({ cached: r.cached }, r.body);
    } catch (e) { /* never seen and offline: no list yet */ }
    draw();
    planRoute();
  }

  /* ---------- today's suggested route ---------- */
  // one kept route per user, that of their current walk: an older walk's is replaced
  const planStore = () => `gis.m.route.${me()}`;
  function keptPlan() {
    if (!walk) { return null; }
    if (plan && plan.key === walk.key) { return plan; }
    try {
      const kept = JSON.parse(localStorage.getItem(planStore()) || "null");
      plan = kept && kept.key === walk.key ? kept : null;
    } catch (e) { plan = null; }
    return plan;
  }
  /* Ask for the route from the last kept position when the due list's buildings differ
     from those of the last route, or ROUTE_EVERY_MS after the last ask. */
  function planRoute() {
    if (planning || !walk || walk.state !== "running" || !walk.grid_code || !walk.last ||
        !due || due.grid_code !== walk.grid_code || due.cached) { return planning; }
    const codes = `${walk.key}|` + due.buildings.map((b) => b.code).join(",");
    if (codes === askedCodes && Date.now() - planAsked < ROUTE_EVERY_MS) { return null; }
    const last = keptPlan();  // after a reload: the route kept, while it is fresh
    if (last && last.codes === codes && Date.now() - last.at < ROUTE_EVERY_MS) { return null; }
    const key = walk.key;
    const { lon, lat } = walk.last;
    planAsked = Date.now();
    askedCodes = codes;
    planning = api(`/api/v1/grids/${encodeURIComponent(walk.grid_code)}/due-route?` +
                   `days=${DUE_DAYS}&lon=${lon}&lat=${lat}`).then((body) => {
      if (!walk || walk.key !== key) { return; }
      plan = { key, codes, at: Date.now(), body, failed: false, error: null };
      try { localStorage.setItem(planStore(), JSON.stringify(plan)); } catch (e) { /* full */ }
    }).catch((err) => {
      if (!walk || walk.key !== key) { return; }
      const kept = keptPlan();
      if (err.status && err.status < 500 && ![401, 408, 429].includes(err.status)) {
        // refused (too far from the paths…): no route from here, and why
        plan = { key, codes, at: Date.now(), body: null, failed: false, error: err.message };
      } else if (kept) {
        kept.failed = true;  // offline or the server down: keep the last one, say it's stale
      }
    }).finally(() => { planning = null; drawRoute(); });
    return planning;
  }

  async function render(_, live) {
    title("walk.title");
    if (!walk) {
      const grids = session.user.scopes || [];
      screen.innerHTML = `<div class="card" data-testid="walk-idle">
        <p class="note">${t("walk.privacy")}</p>
        ${grids.length > 1 ? `<label for="walk-grid">${t("walk.grid")}</label>
          <select id="walk-grid" data-testid="walk-grid">${grids.map((g) =>
            `<option value="${esc(g)}">${esc(g)}</option>`).join("")}</select>` : ""}
        <p class="error" data-testid="walk-error" hidden></p>
        <button type="button" class="primary" data-testid="walk-start">${t("walk.start")}</button></div>`;
      $("[data-testid=walk-start]", screen).addEventListener("click", async (e) => {
        e.target.disabled = true;
        const pick = $("#walk-grid", screen);
        await start(pick ? pick.value : grids[0]);
        if (live()) { render(_, live); }
      });
      return;
    }
    screen.innerHTML = `<div class="card" data-testid="walk-running" data-key="${esc(walk.key)}">
      <b data-testid="walk-state">${t(walk.state === "running" ? "walk.running" : "walk.ending")}</b>
      <div class="meta">${t("walk.since", { t: when(new Date(walk.started_at).toISOString()) })}</div>
      <div class="meta"><span data-testid="walk-fixes"></span> · <span data-testid="walk-pending"></span></div>
      <div class="meta" data-testid="walk-gps"></div>
      <p class="error" data-testid="walk-error" hidden></p>
      <div class="row"><button type="button" data-testid="walk-sync">${t("walk.sync")}</button>
        ${walk.state === "running" ? `<button type="button" class="danger" data-testid="walk-end">${t("walk.end")}</button>` : ""}</div>
      </div>
      <div id="walk-map" class="map tall" data-testid="walk-map"></div>
      <h2>${t("walk.route")} <span class="meta" data-testid="walk-route-sum"></span></h2>
      <p class="note" data-testid="walk-route-state"></p>
      <ol class="list route" data-testid="walk-route"></ol>
      <h2>${t("walk.due")} <span class="meta" data-testid="walk-due-count"></span></h2>
      <ul class="list" data-testid="walk-due"></ul>`;
    $("[data-testid=walk-sync]", screen).addEventListener("click", () => sync(true));
    const endButton = $("[data-testid=walk-end]", screen);
    if (endButton) {
      endButton.addEventListener("click", async () => {
        if (!confirm(t("walk.confirm_end"))) { return; }
        endButton.disabled = true;
        await end();
        if (live()) { render(_, live); }
      });
    }
    shown = { map: null, track: null, dueLayer: null, routeLayer: null };
    const mine = shown;
    onLeave(() => { if (mine.map) { mine.map.remove(); } if (shown === mine) { shown = null; } });
    draw();
    loadDue();
    const el = $("#walk-map");
    const start0 = walk.last ? [walk.last.lat, walk.last.lon] : [34.75, 113.65];
    const map = await media.makeMap(el, start0).catch(() => null);
    if (!map || !el.isConnected || shown !== mine) { if (map) { map.remove(); } return; }
    mine.map = map;
    draw();
  }

  /* Redraw the counts, the track and the due list (whatever of it is on screen). */
  let drawing = null;
  let redraw = false;
  function draw() {
    if (!shown || !walk) { return; }
    if (drawing) { redraw = true; return; }  // once the drawing under way is done
    const key = walk.key;
    drawing = fixesOf(key).then((fixes) => {
      if (!shown || !walk || walk.key !== key) { return; }
      const count = $("[data-testid=walk-fixes]");
      const pending = $("[data-testid=walk-pending]");
      if (!count) { return; }
      const waiting = fixes.filter((f) => !f.sent).length;
      count.textContent = t("walk.fixes", { n: fixes.length });
      count.dataset.n = String(fixes.length);
      pending.textContent = waiting ? t("walk.pending", { n: waiting }) : t("walk.all_sent");
      pending.dataset.n = String(waiting);
      const err = $("[data-testid=walk-error]");
      err.textContent = lastError || "";
      err.hidden = !lastError;
      if (fixes.length) {
        const f = fixes[fixes.length - 1];
        $("[data-testid=walk-gps]").textContent = t("report.accuracy", { m: Math.round(f.accuracy_m) });
      }
      drawDue();
      drawRoute();
      const map = shown.map;
      if (map && window.L && fixes.length) {
        const line = fixes.map((f) => [f.lat, f.lon]);
        if (shown.track) { shown.track.setLatLngs(line); } else {
          shown.track = L.polyline(line, { color: "#3182bd", weight: 4, interactive: false }).addTo(map);
        }
        if (!map.getBounds().contains(line[line.length - 1])) { map.setView(line[line.length - 1], 17); }
      }
    }).catch(() => null).finally(() => {
      drawing = null;
      if (redraw) { redraw = false; draw(); }
    });
  }

  function drawDue() {
    const list = $("[data-testid=walk-due]");
    if (!list || !due || !walk || due.grid_code !== walk.grid_code) { return; }
    const codes = due.buildings.map((b) => b.code).join(",");
    $("[data-testid=walk-due-count]").textContent = t("walk.due_count", { n: due.due, of: due.buildings_total });
    if (list.dataset.codes === codes) { return; }
    list.dataset.codes = codes;
    list.dataset.due = String(due.due);
    list.innerHTML = due.buildings.length ? due.buildings.map((b) => `
      <li data-testid="due-building" data-code="${esc(b.code)}"><b>${esc(b.name || b.code)}</b>
        <div class="meta">${b.last_visited_at ? t("walk.last", { t: when(b.last_visited_at), d: b.days_since })
          : t("walk.never")}</div></li>`).join("") : `<li class="note" data-testid="due-none">${t("walk.due_none")}</li>`;
    const map = shown && shown.map;
    if (map && window.L) {
      if (shown.dueLayer) { shown.dueLayer.remove(); }
      shown.dueLayer = L.layerGroup(due.buildings.map((b) => L.circleMarker([b.lat, b.lon],
        { radius: 6, color: "#b03a2e", fillOpacity: 0.6, interactive: false }))).addTo(map);
    }
  }

  /* The route: its sum, whether it is stale, its stops in order and, on the map, its line
     and numbered stops. Redrawn only when the route itself changed. */
  function drawRoute() {
    const list = $("[data-testid=walk-route]");
    const state = $("[data-testid=walk-route-state]");
    if (!list || !walk) { return; }
    const p = keptPlan();
    const stale = !!p && !!p.body && (p.failed || !navigator.onLine);
    state.dataset.stale = stale ? "1" : "0";
    const props = p && p.body ? p.body.properties : null;
    let note = "";
    if (!p) { note = walk.last ? t("walk.route_wait") : t("walk.route_nopos"); }
    else if (p.error) { note = p.error; }
    else if (!props.stops.length) { note = t(`walk.route_reason.${props.reason}`); }
    else if (props.left_out.length) { note = t("walk.route_left", { n: props.left_out.length }); }
    if (stale) { note = t("walk.route_stale", { t: when(new Date(p.at).toISOString()) }) + (note ? " " + note : ""); }
    state.textContent = note;
    state.hidden = !note;
    const sum = $("[data-testid=walk-route-sum]");
    sum.textContent = props && props.stops.length ? t("walk.route_sum", {
      n: props.stops.length, d: Math.round(props.distance_m), m: Math.round(props.minutes) }) : "";
    const stamp = p ? `${p.at}|${p.body ? "1" : "0"}` : "";
    const stops = props ? props.stops : [];
    if (list.dataset.stamp !== stamp) {
      list.dataset.stamp = stamp;
      list.dataset.codes = stops.map((x) => x.code).join(",");
      list.innerHTML = stops.map((x) => `
        <li data-testid="route-stop" data-code="${esc(x.code)}" data-order="${x.order}">
          <span class="num">${x.order}</span><b>${esc(x.name || x.code)}</b>
          <div class="meta">${t("walk.route_leg", { d: Math.round(x.leg_m), m: Math.round(x.minutes) })}</div></li>`).join("");
    }
    const map = shown && shown.map;
    if (map && window.L && shown.routeStamp !== stamp) {
      shown.routeStamp = stamp;
      if (shown.routeLayer) { shown.routeLayer.remove(); shown.routeLayer = null; }
      const geom = p && p.body ? p.body.geometry : null;
      if (geom) {
        const layers = [L.polyline(geom.coordinates.map(([lon, lat]) => [lat, lon]),
          { color: "#0b6e4f", weight: 4, dashArray: "6 6", interactive: false, className: "route-line" })];
        stops.forEach((x) => layers.push(L.marker([x.lat, x.lon], { interactive: false, keyboard: false,
          icon: L.divIcon({ className: "route-num", html: String(x.order), iconSize: [22, 22] }) })));
        shown.routeLayer = L.layerGroup(layers).addTo(map);
      }
    }
  }

  return {
    render, resume, sync,
    /* the key of the walk running now (a report made now belongs to it), else null */
    runningKey: () => (walk && walk.state === "running" ? walk.key : null),
    /* the server id of the walk with this key: null when it is not kept here (the report
       goes without it), undefined while its start has not reached the server */
    walkId: (key) => getWalks().then((ws) => {
      const w = ws.find((x) => x.key === key);
      return w ? (w.walk_id || undefined) : null;
    })
  };
};

/* The outbox: every report is written to IndexedDB first and sent from there with its
   Idempotency-Key, so a report made in a basement is kept across reloads, sent when the
   network returns, and stored once however often the send is retried (docs/mobile.md).

   window.gisOutbox(hooks) makes one; hooks tie it to the app:
     session()         -> { token, user } of the signed-in user
     signedIn()        -> whether that sign-in is still valid (or can be renewed)
     fresh(), renew()  -> a usable access token (renewed if it ran out) / renew it now:
                          Promise of true, false when the sign-in has ended (then the
                          report is kept, marked for after sign-in); rejects offline
     expire()          -> the sign-in ran out: ask for it again
     t(key, vars)      -> words for states; reason(status, body) -> words for a refusal
     changed()         -> an item changed state (redraw it)
     counted(items)    -> all items, after each round of sending (for the badge)
     progress(key, f)  -> upload progress of an item, 0..1
     walkId(walk_key)  -> Promise of the server id of the walk a report was made on (an
                          item's walk_key), null when it has none, undefined while the
                          walk's start has not reached the server */
"use strict";
/* The app's one IndexedDB database, "gis-m": the outbox of reports (here) and the walks
   with their fixes (walk.js). gisDb.tx(stores, mode, fn) runs fn(transaction, done) and
   resolves, once the transaction has committed, to what fn passed to done. */
window.gisDb = (function () {
  const VERSION = 2;
  let dbp = null;
  function db() {
    if (!dbp) {
      dbp = new Promise((resolve, reject) => {
        const req = indexedDB.open("gis-m", VERSION);
        req.onupgradeneeded = () => {
          const d = req.result;
          const has = (n) => d.objectStoreNames.contains(n);
          if (!has("outbox")) { d.createObjectStore("outbox", { keyPath: "key" }); }
          // version 2: walks (one record per walk, key = its Idempotency-Key) and their
          // fixes (id = walk key | time), each fix carrying the chunk_id it is sent under
          if (!has("walks")) { d.createObjectStore("walks", { keyPath: "key" }); }
          if (!has("walk_fixes")) {
            d.createObjectStore("walk_fixes", { keyPath: "id" }).createIndex("walk_key", "walk_key");
          }
        };
        req.onsuccess = () => {
          const d = req.result;
          // the browser may close it (storage cleared, a newer version): open again next time
          d.onclose = () => { dbp = null; };
          d.onversionchange = () => { d.close(); dbp = null; };
          resolve(d);
        };
        req.onerror = () => { dbp = null; reject(req.error || new Error("IndexedDB")); };
      });
    }
    return dbp;
  }
  function tx(stores, mode, fn) {
    return db().then((d) => new Promise((resolve, reject) => {
      const x = d.transaction(stores, mode);
      let out;
      x.oncomplete = () => resolve(out);
      x.onerror = () => reject(x.error || new Error("IndexedDB"));
      x.onabort = () => reject(x.error || new Error("IndexedDB"));
      fn(x, (v) => { out = v; });
    }));
  }
  function newKey() {
    if (crypto.randomUUID) { return crypto.randomUUID(); }
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }
  return { tx, newKey };
})();

window.gisOutbox = function (hooks) {
  const store = (function () {
    const tx = (mode, fn) => window.gisDb.tx(["outbox"], mode, (x, done) => fn(x.objectStore("outbox"), done));
    return {
      all: () => tx("readonly", (s, done) => { s.getAll().onsuccess = (e) => done(e.target.result); })
        .then((items) => (items || []).sort((a, b) => a.created_at - b.created_at)),
      add: (item) => tx("readwrite", (s) => { s.add(item); }),
      remove: (key) => tx("readwrite", (s) => { s.delete(key); }),
      /* Read, change and write one item in one transaction, so two writers never put back
         each other's stale copies: change(item) returns the item to store, or null to
         leave it as it is. Resolves to what was stored (or null). */
      update: (key, change) => tx("readwrite", (s, done) => {
        s.get(key).onsuccess = (e) => {
          const item = e.target.result;
          const next = item ? change(item) : null;
          if (next) { s.put(next); }
          done(next || null);
        };
      })
    };
  })();

  const newKey = window.gisDb.newKey;

  /* Everything that changes the outbox's states runs under one lock, across tabs. */
  function locked(fn) {
    return navigator.locks ? navigator.locks.request("gis-m-outbox", fn) : fn();
  }

  let flushing = null;
  let flushTimer = null;

  /* Send every queued report of the signed-in user, oldest first. A network failure
     leaves the item queued with a backoff; a refusal (4xx) marks it failed with the
     server's reason. */
  function flush() {
    if (hooks.session().token && !hooks.signedIn()) { hooks.expire(); }  // the token ran out: sign in again
    if (!navigator.onLine || !hooks.signedIn()) { return Promise.resolve(); }
    if (!flushing) {
      flushing = Promise.resolve().then(() => locked(sendDue))
        .catch(() => { /* storage failed: the timer tries again */ })
        .finally(() => { flushing = null; schedule(); });
    }
    return flushing;
  }

  async function sendDue() {
    for (const item of await store.all()) {
      if (!navigator.onLine || !hooks.signedIn()) { return; }
      if ((item.state === "queued" || item.state === "sending") &&
          item.user_id === hooks.session().user.id && (item.next_at || 0) <= Date.now()) {
        await send(item.key);
      }
    }
  }

  function backoff(attempts) { return Math.min(60000, 1000 * Math.pow(2, attempts - 1)); }

  /* A POST that gives up only when nothing has moved for STALL ms (a fixed timeout would
     never let three photos through a slow uplink), reporting upload progress. */
  const STALL = 45000;
  function post(url, body, headers, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      let stall = null;
      const alive = () => {
        clearTimeout(stall);
        stall = setTimeout(() => xhr.abort(), STALL);
      };
      xhr.open("POST", url);
      Object.keys(headers).forEach((k) => xhr.setRequestHeader(k, headers[k]));
      xhr.upload.onprogress = (e) => { alive(); if (e.lengthComputable) { onProgress(e.loaded / e.total); } };
      xhr.onprogress = alive;
      xhr.onload = () => {
        clearTimeout(stall);
        let parsed = null;
        try { parsed = JSON.parse(xhr.responseText); } catch (e) { parsed = null; }
        resolve({ status: xhr.status, body: parsed });
      };
      xhr.onerror = xhr.onabort = xhr.ontimeout = () => { clearTimeout(stall); reject(new Error("network")); };
      alive();
      xhr.send(body);
    });
  }

  async function send(key) {
    const item = await store.update(key, (cur) =>
      (cur.state === "queued" || cur.state === "sending")
        ? Object.assign(cur, { state: "sending", attempts: (cur.attempts || 0) + 1 }) : null);
    if (!item) { return; }
    // a report made on a walk names the walk (walk.js): its server id once the walk's
    // start has reached the server; until then the report waits
    let walkId = null;
    if (item.walk_key) {
      walkId = await hooks.walkId(item.walk_key);
      if (walkId === undefined) {
        await store.update(key, (cur) => Object.assign(cur, { state: "queued",
          attempts: cur.attempts - 1, next_at: Date.now() + 3000 }));
        return;
      }
    }
    hooks.changed();
    const form = new FormData();
    if (walkId) { form.append("walk_id", String(walkId)); }
    Object.keys(item.fields).forEach((k) => {
      if (item.fields[k] !== null && item.fields[k] !== undefined) { form.append(k, item.fields[k]); }
    });
    (item.photos || []).forEach((blob, i) => form.append("photo", blob, `photo-${i + 1}.jpg`));
    let change;
    const attempt = () => post("/api/v1/cases", form,
      { Authorization: "Bearer " + hooks.session().token, "Idempotency-Key": item.key },
      (done) => hooks.progress(item.key, done));
    try {
      // an access token that ran out (or was refused) is renewed and the same report, same
      // key, sent again; only an ended sign-in parks it until the next sign-in
      let r = (await hooks.fresh()) ? await attempt() : { status: 401, body: null };
      if (r.status === 401 && r.body && await hooks.renew()) { r = await attempt(); }
      if (r.status === 200 || r.status === 201) {
        change = { state: "sent", error: null, case_id: r.body.id, case_no: r.body.case_no,
                   photos_stored: (r.body.photos || []).length, photos: [], sent_at: Date.now() };
      } else if (r.status === 401) {
        change = { state: "failed", error: hooks.t("err.signin"), auth: true };
      } else if (r.status >= 500 || r.status === 429 || r.status === 408 || r.status === 0) {
        change = { state: "queued", error: hooks.t("err.server", { s: r.status }),
                   next_at: Date.now() + backoff(item.attempts) };
      } else {
        change = { state: "failed", error: hooks.reason(r.status, r.body) };
      }
    } catch (err) {
      change = { state: "queued", error: hooks.t("err.network"), next_at: Date.now() + backoff(item.attempts) };
    }
    await store.update(key, (cur) => Object.assign(cur, change));
    hooks.changed();
    if (change.auth) { hooks.expire(); }
  }

  async function schedule() {
    clearTimeout(flushTimer);
    const items = await store.all().catch(() => []);
    const due = items.filter((i) => i.state === "queued" && hooks.session().user &&
                             i.user_id === hooks.session().user.id).map((i) => i.next_at || 0);
    hooks.counted(items);
    if (due.length && navigator.onLine) {
      flushTimer = setTimeout(flush, Math.max(500, Math.min(...due) - Date.now()));
    }
  }

  async function enqueue(fields, photos, extra) {
    const item = Object.assign({
      key: newKey(), user_id: hooks.session().user.id, user_name: hooks.session().user.username,
      created_at: Date.now(), state: "queued", attempts: 0, next_at: 0, error: null,
      fields, photos, photo_count: photos.length
    }, extra || {});
    await store.add(item);
    flush();
    return item;
  }

  /* Change the items matching pick (under the lock: never while one is being sent). */
  async function requeue(pick, change) {
    await locked(async () => {
      for (const item of await store.all()) {
        if (pick(item)) { await store.update(item.key, (cur) => (pick(cur) ? change(cur) : null)); }
      }
    });
  }

  /* A send cut short by a reload or a closed app is simply sent again (same key); sent
     items are shown for three days. */
  async function recover() {
    const old = Date.now() - 3 * 86400000;
    await requeue((i) => i.state === "sending",
                  (i) => Object.assign(i, { state: "queued", next_at: 0 }));
    for (const item of await store.all()) {
      if (item.state === "sent" && item.sent_at < old) { await store.remove(item.key); }
    }
  }

  return {
    all: () => store.all(),
    enqueue, flush, requeue, recover,
    remove: (key) => locked(() => store.remove(key))
  };
};

/* The phone app's service worker: the shell from its cache (the app opens in a basement),
   basemap tiles from the network when it answers and from the cache when it does not.
   Reports are not queued here but in the page's IndexedDB outbox (app.js). */
"use strict";
const VERSION = "{{version}}";
const PRECACHE = ["{{precache}}"];
const SHELL = "gis-m-shell-" + VERSION;
const TILES = "gis-m-tiles";
const MAX_TILES = 3000;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL)
    .then((cache) => cache.addAll(PRECACHE.map((u) => new Request(u, { cache: "reload" }))))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("gis-m-shell-") && k !== SHELL)
      .map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

async function shellFirst(request) {
  const cache = await caches.open(SHELL);
  const hit = request.mode === "navigate"
    ? await cache.match("/m/")  // one page for every /m/ address (the app routes by #)
    : await cache.match(request);
  return hit || fetch(request);
}

async function trim(cache) {
  const keys = await cache.keys();
  for (let i = 0; i < keys.length - MAX_TILES; i++) { await cache.delete(keys[i]); }
}

async function networkThenCache(request) {
  const cache = await caches.open(TILES);
  try {
    const response = await fetch(request);
    if (response.ok) {
      await cache.put(request, response.clone());
      if (Math.random() < 0.02) { trim(cache); }
    }
    return response;
  } catch (err) {
    const hit = await cache.match(request);
    if (hit) { return hit; }
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") { return; }  // reports go to the network as they are
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.mode === "navigate" && url.pathname.startsWith("/m/")) {
    event.respondWith(shellFirst(request));
  } else if (PRECACHE.includes(url.pathname + url.search)) {
    event.respondWith(shellFirst(request));
  } else if (url.pathname.startsWith("/tiles/basemap/") || url.pathname === "/tiles/style.json") {
    event.respondWith(networkThenCache(request));
  }
});

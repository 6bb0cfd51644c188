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
  // one page for every /m/ address (the app routes by #); the precached copy serves
  // whatever encoding the page asked for (the browser decoded it when it was stored)
  const hit = await cache.match(request.mode === "navigate" ? "/m/" : request,
                                { ignoreVary: true, ignoreSearch: request.mode === "navigate" });
  return hit || fetch(request);
}

/* Keep at most MAX_TILES tiles; when storage is full (full), drop the oldest tenth. */
async function trim(cache, full) {
  const keys = await cache.keys();  // oldest first
  const excess = full ? Math.ceil(keys.length / 10) : keys.length - MAX_TILES;
  for (let i = 0; i < excess; i++) { await cache.delete(keys[i]); }
}

/* Network first (a few seconds at most: a "connected" phone in a basement may get
   nothing back), then the kept copy. A full storage never fails a tile that arrived. */
const TILE_WAIT = 6000;
async function networkThenCache(event) {
  const request = event.request;
  const cache = await caches.open(TILES);
  try {
    const response = await Promise.race([
      fetch(request),
      new Promise((_, reject) => setTimeout(() => reject(new Error("slow")), TILE_WAIT))
    ]);
    if (response.ok) {
      const copy = response.clone();
      event.waitUntil(cache.put(request, copy)
        .then(() => (Math.random() < 0.02 ? trim(cache) : null))
        .catch(() => trim(cache, true)));
    }
    return response;
  } catch (err) {
    const hit = await cache.match(request, { ignoreVary: true });
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
    event.respondWith(networkThenCache(event));
  }
});

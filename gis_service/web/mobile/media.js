/* What the phone's camera and map need: photos scaled on the phone (at most 1,600 px,
   JPEG, so EXIF is dropped by the re-encode) and Leaflet with our basemap, loaded on
   first use from the versioned URLs the page carries. */
"use strict";
window.gisMedia = (function () {
  /* ---------- photos: scaled on the phone, EXIF dropped by the re-encode ---------- */
  const MAX_PX = 1600;
  async function downscale(file, notImage) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (err) {
      throw new Error(notImage);
    }
    const scale = Math.min(1, MAX_PX / Math.max(bitmap.width, bitmap.height));
    const w = Math.round(bitmap.width * scale);
    const h = Math.round(bitmap.height * scale);
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    canvas.getContext("2d").drawImage(bitmap, 0, 0, w, h);
    bitmap.close();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    return { blob, w, h };
  }

  /* ---------- maps (Leaflet loaded on first use) ---------- */
  const lazy = JSON.parse(document.body.dataset.lazy || "{}");  // versioned URLs
  let leaflet = null;
  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error("cannot load " + src));
      document.head.appendChild(s);
    });
  }
  function loadLeaflet() {
    if (!leaflet) {
      const css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = lazy["leaflet.css"];
      document.head.appendChild(css);
      leaflet = loadScript(lazy["leaflet.js"])
        .then(() => loadScript(lazy["vectorgrid.js"]))
        .then(() => loadScript(lazy["maps.js"]))
        .then(() => fetch("/tiles/style.json").then((r) => r.json()))
        .catch((err) => { leaflet = null; throw err; });
    }
    return leaflet;
  }
  async function makeMap(el, center) {
    const style = await loadLeaflet();
    const map = L.map(el, { zoomControl: true, attributionControl: false, tap: true })
      .setView(center, 17);
    window.gisBasemap(map, style);
    return map;
  }
  const pin = () => L.divIcon({ className: "", html: '<div class="pin"></div>',
                                iconSize: [28, 28], iconAnchor: [14, 30] });

  return { downscale, makeMap, pin };
})();

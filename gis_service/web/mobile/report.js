/* The report screen: the position from GPS or a pin on a small map, the unit chain under
   it, the category, a description, up to three photos, and the possible duplicates
   nearby; "提交上报" puts the report in the outbox (outbox.js). The draft lives here and
   survives switching tabs, not a reload (photos are kept only once queued).

   window.gisReport(app) makes it; app gives the helpers it shares with the other screens
   (t, esc, $, screen, title, api, cachedGet, session, lang(), loadCategories,
   categoryName, outbox, onLeave(fn) run when the screen is left, go(hash)). */
"use strict";
window.gisReport = function (app) {
  const { t, esc, $, screen, title, api, cachedGet, lang, loadCategories, categoryName,
          outbox, onLeave } = app;
  const media = window.gisMedia;
  const TOP_LEVEL = window.gisVocabulary.levels[0].code;  // the district (vocabulary.js)

  /* The draft survives switching tabs (not a reload: photos are not saved until sent). */
  let draft = null;
  function newDraft() {
    return { lon: null, lat: null, accuracy: null, source: null, category: "", description: "",
             photos: [], units: null };
  }

  async function render(_, live) {
    title("report.title");
    draft = draft || newDraft();
    const cats = await loadCategories().catch(() => []);
    if (!live()) { return; }
    const options = cats.map((d) => `<optgroup label="${esc(lang() === "zh" ? d.name_zh : d.name_en)}">${
      (d.children || []).filter((c) => c.active !== false).map((c) =>
        `<option value="${esc(c.code)}" data-code="${esc(c.code)}"${c.code === draft.category ? " selected" : ""}>${
          esc(lang() === "zh" ? c.name_zh : c.name_en)}</option>`).join("")}</optgroup>`).join("");
    screen.innerHTML = `<form data-testid="report-form" novalidate>
      <label>${t("report.position")}</label>
      <div id="report-map" class="map" data-testid="report-map"></div>
      <div class="where"><span data-testid="report-position"></span>
        <button type="button" id="relocate" data-testid="report-relocate">${t("report.relocate")}</button></div>
      <div class="where meta" data-testid="report-units"></div>
      <label for="cat">${t("report.category")}</label>
      <select id="cat" data-testid="report-category" required>
        <option value="">${t("report.choose")}</option>${options}</select>
      <div id="dups"></div>
      <label for="desc">${t("report.description")}</label>
      <textarea id="desc" data-testid="report-description" maxlength="2000"
        placeholder="${t("report.placeholder")}">${esc(draft.description)}</textarea>
      <label for="photo">${t("report.photos")}</label>
      <input id="photo" type="file" accept="image/*" capture="environment" multiple
             data-testid="report-photo">
      <div class="photos" data-testid="report-photos"></div>
      <p class="error" data-testid="report-error" hidden></p>
      <div class="sticky"><button class="primary" type="submit" data-testid="report-submit">${
        t("report.submit")}</button></div>
    </form>`;
    const form = $("form", screen);
    const errBox = $("[data-testid=report-error]", screen);
    drawPhotos();
    showPosition();
    form.cat.addEventListener("change", () => { draft.category = form.cat.value; checkDuplicates(); });
    form.desc.addEventListener("input", () => { draft.description = form.desc.value; });
    form.photo.addEventListener("change", async () => {
      errBox.hidden = true;
      for (const file of Array.from(form.photo.files)) {
        if (draft.photos.length >= 3) { errBox.textContent = t("report.too_many"); errBox.hidden = false; break; }
        try {
          const shot = await media.downscale(file, t("report.not_image"));
          shot.url = URL.createObjectURL(shot.blob);
          draft.photos.push(shot);
        } catch (ex) { errBox.textContent = ex.message; errBox.hidden = false; }
      }
      form.photo.value = "";
      drawPhotos();
    });
    $("#relocate").addEventListener("click", () => { draft.source = null; lookedUp = null; locate(); });
    form.addEventListener("submit", (e) => { e.preventDefault(); submitReport(null); });
    locate();
    if (draft.lat !== null) { checkDuplicates(); }
    mountReportMap();  // the form is usable now; the map follows
  }

  /* The map shows the worker's own grids (is the pin inside?); with no position yet it
     opens on them, so a tap inside places the pin. */
  async function mountReportMap() {
    const el = $("#report-map");
    const grids = await myGrids();
    const map = await media.makeMap(el, draft.lat !== null ? [draft.lat, draft.lon]
      : [34.75, 113.65]).catch(() => null);
    if (!map || !el.isConnected) { if (map) { map.remove(); } return; }
    reportMap = map;
    onLeave(() => { reportMap = null; marker = null; circle = null; map.remove(); });
    if (grids.length) {
      const outline = L.geoJSON({ type: "FeatureCollection", features: grids },
        { style: { color: "#0b6e4f", weight: 2, fill: false, dashArray: "6 4" },
          interactive: false }).addTo(map);
      if (draft.lat === null) { map.fitBounds(outline.getBounds(), { padding: [8, 8] }); }
    }
    map.on("click", (e) => setPosition(e.latlng.lng, e.latlng.lat, null, "pin"));
    showPosition();
  }

  async function myGrids() {
    const out = [];
    for (const code of app.session.user.scopes || []) {
      try {
        const unit = (await cachedGet(`/api/v1/units/${encodeURIComponent(code)}`)).body;
        if (unit.geometry) { out.push(unit); }
      } catch (e) { /* offline and never seen: the map opens without it */ }
    }
    return out;
  }

  let reportMap = null;
  let marker = null;
  let circle = null;
  let watchId = null;
  function locate() {
    if (!navigator.geolocation) { return; }
    if (watchId !== null) { navigator.geolocation.clearWatch(watchId); }
    const pos = $("[data-testid=report-position]");
    if (draft.lat === null && pos) { pos.textContent = t("report.locating"); }
    watchId = navigator.geolocation.watchPosition((p) => {
      if (draft.source === "pin") { return; }  // the worker placed the pin: keep it
      setPosition(p.coords.longitude, p.coords.latitude, p.coords.accuracy, "gps");
    }, () => {
      if (draft.lat === null && pos) { pos.textContent = t("report.nogps"); }
    }, { enableHighAccuracy: true, maximumAge: 10000, timeout: 20000 });
    const id = watchId;
    onLeave(() => navigator.geolocation.clearWatch(id));
  }

  let lookup = null;
  let lookedUp = null;  // [lon, lat] of the last unit and duplicate lookup
  let lookupSeq = 0;
  function metres(a, b) {
    const dx = (a[0] - b[0]) * 111320 * Math.cos(a[1] * Math.PI / 180);
    return Math.hypot(dx, (a[1] - b[1]) * 110540);
  }
  function setPosition(lon, lat, accuracy, source) {
    if (!draft) { return; }  // a late GPS fix after the report was filed
    draft.lon = Math.round(lon * 1e7) / 1e7;
    draft.lat = Math.round(lat * 1e7) / 1e7;
    draft.accuracy = accuracy;
    draft.source = source;
    showPosition();
    // GPS fixes come every second and wander a few metres: look up again only after a
    // real move, so the duplicate list does not jump under the worker's thumb
    if (lookedUp && metres(lookedUp, [draft.lon, draft.lat]) < 10) { return; }
    clearTimeout(lookup);
    lookup = setTimeout(() => {
      lookedUp = [draft.lon, draft.lat];
      lookupUnits();
      checkDuplicates();
    }, 250);
  }

  function showPosition() {
    const pos = $("[data-testid=report-position]");
    if (!pos || draft.lat === null) { return; }
    pos.textContent = `${draft.lon.toFixed(6)}, ${draft.lat.toFixed(6)} · ` +
      (draft.source === "gps" && draft.accuracy ? t("report.accuracy", { m: Math.round(draft.accuracy) })
        : t("report.pin"));
    pos.dataset.lon = draft.lon;
    pos.dataset.lat = draft.lat;
    const units = $("[data-testid=report-units]");
    if (units && draft.units) { units.textContent = draft.units; }
    if (!reportMap) { return; }
    const ll = [draft.lat, draft.lon];
    if (!marker) {
      marker = L.marker(ll, { draggable: true, icon: media.pin(), autoPan: true }).addTo(reportMap);
      marker.on("dragend", () => { const p = marker.getLatLng(); setPosition(p.lng, p.lat, null, "pin"); });
    } else { marker.setLatLng(ll); }
    if (circle) { circle.remove(); circle = null; }
    if (draft.source === "gps" && draft.accuracy) {
      circle = L.circle(ll, { radius: draft.accuracy, weight: 1, color: "#3182bd", fillOpacity: 0.12,
                              interactive: false }).addTo(reportMap);
    }
    if (!reportMap.getBounds().contains(ll)) { reportMap.setView(ll); }
  }

  async function lookupUnits() {
    const el = $("[data-testid=report-units]");
    if (!navigator.onLine) { if (el) { el.textContent = t("report.unit_offline"); } return; }
    const seq = ++lookupSeq;
    try {
      const r = await fetch(`/api/v1/locate?lon=${draft.lon}&lat=${draft.lat}`);
      const body = r.ok ? await r.json() : null;
      draft.units = body ? body.chain.filter((u) => u.level !== TOP_LEVEL).map((u) => u.name).join(" › ")
        : t("report.outside");
      if (seq !== lookupSeq) { return; }  // an answer for an older position
      draft.unitCode = body && body.grid ? body.grid.code : null;
    } catch (e) { draft.units = t("report.unit_offline"); }
    const now = $("[data-testid=report-units]");
    if (now) { now.textContent = draft.units; now.dataset.grid = draft.unitCode || ""; }
  }

  let dupSeq = 0;
  async function checkDuplicates() {
    const box = $("#dups");
    if (!box) { return; }
    const seq = ++dupSeq;
    if (!navigator.onLine || draft.lat === null || !draft.category) { box.innerHTML = ""; return; }
    let cases = [];
    try {
      cases = (await api(`/api/v1/cases/nearby?lon=${draft.lon}&lat=${draft.lat}` +
                         `&category=${encodeURIComponent(draft.category)}`)).cases;
    } catch (e) { cases = []; }
    const now = $("#dups");
    if (!now || seq !== dupSeq) { return; }
    const ids = cases.map((c) => c.id).join(",");
    if (now.dataset.ids === ids && ids) { return; }  // the same list: leave it where it is
    now.dataset.ids = ids;
    now.innerHTML = cases.length ? `<div class="card dups" data-testid="duplicates">
      <b>${t("dup.title")}</b><p class="note">${t("dup.note")}</p><ul class="list">${cases.map((c) => `
      <li data-testid="duplicate" data-case-id="${esc(c.id)}"><div>${esc(c.description)}<br>
        <span class="meta">${esc(c.case_no)} · ${t("status." + c.status)} · ${t("dup.far", { m: Math.round(Number(c.distance_m)) })}</span></div>
        <button type="button" data-testid="duplicate-link" data-case-id="${esc(c.id)}">${t("dup.same")}</button></li>`).join("")}
      </ul></div>` : "";
    now.querySelectorAll("[data-testid=duplicate-link]").forEach((b) =>
      b.addEventListener("click", () => submitReport(Number(b.dataset.caseId))));
  }

  let submitting = false;
  async function submitReport(linkTo) {
    if (submitting) { return; }  // a double tap files one report
    const errBox = $("[data-testid=report-error]");
    const missing = [];
    if (draft.lat === null) { missing.push(t("report.position")); }
    if (!draft.category) { missing.push(t("report.category")); }
    if (!draft.description.trim() && !linkTo) { missing.push(t("report.description")); }
    if (missing.length) {
      errBox.textContent = t("report.missing", { what: missing.join("、") });
      errBox.hidden = false;
      return;
    }
    const fields = { category: draft.category, lon: String(draft.lon), lat: String(draft.lat),
                     coord_sys: "wgs84", description: draft.description.trim() || t("dup.default"),
                     link_to: linkTo ? String(linkTo) : null };
    const senders = screen.querySelectorAll(
      "[data-testid=report-submit], [data-testid=duplicate-link]");
    submitting = true;
    senders.forEach((b) => { b.disabled = true; });
    try {
      await outbox.enqueue(fields, draft.photos.map((p) => p.blob),
                    { category_name: categoryName(draft.category), link_to: linkTo,
                      walk_key: app.walkKey() });  // made on a walk: linked to it (walk.js)
    } catch (err) {  // storage full or refused: say so, keep the draft
      errBox.textContent = err.message || String(err);
      errBox.hidden = false;
      senders.forEach((b) => { b.disabled = false; });
      return;
    } finally {
      submitting = false;
    }
    clear();
    app.go("#queue");
  }

  function clear() {
    if (draft) { draft.photos.forEach((p) => URL.revokeObjectURL(p.url)); }
    draft = null;
    lookedUp = null;
  }

  function drawPhotos() {
    const box = $("[data-testid=report-photos]");
    if (!box) { return; }
    box.innerHTML = draft.photos.map((p, i) => `<figure data-testid="report-photo-item"
      data-width="${p.w}" data-height="${p.h}"><img src="${p.url}" alt="">
      <button type="button" data-i="${i}" aria-label="remove">✕</button></figure>`).join("");
    box.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
      const [gone] = draft.photos.splice(Number(b.dataset.i), 1);
      URL.revokeObjectURL(gone.url);
      drawPhotos();
    }));
    $("#photo").disabled = draft.photos.length >= 3;
  }

  return {
    render,
    clear,
    /* something is being written: not the moment to reload for a new build */
    busy: () => !!(draft && (draft.description || draft.photos.length))
  };
};

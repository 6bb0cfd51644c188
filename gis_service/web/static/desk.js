/* The command desk's case queue (/desk/): tabs with live counts, filters kept in the URL,
   the list paged by the server (/api/v1/desk/queue) and a Leaflet map of the same cases.
   Served by our own server; needs Leaflet, Leaflet.VectorGrid, maps.js (the basemap) and
   /m/vocabulary.js (the service's word lists). No inline script: the page's CSP forbids it. */
(function () {
  "use strict";
  var config = JSON.parse(document.body.getAttribute("data-config"));
  var zh = config.lang === "zh";
  var vocab = window.gisVocabulary || { statuses: [] };
  var FILTERS = ["status", "category", "unit", "team_id", "reporter_id", "from", "to", "q"];
  var PAGE = 50;
  var WORDS = {
    approvals: ["待审批", "Approvals waiting"], open: ["在办", "Open"], all: ["全部", "All"], filter: ["筛选", "Filter"],
    clear: ["清除", "Clear"], case_no: ["编号", "No."], status: ["状态", "Status"],
    category: ["类别", "Category"], unit: ["网格", "Unit"], team_id: ["处置队伍", "Team"],
    reporter_id: ["上报人编号", "Reporter id"], from: ["上报自", "Reported from"],
    to: ["至", "to"], q: ["关键词", "Text"], reported_at: ["上报时间", "Reported"],
    left: ["剩余时限", "Time left"], none: ["无", "none"], prev: ["上一页", "Previous"],
    next: ["下一页", "Next"], overdue: ["超期", "overdue"], empty: ["没有案件", "No cases"],
    h: ["小时", "h"], d: ["天", "d"], m: ["分钟", "min"], failed: ["加载失败", "Failed to load"]
  };
  function w(key) { return WORDS[key][zh ? 0 : 1]; }
  var statusLabel = {};
  var categoryName = {};
  vocab.statuses.forEach(function (s) { statusLabel[s.code] = s.label[zh ? "zh" : "en"]; });

  var stats = (window.gisDesk = { polls: 0, notModified: 0, reloads: 0, ready: false });
  var params = new URLSearchParams(window.location.search);
  var state = {
    tab: params.get("tab") || (params.has("tab") ? "" : "to_accept"),
    offset: parseInt(params.get("offset") || "0", 10) || 0,
    selected: params.get("case") ? parseInt(params.get("case"), 10) : null,
    filters: {}
  };
  FILTERS.forEach(function (k) { if (params.get(k)) { state.filters[k] = params.get(k); } });

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  /* the page's address carries the view: tab, filters, page and selected case */
  function query(extra) {
    var q = new URLSearchParams();
    FILTERS.forEach(function (k) { if (state.filters[k]) { q.set(k, state.filters[k]); } });
    Object.keys(extra || {}).forEach(function (k) {
      if (extra[k] !== null && extra[k] !== undefined && extra[k] !== "") { q.set(k, extra[k]); }
    });
    return q;
  }
  function saveUrl() {
    var q = query({ tab: state.tab, offset: state.offset || null, case: state.selected });
    if (!zh) { q.set("lang", "en"); }
    if (state.tab === "") { q.set("tab", ""); }
    history.replaceState(null, "", "/desk/?" + q.toString());
  }

  /* ---- tabs and counts ---- */
  var tabsBox = document.querySelector(".desk-tabs");
  var tabButtons = {};
  function tabButton(name, label) {
    var b = el("button", { type: "button", role: "tab", "data-testid": "tab-" + (name || "all"),
                           "data-tab": name });
    b.appendChild(el("span", {}, label));
    b.appendChild(el("b", { "data-testid": "count-" + (name || "all") }, ""));
    b.addEventListener("click", function () {
      state.tab = name; state.offset = 0; state.selected = null; state.fitted = false;
      showTabs(); load();
    });
    tabButtons[name] = b;
    tabsBox.appendChild(b);
  }
  Object.keys(config.tabs).forEach(function (name) { tabButton(name, config.tabs[name]); });
  tabButton("", w("all"));
  tabButtons[""].querySelector("b").remove();  /* every case, closed too: counted below */
  var open = el("span", { "class": "desk-open", "data-testid": "open" });
  open.appendChild(el("span", {}, w("open") + " "));
  open.appendChild(el("b", { "data-testid": "count-open" }, ""));
  tabsBox.appendChild(open);
  var approvals = el("span", { "class": "desk-approvals", "data-testid": "approvals" });
  approvals.appendChild(el("span", {}, w("approvals") + " "));
  approvals.appendChild(el("b", { "data-testid": "count-approvals" }, ""));
  tabsBox.appendChild(approvals);
  function showTabs() {
    Object.keys(tabButtons).forEach(function (k) {
      tabButtons[k].setAttribute("aria-selected", k === state.tab ? "true" : "false");
    });
  }
  function showCounts(c) {
    Object.keys(c.tabs).forEach(function (k) {
      if (tabButtons[k]) { tabButtons[k].querySelector("b").textContent = c.tabs[k]; }
    });
    open.querySelector("b").textContent = c.open;
    approvals.querySelector("b").textContent = c.approvals;
  }

  /* ---- filters ---- */
  var form = document.querySelector(".desk-filters");
  function field(name, control) {
    var label = el("label", {}, w(name) + " ");
    control.setAttribute("name", name);
    control.setAttribute("data-testid", "filter-" + name);
    if (state.filters[name]) { control.value = state.filters[name]; }
    label.appendChild(control);
    form.appendChild(label);
    return control;
  }
  function select(name, options) {
    var s = el("select");
    s.appendChild(el("option", { value: "" }, w("all")));
    options.forEach(function (o) { s.appendChild(el("option", { value: o[0] }, o[1])); });
    return field(name, s);
  }
  select("status", vocab.statuses.map(function (s) { return [s.code, statusLabel[s.code]]; }));
  var categorySelect = select("category", []);
  var teamSelect = select("team_id", []);
  field("unit", el("input", { type: "text", size: "14", inputmode: "numeric" }));
  field("reporter_id", el("input", { type: "number", min: "1" }));
  field("from", el("input", { type: "date" }));
  field("to", el("input", { type: "date" }));
  field("q", el("input", { type: "search", size: "12" }));
  form.appendChild(el("button", { type: "submit", "data-testid": "filter-apply" }, w("filter")));
  var clear = el("button", { type: "button", "data-testid": "filter-clear" }, w("clear"));
  form.appendChild(clear);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    state.filters = {};
    FILTERS.forEach(function (k) { var v = form.elements[k].value.trim(); if (v) { state.filters[k] = v; } });
    state.offset = 0; state.selected = null; state.fitted = false; etag = null; load(); poll();
  });
  clear.addEventListener("click", function () {
    FILTERS.forEach(function (k) { form.elements[k].value = ""; });
    form.requestSubmit();
  });
  function fill(selectEl, options) {
    var keep = state.filters[selectEl.name] || "";
    options.forEach(function (o) { selectEl.appendChild(el("option", { value: o[0] }, o[1])); });
    selectEl.value = keep;
  }
  var named = fetch("/api/v1/categories", { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (c) {
      var opts = [];
      c.domains.forEach(function (d) {
        categoryName[d.code] = zh ? d.name_zh : d.name_en || d.name_zh;
        d.children.forEach(function (k) { categoryName[k.code] = zh ? k.name_zh : k.name_en || k.name_zh; });
        opts.push([d.code, zh ? d.name_zh : d.name_en || d.name_zh]);
        d.children.forEach(function (k) {
          opts.push([k.code, "· " + (zh ? k.name_zh : k.name_en || k.name_zh)]);
        });
      });
      fill(categorySelect, opts);
    });
  fetch("/api/v1/teams", { credentials: "same-origin" }).then(function (r) { return r.json(); })
    .then(function (t) { fill(teamSelect, t.teams.map(function (x) { return [String(x.id), x.name]; })); });

  /* ---- the map ---- */
  var map = L.map("desk-map", { zoomControl: true, preferCanvas: false }).setView([34.78, 113.68], 12);
  fetch("/tiles/style.json", { credentials: "same-origin" }).then(function (r) { return r.json(); })
    .then(function (style) { window.gisBasemap(map, style); });
  var points = L.featureGroup().addTo(map);
  var markers = {};
  var colours = window.gisStatusColours || {};
  function markerStyle(p, on) {
    return { radius: on ? 11 : 6, weight: on ? 3 : 1, color: on ? "#000" : (p.overdue ? "#b00" : "#444"),
             fillColor: on ? "#ffd400" : (colours[p.status] || "#888"), fillOpacity: 0.9 };
  }

  /* ---- the list ---- */
  var table = document.querySelector(".desk-list");
  var tbody = table.querySelector("tbody");
  var head = el("tr");
  ["case_no", "status", "category", "unit", "reported_at", "left"].forEach(function (k) {
    head.appendChild(el("th", {}, w(k)));
  });
  table.querySelector("thead").appendChild(head);
  var statusLine = document.querySelector(".desk-status");
  var pager = document.querySelector(".desk-pager");
  var rows = {};
  var cases = {};

  var running = vocab.deadline_statuses || [];
  function timeLeft(p) {
    if (!p.deadline_at || running.indexOf(p.status) < 0) { return "—"; }
    var mins = Math.round((Date.parse(p.deadline_at) - Date.now()) / 60000);
    var a = Math.abs(mins);
    var text = a >= 2880 ? Math.round(a / 1440) + w("d") : a >= 120 ? Math.round(a / 60) + w("h")
      : a + w("m");
    return mins < 0 ? w("overdue") + " " + text : text;
  }
  function local(iso) {
    var d = new Date(iso);
    return d.toLocaleString(zh ? "zh-CN" : "en-GB", { month: "2-digit", day: "2-digit",
                                                      hour: "2-digit", minute: "2-digit" });
  }

  function select_(id, from) {
    if (state.selected && rows[state.selected]) {
      rows[state.selected].classList.remove("sel");
      rows[state.selected].setAttribute("aria-selected", "false");
    }
    if (state.selected && markers[state.selected]) {
      markers[state.selected].setStyle(markerStyle(cases[state.selected], false));
      L.DomUtil.removeClass(markers[state.selected].getElement(), "lit");
    }
    state.selected = id;
    stats.selected = id;
    saveUrl();
    if (id === null) { return; }
    if (rows[id]) {
      rows[id].classList.add("sel");
      rows[id].setAttribute("aria-selected", "true");
      if (from === "map") { rows[id].scrollIntoView({ block: "nearest" }); }
    }
    if (markers[id]) {
      markers[id].setStyle(markerStyle(cases[id], true)).bringToFront();
      L.DomUtil.addClass(markers[id].getElement(), "lit");
      if (from === "list") { map.panTo(markers[id].getLatLng()); }
    }
  }

  function show(fc) {
    tbody.textContent = ""; points.clearLayers(); rows = {}; markers = {}; cases = {};
    fc.features.forEach(function (f) {
      var p = f.properties;
      cases[p.id] = p;
      var tr = el("tr", { "data-testid": "case-row", "data-id": p.id, tabindex: "0",
                          "data-status": p.status });
      if (p.overdue) { tr.classList.add("late"); }
      var no = el("td");  /* the case number opens the case page */
      no.appendChild(el("a", { href: "/desk/cases/" + p.id + (zh ? "" : "?lang=en"),
                               "data-testid": "case-link" }, p.case_no));
      tr.appendChild(no);
      tr.appendChild(el("td", {}, statusLabel[p.status] || p.status));
      tr.appendChild(el("td", { title: p.category }, categoryName[p.category] || p.category));
      tr.appendChild(el("td", {}, p.unit_code || ""));
      tr.appendChild(el("td", {}, local(p.reported_at)));
      tr.appendChild(el("td", { "class": "left" }, timeLeft(p)));
      tr.addEventListener("click", function () { select_(p.id, "list"); });
      tr.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { select_(p.id, "list"); } });
      tbody.appendChild(tr);
      rows[p.id] = tr;
      var m = L.circleMarker([p.lat, p.lon], Object.assign(
        { className: "desk-pt desk-pt-" + p.id }, markerStyle(p, false)));
      m.on("click", function () { select_(p.id, "map"); });
      m.bindTooltip(p.case_no);
      m.addTo(points);
      markers[p.id] = m;
    });
    var total = fc.numberMatched;
    statusLine.textContent = total ? (state.offset + 1) + "–" + (state.offset + fc.numberReturned) + " / " + total
      : w("empty");
    statusLine.setAttribute("data-total", total);
    pager.textContent = "";
    var prev = el("button", { type: "button", "data-testid": "page-prev" }, w("prev"));
    var next = el("button", { type: "button", "data-testid": "page-next" }, w("next"));
    prev.disabled = state.offset === 0;
    next.disabled = state.offset + PAGE >= total;
    prev.addEventListener("click", function () { state.offset = Math.max(0, state.offset - PAGE); load(); });
    next.addEventListener("click", function () { state.offset += PAGE; load(); });
    pager.appendChild(prev); pager.appendChild(next);
    if (fc.features.length && !state.fitted) {
      map.fitBounds(points.getBounds(), { maxZoom: 16, padding: [20, 20] });
      state.fitted = true;
    }
    var keep = state.selected;
    state.selected = null;
    select_(keep && cases[keep] ? keep : null);
  }

  var loading = 0;
  function load() {
    showTabs(); saveUrl();
    var mine = ++loading;
    var q = query({ tab: state.tab || null, limit: PAGE, offset: state.offset });
    return fetch("/api/v1/desk/queue?" + q.toString(), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (fc) {
        if (mine !== loading) { return; }
        stats.reloads += 1;
        show(fc);
        stats.ready = true;
      })
      .catch(function () { statusLine.textContent = w("failed"); });
  }

  /* ---- new cases without a reload: poll the counts, 304 while nothing moved ---- */
  var etag = null;
  function poll() {
    var headers = {};
    if (etag) { headers["If-None-Match"] = etag; }
    stats.polls += 1;
    return fetch("/api/v1/desk/counts?" + query({}).toString(),
                 { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (r) {
        if (r.status === 304) { stats.notModified += 1; return; }
        if (!r.ok) { return; }
        var changed = etag !== null;
        etag = r.headers.get("ETag");
        return r.json().then(function (c) {
          showCounts(c);
          stats.counts = c;
          if (changed) { return load(); }
        });
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  showTabs();
  named.catch(function () { /* codes stand in for names */ }).then(load).then(poll);
  window.setInterval(poll, config.poll_ms);
})();

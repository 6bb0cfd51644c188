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
    h: ["小时", "h"], d: ["天", "d"], m: ["分钟", "min"], failed: ["加载失败", "Failed to load"],
    select_page: ["全选本页", "Select all on this page"], select_row: ["选择", "Select"],
    selected: ["已选", "Selected"], clear_sel: ["取消选择", "Clear selection"],
    accept: ["批量立案", "Accept"], dispatch: ["批量派遣", "Dispatch"], comment: ["批量备注", "Comment"],
    team_choice: ["选择处置队伍", "Choose a team"], note: ["备注内容", "Note"],
    need_team: ["请先选择处置队伍", "Choose a team first"],
    need_note: ["请先填写备注", "Write the note first"],
    need_cases: ["请先勾选案件", "Select cases first"], working: ["正在处理…", "Working…"],
    applied: ["已处理", "Applied"], refused: ["未处理", "Refused"], cases_unit: ["件", ""],
    no_number: ["（辖区外或不存在）", "(outside your jurisdiction or no such case)"],
    locked_by: ["{name} 锁定至 {until}", "{name} holds it until {until}"],
    help: ["快捷键", "Keyboard shortcuts"], close: ["关闭", "Close"],
    k_move: ["上一条 / 下一条", "previous / next case"], k_toggle: ["勾选 / 取消当前案件", "select / unselect the current case"],
    k_accept: ["立案（勾选的案件，未勾选时为当前案件）", "accept (the selected cases, or the current one)"],
    k_dispatch: ["派遣给所选队伍（未选队伍时跳到队伍选择）", "dispatch to the chosen team (no team yet: go to the team choice)"],
    k_comment: ["发送备注（未填写时跳到备注框）", "send the note (none yet: go to the note field)"],
    k_open: ["打开案件页", "open the case page"], k_filter: ["跳到关键词筛选", "go to the text filter"],
    k_help: ["显示 / 隐藏本帮助", "show / hide this help"],
    export: ["导出", "Export"], exporting: ["正在导出…", "Exporting…"], exported: ["已导出", "Exported"]
  };
  /* why a case was refused, by the error code of its refusal (gis_service/errors.py) */
  var REASONS = {
    case_locked: ["他人正在处理", "Locked by another dispatcher"],
    conflict: ["当前状态不允许", "Not allowed in its status"],
    forbidden: ["无权操作", "Not allowed for your role"],
    not_found: ["不存在或不在辖区内", "No such case in your jurisdiction"],
    invalid_input: ["输入不符合要求", "Refused value"]
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
  var approvals = el("a", { "class": "desk-approvals", "data-testid": "approvals",
                            href: "/desk/approvals" + (zh ? "" : "?lang=en") });
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
  /* export the queue as it is filtered (tab and filters) through a job (Prefer:
     respond-async, /api/v1/exports/cases.{format}): its progress, then its file */
  var exportFormat = el("select", { "data-testid": "export-format", "aria-label": w("export") });
  [["xlsx", "Excel"], ["csv", "CSV"], ["gpkg", "GeoPackage"], ["geojson", "GeoJSON"]].forEach(
    function (o) { exportFormat.appendChild(el("option", { value: o[0] }, o[1])); });
  var exportButton = el("button", { type: "button", "data-testid": "export" }, w("export"));
  var exportStatus = el("span", { "data-testid": "export-status", "aria-live": "polite" });
  [exportFormat, exportButton, exportStatus].forEach(function (e) { form.appendChild(e); });
  exportButton.addEventListener("click", function () {
    var q = query({ tab: state.tab, lang: zh ? null : "en" });
    exportButton.disabled = true;
    exportStatus.textContent = w("exporting");
    function done(text) { exportButton.disabled = false; exportStatus.textContent = text; }
    function follow(job) {
      if (job.status === "succeeded") {
        done(w("exported") + " " + job.rows_written + " " + w("cases_unit"));
        window.location.assign(job.download_url);
      } else if (job.status === "failed") {
        done(w("failed") + ": " + ((job.error && job.error.detail) || ""));
      } else {
        exportStatus.textContent = w("exporting") + " " + Math.round(job.progress * 100) + "%";
        setTimeout(function () { window.gisApi("GET", job.status_url).then(follow, fail); }, 500);
      }
    }
    function fail(err) { done(w("failed") + ": " + err.message); }
    window.gisApi("GET", "/api/v1/exports/cases." + exportFormat.value + "?" + q.toString(), null,
                  { Prefer: "respond-async" }).then(follow, fail);
  });
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
  /* the categories and their names: pagefetch.js, fetched once per page */
  var named = Promise.all([window.gisCategories(), window.gisCategoryNames(zh)])
    .then(function (got) {
      Object.assign(categoryName, got[1]);
      var opts = [];
      got[0].domains.forEach(function (d) {
        opts.push([d.code, categoryName[d.code]]);
        d.children.forEach(function (k) { opts.push([k.code, "· " + categoryName[k.code]]); });
      });
      fill(categorySelect, opts);
    });
  window.gisApi("GET", "/api/v1/teams")
    .then(function (t) {
      var opts = t.teams.map(function (x) { return [String(x.id), x.name]; });
      fill(teamSelect, opts);
      opts.forEach(function (o) { bulkTeam.appendChild(el("option", { value: o[0] }, o[1])); });
    });

  /* ---- the map ---- */
  var map = L.map("desk-map", { zoomControl: true, preferCanvas: false }).setView([34.78, 113.68], 12);
  window.gisAddBasemap(map);
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
  var pageBox = el("input", { type: "checkbox", "data-testid": "select-page", "aria-label": w("select_page"),
                              title: w("select_page") });
  var pageCell = el("th", { "class": "check" });
  pageCell.appendChild(pageBox);
  head.appendChild(pageCell);
  ["case_no", "status", "category", "unit", "reported_at", "left"].forEach(function (k) {
    head.appendChild(el("th", {}, w(k)));
  });
  table.querySelector("thead").appendChild(head);
  var statusLine = document.querySelector(".desk-status");
  var pager = document.querySelector(".desk-pager");
  var rows = {};
  var cases = {};
  var checked = {};  /* case id → true: the cases the bulk bar acts on (this page only) */

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
                                                      hour: "2-digit", minute: "2-digit",
                                                      timeZone: config.timezone });
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
    var shown = {};
    fc.features.forEach(function (f) { shown[f.properties.id] = true; });
    Object.keys(checked).forEach(function (id) { if (!shown[id]) { delete checked[id]; } });
    fc.features.forEach(function (f) {
      var p = f.properties;
      cases[p.id] = p;
      var tr = el("tr", { "data-testid": "case-row", "data-id": p.id, tabindex: "0",
                          "data-status": p.status });
      if (p.overdue) { tr.classList.add("late"); }
      var box = el("input", { type: "checkbox", "data-testid": "row-check", "aria-label": w("select_row") + " " + p.case_no });
      box.checked = !!checked[p.id];
      if (box.checked) { tr.classList.add("checked"); }
      box.addEventListener("click", function (ev) { ev.stopPropagation(); });
      box.addEventListener("change", function () { check(p.id, box.checked); });
      var boxCell = el("td", { "class": "check" });
      boxCell.appendChild(box);
      tr.appendChild(boxCell);
      var no = el("td");  /* the case number opens the case page */
      no.appendChild(el("a", { href: "/desk/cases/" + p.id + (zh ? "" : "?lang=en"),
                               "data-testid": "case-link" }, p.case_no));
      tr.appendChild(no);
      tr.appendChild(el("td", {}, statusLabel[p.status] || p.status));
      tr.appendChild(el("td", { title: p.category }, categoryName[p.category] || p.category));
      tr.appendChild(el("td", { "class": "unit" }, p.unit_code || ""));
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
    showChecked();
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

  /* ---- bulk work: the checked cases, one action, the result case by case ---- */
  var bulkBar = document.querySelector(".desk-bulk");
  var bulkResult = document.querySelector(".desk-bulk-result");
  var bulkActions = (config.bulk && config.bulk.actions) || [];
  var countBox = el("span", { "class": "desk-bulk-count" }, w("selected") + " ");
  var checkedCount = el("b", { "data-testid": "bulk-count" }, "0");
  countBox.appendChild(checkedCount);
  bulkBar.appendChild(countBox);
  var bulkButtons = {};
  var bulkTeam = el("select", { "data-testid": "bulk-team", "aria-label": w("team_choice") });
  bulkTeam.appendChild(el("option", { value: "" }, w("team_choice")));
  var bulkNote = el("input", { type: "text", size: "18", maxlength: "2000", "data-testid": "bulk-note",
                               placeholder: w("note"), "aria-label": w("note") });
  bulkActions.forEach(function (action) {
    if (action === "dispatch") { bulkBar.appendChild(bulkTeam); }
    if (action === "comment") { bulkBar.appendChild(bulkNote); }
    var b = el("button", { type: "button", "data-testid": "bulk-" + action, "data-action": action },
               WORDS[action] ? w(action) : action);
    b.addEventListener("click", function () { runBulk(action); });
    bulkButtons[action] = b;
    bulkBar.appendChild(b);
  });
  var clearSel = el("button", { type: "button", "data-testid": "bulk-clear" }, w("clear_sel"));
  clearSel.addEventListener("click", function () { checked = {}; showChecked(); });
  bulkBar.appendChild(clearSel);

  function check(id, on) {
    if (on) { checked[id] = true; } else { delete checked[id]; }
    showChecked();
  }
  function checkedIds() {
    /* in the list's order */
    return Array.prototype.map.call(tbody.querySelectorAll("tr"), function (tr) {
      return parseInt(tr.getAttribute("data-id"), 10);
    }).filter(function (id) { return checked[id]; });
  }
  function showChecked() {
    var n = 0;
    Object.keys(rows).forEach(function (id) {
      var on = !!checked[id];
      if (on) { n += 1; }
      rows[id].classList.toggle("checked", on);
      rows[id].querySelector("input[type=checkbox]").checked = on;
    });
    var all = Object.keys(rows).length;
    pageBox.checked = all > 0 && n === all;
    pageBox.indeterminate = n > 0 && n < all;
    checkedCount.textContent = String(n);
    stats.checked = n;
    Object.keys(bulkButtons).forEach(function (a) { bulkButtons[a].disabled = n === 0 && !state.selected; });
  }
  pageBox.addEventListener("change", function () {
    var on = pageBox.checked;
    Object.keys(rows).forEach(function (id) { if (on) { checked[id] = true; } else { delete checked[id]; } });
    showChecked();
  });

  function say(text) {
    bulkResult.hidden = false;
    bulkResult.textContent = "";
    bulkResult.appendChild(el("p", {}, text));
  }
  function reason(x) {
    var label = REASONS[x.error] ? REASONS[x.error][zh ? 0 : 1] : x.error;
    if (x.error === "case_locked" && x.holder) {
      return label + ": " + w("locked_by").replace("{name}", x.holder.name)
        .replace("{until}", x.expires_at ? local(x.expires_at) : "");
    }
    return label + ": " + x.detail;
  }
  function showResult(body) {
    bulkResult.hidden = false;
    bulkResult.textContent = "";
    var line = el("p", { "data-testid": "bulk-summary" });
    line.appendChild(el("b", { "data-testid": "bulk-applied" }, body.counts.applied));
    line.appendChild(el("span", {}, " " + w("cases_unit") + w("applied") + (zh ? "，" : ", ")));
    line.appendChild(el("b", { "data-testid": "bulk-refused-count" }, body.counts.refused));
    line.appendChild(el("span", {}, " " + w("cases_unit") + w("refused")));
    bulkResult.appendChild(line);
    if (body.refused.length) {
      var list = el("ul", { "data-testid": "bulk-refused" });
      body.refused.forEach(function (x) {
        var li = el("li", { "data-testid": "bulk-refused-case", "data-case-id": x.case_id,
                            "data-error": x.error });
        li.appendChild(el("b", {}, x.case_no || ("#" + x.case_id + " " + w("no_number"))));
        li.appendChild(el("span", {}, " " + reason(x)));
        list.appendChild(li);
      });
      bulkResult.appendChild(list);
    }
  }
  function runBulk(action) {
    var ids = checkedIds();
    if (!ids.length && state.selected) { ids = [state.selected]; }
    if (!ids.length) { say(w("need_cases")); return; }
    var body = { action: action, case_ids: ids.slice(0, (config.bulk && config.bulk.max) || 500) };
    if (action === "dispatch") {
      if (!bulkTeam.value) { say(w("need_team")); bulkTeam.focus(); return; }
      body.team_id = parseInt(bulkTeam.value, 10);
    }
    if (action === "comment" && !bulkNote.value.trim()) { say(w("need_note")); bulkNote.focus(); return; }
    if (bulkNote.value.trim() && action !== "accept") { body.note = bulkNote.value.trim(); }
    say(w("working"));
    stats.bulkRuns = (stats.bulkRuns || 0) + 1;
    return window.gisApi("POST", "/api/v1/desk/bulk", body).then(function (answer) {
      stats.bulk = answer;
      showResult(answer);
      answer.applied.forEach(function (x) { delete checked[x.case_id]; });
      if (action === "comment") { bulkNote.value = ""; }
      etag = null;
      return load().then(poll);
    }, function (err) {
      say(err.status ? (err.body.detail || String(err.status)) : w("failed"));
    });
  }

  /* ---- keyboard: the queue without the mouse (? shows the list) ---- */
  var help = document.querySelector(".desk-help");
  var KEYS = [["j / ↓, k / ↑", "k_move"], ["x", "k_toggle"], ["a", "k_accept"], ["d", "k_dispatch"],
              ["c", "k_comment"], ["Enter / o", "k_open"], ["/", "k_filter"], ["?", "k_help"]];
  help.appendChild(el("h2", {}, w("help")));
  var keyList = el("dl");
  KEYS.forEach(function (k) {
    keyList.appendChild(el("dt", {}, k[0]));
    keyList.appendChild(el("dd", {}, w(k[1])));
  });
  help.appendChild(keyList);
  var closeHelp = el("button", { type: "button", "data-testid": "help-close" }, w("close"));
  closeHelp.addEventListener("click", function () { help.hidden = true; });
  help.appendChild(closeHelp);

  function move(step) {
    var ids = Array.prototype.map.call(tbody.querySelectorAll("tr"), function (tr) {
      return parseInt(tr.getAttribute("data-id"), 10);
    });
    if (!ids.length) { return; }
    var at = ids.indexOf(state.selected);
    var next = at < 0 ? (step > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, at + step));
    select_(ids[next], "list");
    rows[ids[next]].scrollIntoView({ block: "nearest" });
  }
  function caseUrl(id) {
    return (config.case_url || "/desk/cases/{id}").replace("{id}", id) + (zh ? "" : "?lang=en");
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var t = ev.target;
    var typing = (t.tagName === "INPUT" && t.type !== "checkbox") || t.tagName === "SELECT" ||
      t.tagName === "TEXTAREA" || t.isContentEditable;
    if (ev.key === "Escape") {
      if (!help.hidden) { help.hidden = true; return; }
      if (typing) { t.blur(); }
      return;
    }
    if (typing) {
      if (ev.key === "Enter" && t === bulkNote) { ev.preventDefault(); runBulk("comment"); }
      if (ev.key === "Enter" && t === bulkTeam && bulkTeam.value) { ev.preventDefault(); runBulk("dispatch"); }
      return;
    }
    var onControl = t.tagName === "BUTTON" || t.tagName === "A";
    var key = ev.key;
    var has = function (a) { return bulkActions.indexOf(a) >= 0; };
    if (key === "j" || key === "ArrowDown") { ev.preventDefault(); move(1); }
    else if (key === "k" || key === "ArrowUp") { ev.preventDefault(); move(-1); }
    else if (key === "x") { if (state.selected) { check(state.selected, !checked[state.selected]); } }
    else if (key === "a" && has("accept")) { runBulk("accept"); }
    else if (key === "d" && has("dispatch")) {
      if (bulkTeam.value) { runBulk("dispatch"); } else { ev.preventDefault(); bulkTeam.focus(); }
    }
    else if (key === "c" && has("comment")) {
      if (bulkNote.value.trim()) { runBulk("comment"); } else { ev.preventDefault(); bulkNote.focus(); }
    }
    else if ((key === "Enter" && !onControl) || key === "o") {
      if (state.selected) { ev.preventDefault(); window.location.assign(caseUrl(state.selected)); }
    }
    else if (key === "/") { ev.preventDefault(); form.elements.q.focus(); }
    else if (key === "?") { help.hidden = !help.hidden; }
  });

  showTabs();
  named.catch(function () { /* codes stand in for names */ }).then(load).then(poll);
  window.setInterval(poll, config.poll_ms);
})();

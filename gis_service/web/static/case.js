/* One case on the command desk (/desk/cases/{id}): header, contacts, photos before and
   after, timeline, map with its grid and the open cases around it, possible duplicates,
   the case lock and a form per allowed action. Served by our own server; needs Leaflet,
   maps.js (the basemap), /m/vocabulary.js (the service's word lists), pagefetch.js
   (gisApi: every API call) and the phone's words.js (event labels). No inline script:
   the page's CSP forbids it. The endpoints and the answers it reads are listed in
   gis_service/desk/case_page.py. */
(function () {
  "use strict";
  var config = JSON.parse(document.body.getAttribute("data-config"));
  var zh = config.lang === "zh";
  var LANG = zh ? "zh" : "en";
  var vocab = window.gisVocabulary || { statuses: [], actions: [], action_fields: {},
                                        note_required_actions: [], priority_labels: [],
                                        template_actions: [] };
  var gisApi = window.gisApi;
  var phoneWords = (window.gisWords || {})[LANG] || {};
  var BASE = "/api/v1/cases/" + config.case_id;
  var WORDS = {
    status: ["状态", "Status"], category: ["类别", "Category"], priority: ["优先级", "Priority"],
    deadline: ["处理时限", "Deadline"], left: ["剩余", "left"], overdue: ["超期", "overdue"],
    unit: ["所在网格", "Unit"], team: ["处置队伍", "Team"], reporter: ["上报人", "Reporter"],
    contacts: ["联系人", "Contacts"], phone: ["电话", "Phone"], none: ["无", "none"],
    before: ["处置前", "Before"], after: ["处置后", "After"], no_photo: ["暂无照片", "No photos"],
    actions: ["办理", "Actions"], note: ["说明", "Note"], note_required: ["说明（必填）", "Note (required)"],
    template: ["常用语", "Template"], choose: ["请选择", "Choose"], suggested: ["建议队伍", "Suggested"],
    other_teams: ["其他队伍", "Other teams"], open_load: ["在办", "open"], overdue_n: ["超期", "overdue"],
    metres: ["米", "m"], walk: ["步行", "walking"], straight: ["直线", "straight"],
    pass: ["通过", "Passed"], fail: ["未通过，返工", "Failed: rework"], assignee: ["处置人员", "Assignee"],
    urges: ["督办", "Urged"], urge_figures: ["{n} 次 · 待回复 {open}", "{n} times · {open} awaiting a reply"],
    extensions: ["延期", "Extended"], extension_figures: ["{n} 次，原时限 {was}", "{n} times, originally {was}"],
    team_id: ["派给队伍", "Team"], passed: ["核查结果", "Result"], score: ["评分", "Score"],
    extension_hours: ["延期小时数", "Extension (hours)"], review_on: ["复查日期", "Review on"],
    assignee_id: ["指派给", "Assign to"], into_case_id: ["并入案件", "Merge into"],
    merge_into: ["并入此案", "Merge into"], allowed: ["现在可以", "Allowed now"],
    no_actions: ["当前没有可办理的操作", "Nothing you can do on this case now"],
    failed: ["加载失败", "Failed to load"], done: ["已办理", "Done"], sending: ["提交中…", "Sending…"],
    working: ["正在处理：", "Being handled by: "], no_dups: ["附近没有同类在办案件", "No open cases of this category nearby"],
    reload: ["刷新", "Refresh"], h: ["小时", "h"], d: ["天", "d"], m: ["分钟", "min"],
    until: ["至", "until"], system: ["系统", "system"], no_events: ["暂无记录", "No events"]
  };
  function w(key) { return WORDS[key] ? WORDS[key][zh ? 0 : 1] : key; }
  /* the desk's button words; an action without one here (one added later) is named by
     the phone's button word or its timeline event's label (words.js) */
  var ACTION_WORDS = {
    accept: ["立案", "Accept"], reject: ["不予立案", "Reject"], dispatch: ["派遣", "Dispatch"],
    start: ["接单", "Start work"], handle: ["处置完成", "Mark handled"], verify: ["核查", "Verify"],
    rate: ["评价", "Rate"], escalate: ["上报上级", "Escalate"], "return": ["退回", "Return"],
    comment: ["记录进展", "Comment"], extend: ["申请延期", "Request extension"], park: ["挂账", "Park"],
    resume: ["恢复办理", "Resume"], "void": ["作废", "Void"], urge: ["督办", "Urge"],
    reply: ["督办回复", "Reply to urge"], assign: ["指派人员", "Assign"],
    recategorize: ["更改类别", "Change category"], reprioritize: ["更改优先级", "Change priority"],
    note: ["内部备注", "Internal note"], merge: ["合并", "Merge"]
  };
  function actionLabel(a) {
    return ACTION_WORDS[a] ? ACTION_WORDS[a][zh ? 0 : 1] : phoneWords["act." + a] || phoneWords["ev." + a] || a;
  }
  function eventLabel(a) { return phoneWords["ev." + a] || a; }
  var statusLabel = {};
  vocab.statuses.forEach(function (s) { statusLabel[s.code] = s.label[LANG]; });
  var priorityName = {};  /* the vocabulary's priority_labels (cases/workflow.py PRIORITY_LABELS) */
  (vocab.priority_labels || []).forEach(function (p) { priorityName[p.code] = p.label[LANG] || p.label.zh; });
  function priorityLabel(p) { return priorityName[p] || p; }
  /* keyboard: the main actions' keys, shown on their buttons; Esc goes back to the queue */
  var KEYS = { accept: "a", reject: "x", dispatch: "d", verify: "v", comment: "c", escalate: "e",
               "return": "b", urge: "u", park: "p", extend: "t", resume: "r", note: "n",
               assign: "s", recategorize: "g", reprioritize: "y", merge: "m" };

  var stats = (window.gisCase = { loads: 0, ready: false, lock: null, posts: 0 });
  var state = { "case": null, suggestions: null, teamName: {}, categories: [], categoryName: {},
                duplicates: [], lock: null, templates: {} };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  var clock = new Intl.DateTimeFormat(zh ? "zh-CN" : "en-GB", {
    timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false });
  function local(iso) { return iso ? clock.format(new Date(iso)) : "—"; }
  function span(mins) {
    var a = Math.abs(mins);
    return a >= 2880 ? Math.round(a / 1440) + w("d") : a >= 120 ? Math.round(a / 60) + w("h") : a + w("m");
  }

  /* ---- header and contacts ---- */
  var facts = document.querySelector(".case-facts");
  function fact(key, value, cls) {
    facts.appendChild(el("dt", {}, w(key)));
    var dd = el("dd", { "data-testid": "fact-" + key }, value);
    if (cls) { dd.className = cls; }
    facts.appendChild(dd);
    return dd;
  }
  function gridOf(c) {
    var units = (c.units || []).filter(function (u) { return u.level !== "building"; });
    var grid = units.filter(function (u) { return u.level === "grid"; })[0];
    return grid || units[units.length - 1] || null;
  }
  function showHead(c) {
    facts.textContent = "";
    var st = fact("status", statusLabel[c.status] || c.status);
    st.setAttribute("data-status", c.status);
    fact("category", c.category_name ? (c.category_name[LANG] || c.category_name.zh) : c.category)
      .setAttribute("title", c.category);
    fact("priority", priorityLabel(c.priority)).setAttribute("data-priority", c.priority);
    var running = (vocab.deadline_statuses || []).indexOf(c.status) >= 0;
    var dl = local(c.deadline_at);
    var late = false;
    if (c.deadline_at && running) {
      var mins = Math.round((Date.parse(c.deadline_at) - Date.now()) / 60000);
      late = mins < 0;
      dl += " · " + (late ? w("overdue") + " " + span(mins) : w("left") + " " + span(mins));
    }
    fact("deadline", dl, late || c.overdue ? "late" : "");
    fact("unit", (c.units || []).map(function (u) { return u.name; }).join(" › ") || c.unit_code)
      .setAttribute("title", c.unit_code || "");
    if (c.extension_count) {
      fact("extensions", w("extension_figures").replace("{n}", c.extension_count)
        .replace("{was}", local(c.original_deadline_at)));
    }
    if (c.urge_count) {  /* 督办: how often, and how many still wait for the team's reply */
      fact("urges", w("urge_figures").replace("{n}", c.urge_count)
        .replace("{open}", c.urges_unreplied), c.urges_unreplied ? "late" : "");
    }
    fact("team", c.team ? c.team.name : w("none"));
    fact("assignee", c.assignee ? c.assignee.display_name : w("none"));
    fact("reporter", c.reporter ? c.reporter.name : (c.timeline[0] && c.timeline[0].actor_name) ||
         (c.timeline[0] && c.timeline[0].client_name) || w("none"));
    document.querySelector("[data-testid=case-no]").textContent = c.case_no;
    var contacts = document.querySelector(".case-contacts");
    contacts.textContent = "";
    contacts.appendChild(el("h2", {}, w("contacts")));
    [["reporter", c.reporter], ["team", c.team]].forEach(function (pair) {
      if (!pair[1]) { return; }
      var p = el("p", { "data-testid": "contact-" + pair[0] });
      p.appendChild(el("span", { "class": "who" }, w(pair[0]) + " " + pair[1].name));
      if (pair[1].phone) {
        p.appendChild(document.createTextNode(" "));
        p.appendChild(el("a", { href: "tel:" + pair[1].phone, "data-testid": "phone-" + pair[0] },
                         pair[1].phone));
      }
      contacts.appendChild(p);
    });
  }

  /* ---- photos before and after, full size in the lightbox ---- */
  var box = document.querySelector(".case-lightbox");
  box.querySelector("button").addEventListener("click", function () { box.close(); });
  box.addEventListener("click", function (ev) { if (ev.target === box) { box.close(); } });
  function thumb(p) {
    var b = el("button", { type: "button", "class": "thumb", "data-testid": "photo",
                           "data-photo": p.id, "data-stage": p.stage });
    var img = el("img", { src: p.thumbnail_url, alt: w(p.stage) + " " + p.id, loading: "lazy" });
    b.appendChild(img);
    b.addEventListener("click", function () {
      var full = box.querySelector("img");
      full.setAttribute("src", p.url);
      full.setAttribute("alt", w(p.stage) + " " + p.id);
      full.setAttribute("data-testid", "lightbox-img");
      box.showModal();
    });
    return b;
  }
  function showPhotos(c) {
    var holder = document.querySelector(".case-photos");
    holder.textContent = "";
    ["before", "after"].forEach(function (stage) {
      var col = el("div", { "class": "stage", "data-testid": "photos-" + stage });
      col.appendChild(el("h3", {}, w(stage)));
      var mine = c.photos.filter(function (p) { return p.stage === stage; });
      if (!mine.length) { col.appendChild(el("p", { "class": "muted" }, w("no_photo"))); }
      mine.forEach(function (p) { col.appendChild(thumb(p)); });
      holder.appendChild(col);
    });
  }

  /* ---- timeline ---- */
  function showTimeline(c) {
    var ol = document.querySelector(".case-timeline");
    ol.textContent = "";
    var byId = {};
    c.photos.forEach(function (p) { byId[p.id] = p; });
    if (!c.timeline.length) { ol.appendChild(el("li", { "class": "muted" }, w("no_events"))); }
    c.timeline.slice().reverse().forEach(function (e) {
      var li = el("li", { "data-testid": "event", "data-action": e.action, "data-id": e.id });
      var head = el("div", { "class": "ev-head" });
      head.appendChild(el("b", { "data-testid": "event-label" }, eventLabel(e.action)));
      if (e.to_status && e.to_status !== e.from_status) {
        head.appendChild(el("span", { "class": "ev-move" }, "→ " + (statusLabel[e.to_status] || e.to_status)));
      }
      head.appendChild(el("span", { "class": "ev-who" }, e.actor_name || e.client_name || w("system")));
      head.appendChild(el("time", { datetime: e.at }, local(e.at)));
      li.appendChild(head);
      eventDetails(e.data || {}).forEach(function (d) {
        li.appendChild(el("div", { "class": "ev-data", "data-testid": "ev-" + d[0] }, d[1]));
      });
      if (e.note) { li.appendChild(el("p", { "class": "ev-note" }, e.note)); }
      (e.photo_ids || []).forEach(function (id) { if (byId[id]) { li.appendChild(thumb(byId[id])); } });
      ol.appendChild(li);
    });
  }

  /* what an event's data says, in words: [kind, text] (cases/actions.py writes it) */
  function categoryLabel(code) { return state.categoryName[code] || code || w("none"); }
  function eventDetails(d) {
    var out = [];
    var team = d.team_name || state.teamName[d.team_id];
    if (team) { out.push(["team", w("team") + ": " + team]); }
    if (d.assignee_name) { out.push(["assignee", w("assignee") + ": " + d.assignee_name]); }
    if (d.to_category) {
      out.push(["category", w("category") + ": " + categoryLabel(d.from_category) + " → " +
                categoryLabel(d.to_category)]);
    }
    if (d.to_priority) {
      out.push(["priority", w("priority") + ": " + priorityLabel(d.from_priority) + " → " +
                priorityLabel(d.to_priority)]);
    }
    if (d.into_case_no) { out.push(["merge", w("into_case_id") + ": " + d.into_case_no]); }
    return out;
  }

  /* ---- the map: the case, its grid, the open cases around it ---- */
  var map = L.map("case-map", { zoomControl: true });
  window.gisAddBasemap(map)
    .catch(function () { /* no basemap: the case and its grid still show */ });
  var gridLayer = L.featureGroup().addTo(map);
  var nearLayer = L.featureGroup().addTo(map);
  var selfLayer = L.featureGroup().addTo(map);
  var colours = window.gisStatusColours || {};
  var shownGrid = null;
  function showMap(c) {
    selfLayer.clearLayers();
    L.circleMarker([c.lat, c.lon], { className: "case-pt-self", radius: 10, weight: 3,
      color: "#000", fillColor: "#ffd400", fillOpacity: 0.95 }).bindTooltip(c.case_no).addTo(selfLayer);
    var grid = gridOf(c);
    if (!shownGrid) { map.setView([c.lat, c.lon], 17); }
    if (grid && grid.code !== shownGrid) {
      shownGrid = grid.code;
      gisApi("GET", "/api/v1/units/" + encodeURIComponent(grid.code)).then(function (f) {
        gridLayer.clearLayers();
        L.geoJSON(f, { style: { className: "case-grid", color: "#0b6e4f", weight: 2, fillOpacity: 0.08 } })
          .bindTooltip(grid.name).addTo(gridLayer);
        map.fitBounds(gridLayer.getBounds().extend([c.lat, c.lon]), { maxZoom: 18, padding: [10, 10] });
        stats.grid = grid.code;
      }).catch(function () { /* the point alone */ });
    }
    var dy = config.nearby_map_m / 111000, dx = dy / Math.cos(c.lat * Math.PI / 180);
    var q = new URLSearchParams({ bbox: [c.lon - dx, c.lat - dy, c.lon + dx, c.lat + dy].map(function (v) {
      return v.toFixed(6); }).join(","), limit: "200" });
    (vocab.open_statuses || []).forEach(function (s) { q.append("status", s); });
    gisApi("GET", "/api/v1/cases?" + q.toString()).then(function (fc) {
      nearLayer.clearLayers();
      var n = 0;
      fc.features.forEach(function (f) {
        var p = f.properties;
        if (p.id === c.id) { return; }
        n += 1;
        L.circleMarker([p.lat, p.lon], { className: "case-pt-near case-pt-" + p.id, radius: 6, weight: 1,
          color: "#333", fillColor: colours[p.status] || "#888", fillOpacity: 0.85 })
          .bindTooltip(p.case_no + " · " + (statusLabel[p.status] || p.status))
          .on("click", function () { window.location.href = "/desk/cases/" + p.id + (zh ? "" : "?lang=en"); })
          .addTo(nearLayer);
      });
      stats.nearby = n;
    }).catch(function () { stats.nearby = -1; });
  }

  /* ---- possible duplicates: open cases of the same category nearby ---- */
  function mergeAllowed() {
    return (vocab.actions || []).indexOf("merge") >= 0 && state["case"] &&
      state["case"].allowed_actions.indexOf("merge") >= 0;
  }
  function showDuplicates(c) {
    var q = new URLSearchParams({ lon: c.lon, lat: c.lat, category: c.category });
    return gisApi("GET", "/api/v1/cases/nearby?" + q.toString()).then(function (body) {
      state.duplicates = body.cases.filter(function (d) { return d.id !== c.id; });
      var ul = document.querySelector(".case-dups");
      ul.textContent = "";
      if (!state.duplicates.length) { ul.appendChild(el("li", { "class": "muted" }, w("no_dups"))); }
      state.duplicates.forEach(function (d) {
        var li = el("li", { "data-testid": "duplicate", "data-id": d.id });
        li.appendChild(el("a", { href: "/desk/cases/" + d.id + (zh ? "" : "?lang=en") }, d.case_no));
        li.appendChild(el("span", {}, " " + (statusLabel[d.status] || d.status) + " · " +
                          Math.round(d.distance_m) + w("metres") + " · " + local(d.reported_at)));
        if (d.description) { li.appendChild(el("div", { "class": "muted" }, d.description)); }
        if (mergeAllowed()) {
          var b = el("button", { type: "button", "data-testid": "merge-into", "class": "small" }, w("merge_into"));
          b.addEventListener("click", function () { mergeInto(d.id); });
          li.appendChild(b);
        }
        ul.appendChild(li);
      });
    }).catch(function () { state.duplicates = []; });
  }
  function mergeInto(id) {
    var form = document.querySelector("form[data-action=merge]");
    if (!form) { return; }
    var pick = form.querySelector("[name=into_case_id]");
    if (pick) { pick.value = String(id); }
    if (vocab.note_required_actions.indexOf("merge") >= 0) {
      form.querySelector("textarea").focus();
    } else {
      form.requestSubmit();
    }
  }

  /* ---- one widget per field name (Step.fields, the vocabulary's action_fields) ---- */
  function select(options, chosen) {
    var s = el("select");
    s.appendChild(el("option", { value: "" }, w("choose")));
    options.forEach(function (o) {
      if (o.group) {
        var g = el("optgroup", { label: o.group });
        o.options.forEach(function (x) { g.appendChild(el("option", { value: x[0] }, x[1])); });
        s.appendChild(g);
      } else { s.appendChild(el("option", { value: o[0] }, o[1])); }
    });
    if (chosen !== undefined && chosen !== null) { s.value = String(chosen); }
    return s;
  }
  var asInt = function (v) { return v === "" ? undefined : parseInt(v, 10); };
  var asText = function (v) { return v === "" ? undefined : v; };
  var WIDGETS = {
    /* the teams that may take the case, the responsible one first and chosen
       (GET …/team-suggestions), each with its load and its distance to the case */
    team_id: function (c) {
      var sugg = state.suggestions || [];
      function option(s) {
        var bits = [s.name, w("open_load") + " " + s.open_cases, w("overdue_n") + " " + s.overdue_cases,
                    w(s.distance_kind === "network" ? "walk" : "straight") + " " +
                    Math.round(s.distance_m) + w("metres")];
        return [String(s.id), bits.join(" · ")];
      }
      var first = sugg.filter(function (s) { return s.responsible; });
      var rest = sugg.filter(function (s) { return !s.responsible; });
      var opts = [];
      if (first.length) { opts.push({ group: w("suggested"), options: first.map(option) }); }
      if (rest.length) { opts.push({ group: w("other_teams"), options: rest.map(option) }); }
      return { control: select(opts, first.length ? first[0].id : c.team_id), value: asInt };
    },
    passed: function () {
      return { control: select([["true", w("pass")], ["false", w("fail")]]),
               value: function (v) { return v === "" ? undefined : v === "true"; } };
    },
    score: function () {
      return { control: select([5, 4, 3, 2, 1].map(function (n) { return [String(n), "★".repeat(n) + " " + n]; })),
               value: asInt };
    },
    extension_hours: function () {
      return { control: el("input", { type: "number", min: "1", max: "720", step: "1" }), value: asInt };
    },
    review_on: function () { return { control: el("input", { type: "date" }), value: asText }; },
    category: function (c) {
      var opts = [];
      state.categories.forEach(function (d) {
        opts.push({ group: categoryLabel(d.code), options: d.children.map(function (k) {
          return [k.code, categoryLabel(k.code)]; }) });
      });
      return { control: select(opts, c.category), value: asText };
    },
    priority: function (c) {
      return { control: select((vocab.priority_labels || []).map(function (p) {
        return [p.code, priorityLabel(p.code)]; }), c.priority), value: asText };
    },
    /* the active members of the case's team, by name (the case answer's team_members) */
    assignee_id: function (c) {
      return { control: select((c.team_members || []).map(function (m) {
        return [String(m.id), m.display_name]; }), c.assignee ? c.assignee.id : null), value: asInt };
    },
    into_case_id: function () {
      return { control: select(state.duplicates.map(function (d) {
        return [String(d.id), d.case_no + " · " + Math.round(d.distance_m) + w("metres")]; })), value: asInt };
    }
  };
  function widget(name, c) {
    var make = WIDGETS[name] || function () { return { control: el("input", { type: "text" }), value: asText }; };
    var made = make(c);
    made.control.setAttribute("name", name);
    made.control.setAttribute("data-testid", "field-" + name);
    return made;
  }

  /* templates for the notes (GET …/templates: {templates: [{id, action, text_zh, text_en}]}),
     asked once per category, without an action (every action's at once), and only when
     an allowed action is one templates are kept for (the vocabulary's template_actions) */
  function templates(action, c) {
    if ((vocab.template_actions || []).indexOf(action) < 0) { return Promise.resolve([]); }
    if (!state.templates[c.category]) {
      state.templates[c.category] = gisApi("GET", BASE + "/templates").then(function (b) {
        return b.templates;
      }).catch(function () { return []; });
    }
    return state.templates[c.category].then(function (list) {
      return list.filter(function (t) { return t.action === action; });
    });
  }

  /* ---- a form per allowed action ---- */
  var actionsBox = document.querySelector(".case-actions");
  function showActions(c) {
    actionsBox.textContent = "";
    actionsBox.appendChild(el("h2", {}, w("actions")));
    var order = vocab.actions || [];
    var allowed = c.allowed_actions.slice().sort(function (a, b) { return order.indexOf(a) - order.indexOf(b); });
    if (!allowed.length) { actionsBox.appendChild(el("p", { "class": "muted" }, w("no_actions"))); }
    allowed.forEach(function (action) { actionsBox.appendChild(actionForm(action, c)); });
    showLock();
  }
  function actionForm(action, c) {
    var form = el("form", { "class": "case-form", "data-action": action, "data-testid": "form-" + action });
    var fields = (vocab.action_fields || {})[action] || [];
    var needsNote = (vocab.note_required_actions || []).indexOf(action) >= 0;
    var made = {};
    fields.forEach(function (name) {
      var label = el("label", {}, w(name) + " ");
      made[name] = widget(name, c);
      label.appendChild(made[name].control);
      form.appendChild(label);
    });
    var picker = el("span", { "class": "templates" });
    form.appendChild(picker);
    var note = el("textarea", { name: "note", rows: "1", "data-testid": "note-" + action,
                                placeholder: needsNote ? w("note_required") : w("note") });
    if (needsNote) { note.required = true; }
    form.appendChild(note);
    templates(action, c).then(function (list) {
      if (!list.length) { return; }
      var s = select(list.map(function (t) { return [String(t.id), zh ? t.text_zh : t.text_en || t.text_zh]; }));
      s.setAttribute("data-testid", "template-" + action);
      s.setAttribute("aria-label", w("template"));
      s.addEventListener("change", function () {
        var t = list.filter(function (x) { return String(x.id) === s.value; })[0];
        if (t) { note.value = zh ? t.text_zh : t.text_en || t.text_zh; }
      });
      picker.appendChild(el("span", {}, w("template") + " "));
      picker.appendChild(s);
      s.disabled = actionsBox.classList.contains("locked");  /* it may come after the lock */
    });
    var key = KEYS[action];
    var button = el("button", { type: "submit", "data-testid": "do-" + action });
    button.appendChild(document.createTextNode(actionLabel(action)));
    if (key) { button.appendChild(el("kbd", {}, key)); button.setAttribute("aria-keyshortcuts", key); }
    form.appendChild(button);
    var out = el("div", { "class": "case-form-error", "data-testid": "error-" + action, "aria-live": "polite" });
    form.appendChild(out);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = { action: action };
      fields.forEach(function (name) {
        var v = made[name].value(made[name].control.value);
        if (v !== undefined) { body[name] = v; }
      });
      if (note.value.trim()) { body.note = note.value.trim(); }
      button.disabled = true;
      out.textContent = w("sending");
      out.className = "case-form-error";
      stats.posts += 1;
      gisApi("POST", BASE + "/actions", body).then(function () {
        button.disabled = false;
        out.textContent = w("done");
        stats.last = { action: action, status: 200 };
        return load();
      }, function (err) {
        button.disabled = false;
        if (!err.status) { out.textContent = w("failed"); return; }
        var b = err.body || {};
        stats.last = { action: action, status: err.status, error: b.error };
        showRefusal(out, err.status, b);
        if (b.error === "case_locked" && b.holder) {  /* another dispatcher took the case */
          setLock({ holder: b.holder, expires_at: b.expires_at, mine: false });
        }
      });
    });
    return form;
  }
  /* a refusal beside its form: the server's detail and what is allowed now */
  function showRefusal(out, status, b) {
    out.textContent = "";
    out.className = "case-form-error bad";
    out.appendChild(el("span", { "data-testid": "refusal" }, status + " · " + (b.detail || b.error || "")));
    if (b.allowed) {
      out.appendChild(el("div", { "data-testid": "allowed" }, w("allowed") + ": " +
        (b.allowed.length ? b.allowed.map(actionLabel).join("、") : w("none"))));
    }
    var again = el("button", { type: "button", "class": "small", "data-testid": "refresh" }, w("reload"));
    again.addEventListener("click", function () { load(); });
    out.appendChild(again);
  }

  /* ---- the case lock (cases/locks.py): who is working on the case at the desk ----
     {holder: {user_id, name} | null, expires_at, mine}; taken on opening (PUT), renewed
     every config.lock_renew_ms, given back on pagehide (DELETE). While another dispatcher
     holds it the forms are disabled and the page only reads it (GET) until it is free,
     then takes it and brings the case up to date. */
  var lockBox = document.querySelector(".case-lock");
  function holderOf(l) { return l && l.holder && !l.mine ? l.holder : null; }
  function setLock(l) { state.lock = l; showLock(); }
  function showLock() {
    var holder = holderOf(state.lock);
    stats.lock = state.lock;
    lockBox.hidden = !holder;
    lockBox.textContent = holder ? w("working") + holder.name : "";
    lockBox.title = holder && state.lock.expires_at ? w("until") + " " + local(state.lock.expires_at) : "";
    actionsBox.querySelectorAll("input, select, textarea, button").forEach(function (x) {
      x.disabled = !!holder;
    });
    actionsBox.classList.toggle("locked", !!holder);
    document.querySelectorAll("[data-testid=merge-into]").forEach(function (b) { b.disabled = !!holder; });
  }
  function takeLock() {
    return gisApi("PUT", BASE + "/lock").then(setLock, function (err) {
      if (err.status === 409 && err.body && err.body.holder) {
        setLock({ holder: err.body.holder, expires_at: err.body.expires_at, mine: false });
      }  /* anything else (offline for a moment): the next beat tries again */
    });
  }
  function beat() {
    if (!holderOf(state.lock)) { return takeLock(); }
    return gisApi("GET", BASE + "/lock").then(function (l) {
      if (holderOf(l)) { setLock(l); return; }
      return takeLock().then(function () { if (!holderOf(state.lock)) { return load(); } });
    }, function () { /* the next beat */ });
  }
  window.addEventListener("pagehide", function () {
    if (state.lock && state.lock.mine) {
      state.lock = null;  /* a page kept in the back-forward cache takes it again on pageshow */
      gisApi("DELETE", BASE + "/lock", null, null, { keepalive: true }).catch(function () {});
    }
  });
  window.addEventListener("pageshow", function (ev) { if (ev.persisted) { beat(); } });

  /* ---- loading and refreshing without a reload ---- */
  var loading = 0;
  function load() {
    var mine = ++loading;
    return Promise.all([gisApi("GET", BASE), prepared]).then(function (got) {
      var c = got[0];
      if (mine !== loading) { return; }
      state["case"] = c;
      state.lock = c.lock;  /* the lock as the case answer has it: null when free */
      return suggestions(c).then(function () {
        showHead(c); showPhotos(c); showTimeline(c); showMap(c);
        return showDuplicates(c);
      }).then(function () {
        showActions(c);
        stats.loads += 1;
        stats.status = c.status;
        if (!stats.ready) { stats.ready_ms = Math.round(performance.now()); }  /* since navigation */
        stats.ready = true;
      });
    }).catch(function (e) {
      actionsBox.textContent = w("failed") + " (" + (e.status || e.message) + ")";
    });
  }
  /* the team suggestions, asked once, when a form of this case takes a team (dispatch) */
  function suggestions(c) {
    var wanted = c.allowed_actions.some(function (a) {
      return ((vocab.action_fields || {})[a] || []).indexOf("team_id") >= 0;
    });
    if (!wanted || state.suggestions) { return Promise.resolve(); }
    return gisApi("GET", BASE + "/team-suggestions").then(function (b) {
      state.suggestions = b.teams;
      b.teams.forEach(function (t) { state.teamName[t.id] = t.name; });
    }, function () { state.suggestions = null; });
  }
  /* the categories (the recategorize select, the names on the timeline), fetched once */
  var prepared = Promise.all([window.gisCategories(), window.gisCategoryNames(zh)]).then(function (got) {
    state.categories = got[0].domains;
    state.categoryName = got[1];
  }, function () { /* the codes stand in for the names */ });

  /* ---- keyboard ---- */
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(ev.target.tagName);
    if (ev.key === "Escape") {
      if (box.open) { return; }  /* the dialog closes itself */
      if (typing) { ev.target.blur(); return; }
      window.location.href = config.queue_url;
      return;
    }
    if (typing) { return; }
    var action = Object.keys(KEYS).filter(function (a) { return KEYS[a] === ev.key; })[0];
    var form = action && document.querySelector("form[data-action=" + action + "]");
    if (!form) { return; }
    ev.preventDefault();
    form.scrollIntoView({ block: "nearest" });
    var first = form.querySelector("select, input, textarea");
    var needsNote = (vocab.note_required_actions || []).indexOf(action) >= 0;
    (first && (needsNote || first.tagName !== "TEXTAREA") ? first : form.querySelector("button[type=submit]")).focus();
  });

  /* opening: the case, then its lock (unless the case answer names another holder: the
     beat reads it until it is free), renewed while the page is open */
  load().then(beat).then(function () { window.setInterval(beat, config.lock_renew_ms); });
})();

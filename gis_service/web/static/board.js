/* The desk's workload board (/desk/workload) and shift view (/desk/shift): tables drawn
   from /api/v1/desk/workload and /api/v1/desk/shift (gis_service/cases/workload.py).
   Served by our own server; words from /m/vocabulary.js and the page's data-config.
   No inline script or style: the page's CSP forbids them. */
(function () {
  "use strict";
  var config = JSON.parse(document.body.getAttribute("data-config"));
  var zh = config.lang === "zh";
  var vocab = window.gisVocabulary || { statuses: [], team_kinds: [] };
  var WORDS = {
    period: ["统计周期", "Period"], team: ["处置队伍", "Team"], kind: ["类型", "Kind"],
    unit: ["所属单元", "Unit"], open: ["在办", "Open"], overdue: ["超期", "Overdue"],
    handled: ["已处置", "Handled"], closed: ["已结案", "Closed"],
    on_time_rate: ["按期率", "On time"], on_time_rate_extended: ["含延期按期率", "On time incl. extended"],
    rework_rate: ["返工率", "Rework"], worker: ["网格员", "Grid worker"], grids: ["网格", "Grids"],
    reports: ["上报", "Reports"], awaiting_check: ["待核查", "Awaiting check"],
    oldest_handled_at: ["最早处置于", "Waiting since"], teams: ["各处置队伍", "Teams"],
    workers: ["各网格员", "Grid workers"], none: ["无", "None"], failed: ["加载失败", "Failed to load"],
    arrived: ["上次交班以来新上报", "Arrived since my last shift"],
    urged: ["督办未回复", "Urged, no reply yet"],
    late: ["预计超期", "Likely to miss the deadline"],
    case_no: ["编号", "No."], status: ["状态", "Status"], category: ["类别", "Category"],
    reported_at: ["上报时间", "Reported"], urged_at: ["督办时间", "Urged"],
    deadline_at: ["处置时限", "Deadline"], predicted_at: ["预计完成", "Predicted finish"],
    basis: ["依据", "Basis"], basis_team: ["本队伍历史", "the team's history"],
    basis_category: ["该类别各队伍历史", "the category, all teams"],
    since: ["自", "Since"], since_previous_session: ["上次登录", "your previous sign-in"],
    since_fallback: ["近 12 小时（无上次登录记录）", "the last 12 hours (no previous sign-in)"],
    shown: ["显示前", "showing the first"], from: ["自", "from"]
  };
  function w(key) { return WORDS[key][zh ? 0 : 1]; }
  var statusLabel = {};
  (vocab.statuses || []).forEach(function (s) { statusLabel[s.code] = s.label[zh ? "zh" : "en"]; });
  var kindLabel = {};
  (vocab.team_kinds || []).forEach(function (k) { kindLabel[k.code] = k.label[zh ? "zh" : "en"]; });
  var categoryName = {};
  var stats = (window.gisBoard = { ready: false, loads: 0 });
  var body = document.querySelector(".board-body");
  var tools = document.querySelector(".board-tools");
  var statusLine = document.querySelector(".board-status");

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function link(path, query, text, testid) {
    var q = new URLSearchParams(query || {});
    if (!zh) { q.set("lang", "en"); }
    var s = q.toString();
    return el("a", { href: path + (s ? "?" + s : ""), "data-testid": testid || "link" }, text);
  }
  function local(iso) {
    if (!iso) { return "—"; }
    return new Date(iso).toLocaleString(zh ? "zh-CN" : "en-GB", { timeZone: config.tz,
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  }
  function percent(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
  function get(url) { return window.gisApi("GET", url); }  /* pagefetch.js */

  /* A table sortable by any column: click a heading (again: the other way). Each column
     is {key, label, cell(row) -> Node|text, value(row) -> sortable}. */
  function sortable(columns, rows, testid, rowid) {
    var table = el("table", { "class": "board-table", "data-testid": testid });
    var thead = el("thead"), tbody = el("tbody"), head = el("tr");
    var order = { key: null, dir: 1 };
    columns.forEach(function (col) {
      var th = el("th", { "data-key": col.key, "data-testid": testid + "-sort-" + col.key,
                          tabindex: "0", "aria-sort": "none" }, col.label);
      function sort() {
        order.dir = order.key === col.key ? -order.dir : (col.numeric ? -1 : 1);
        order.key = col.key;
        head.querySelectorAll("th").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", order.dir > 0 ? "ascending" : "descending");
        draw();
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { sort(); } });
      head.appendChild(th);
    });
    thead.appendChild(head);
    table.appendChild(thead);
    table.appendChild(tbody);
    function draw() {
      var list = rows.slice();
      if (order.key) {
        var col = columns.filter(function (c) { return c.key === order.key; })[0];
        var val = col.value || function (r) { return r[col.key]; };
        list.sort(function (a, b) {
          var x = val(a), y = val(b);
          if (x === y) { return 0; }
          if (x === null || x === undefined) { return 1; }
          if (y === null || y === undefined) { return -1; }
          return (x < y ? -1 : 1) * order.dir;
        });
      }
      tbody.textContent = "";
      list.forEach(function (r) {
        var tr = el("tr", { "data-testid": testid + "-row", "data-id": rowid(r) });
        columns.forEach(function (col) {
          var td = el("td", { "data-key": col.key, "class": col.numeric ? "num" : "" });
          var v = col.cell ? col.cell(r) : r[col.key];
          if (v instanceof Node) { td.appendChild(v); } else { td.textContent = v === null ? "—" : v; }
          tr.appendChild(td);
        });
        tbody.appendChild(tr);
      });
      if (!list.length) {
        var tr = el("tr"); tr.appendChild(el("td", { colspan: columns.length }, w("none")));
        tbody.appendChild(tr);
      }
    }
    draw();
    return table;
  }

  /* ---- the workload board ---- */
  function workload() {
    var params = new URLSearchParams(window.location.search);
    var period = params.get("period") || "week";
    var label = el("label", {}, w("period") + " ");
    var pick = el("select", { "data-testid": "period" });
    Object.keys(config.periods).forEach(function (p) {
      pick.appendChild(el("option", { value: p }, config.periods[p]));
    });
    pick.value = period;
    label.appendChild(pick);
    tools.appendChild(label);
    pick.addEventListener("change", function () {
      period = pick.value;
      var q = new URLSearchParams(window.location.search);
      q.set("period", period);
      history.replaceState(null, "", window.location.pathname + "?" + q.toString());
      var other = document.querySelector('[data-testid="nav-lang"]');  /* keeps the period */
      if (other) {
        var u = new URL(other.getAttribute("href"), window.location.href);
        u.searchParams.set("period", period);
        other.setAttribute("href", u.pathname + "?" + u.searchParams.toString());
      }
      load();
    });
    function load() {
      return get("/api/v1/desk/workload?period=" + encodeURIComponent(period)).then(function (b) {
        body.textContent = "";
        statusLine.textContent = w("from") + " " + local(b.from) + " · " + b.timezone;
        body.appendChild(el("h2", {}, w("teams")));
        body.appendChild(sortable([
          { key: "name", label: w("team") },
          { key: "kind", label: w("kind"), cell: function (t) { return kindLabel[t.kind] || t.kind; } },
          { key: "unit_code", label: w("unit") },
          { key: "open", label: w("open"), numeric: true },
          { key: "overdue", label: w("overdue"), numeric: true, cell: function (t) {
            if (!t.overdue) { return "0"; }
            var a = link("/desk/", { tab: "overdue", team_id: t.id }, t.overdue, "overdue-link");
            a.classList.add("late");
            return a;
          } },
          { key: "handled", label: w("handled"), numeric: true },
          { key: "closed", label: w("closed"), numeric: true },
          { key: "on_time_rate", label: w("on_time_rate"), numeric: true,
            cell: function (t) { return percent(t.on_time_rate); } },
          { key: "on_time_rate_extended", label: w("on_time_rate_extended"), numeric: true,
            cell: function (t) { return percent(t.on_time_rate_extended); } },
          { key: "rework_rate", label: w("rework_rate"), numeric: true,
            cell: function (t) { return percent(t.rework_rate); } }
        ], b.teams, "teams", function (t) { return t.id; }));
        body.appendChild(el("h2", {}, w("workers")));
        body.appendChild(sortable([
          { key: "display_name", label: w("worker"),
            cell: function (u) { return u.display_name || u.username; } },
          { key: "grids", label: w("grids"), value: function (u) { return u.scopes.join(","); },
            cell: function (u) { return u.scopes.join(", "); } },
          { key: "reports", label: w("reports"), numeric: true },
          { key: "awaiting_check", label: w("awaiting_check"), numeric: true, cell: function (u) {
            if (!u.awaiting_check || u.scopes.length !== 1) { return String(u.awaiting_check); }
            return link("/desk/", { tab: "to_verify", unit: u.scopes[0] }, u.awaiting_check,
                        "awaiting-link");
          } },
          { key: "oldest_handled_at", label: w("oldest_handled_at"),
            cell: function (u) { return local(u.oldest_handled_at); } }
        ], b.grid_workers, "workers", function (u) { return u.id; }));
        stats.loads += 1;
        stats.board = b;
        stats.ready = true;
      }).catch(function () { statusLine.textContent = w("failed"); });
    }
    return load();
  }

  /* ---- the shift view ---- */
  function caseColumns(extra) {
    return [
      { key: "case_no", label: w("case_no"), cell: function (c) {
        return link("/desk/cases/" + c.id, {}, c.case_no, "case-link");
      } },
      { key: "status", label: w("status"), cell: function (c) { return statusLabel[c.status] || c.status; } },
      { key: "category", label: w("category"),
        cell: function (c) { return categoryName[c.category] || c.category; } },
      { key: "unit_code", label: w("unit") }
    ].concat(extra);
  }
  function timeColumn(key) {
    return { key: key, label: w(key), cell: function (c) { return local(c[key]); } };
  }
  function shift() {
    return get("/api/v1/desk/shift").then(function (b) {
      body.textContent = "";
      statusLine.textContent = w("since") + " " + local(b.since) + " (" + w("since_" + b.since_basis) + ")";
      statusLine.setAttribute("data-since", b.since);
      var lists = [
        ["arrived", b.arrived, [timeColumn("reported_at")]],
        ["urged", b.urged_unreplied, [timeColumn("urged_at"), timeColumn("deadline_at")]],
        ["late", b.likely_late, [timeColumn("deadline_at"), timeColumn("predicted_at"),
          { key: "basis", label: w("basis"), cell: function (c) {
            return w("basis_" + c.basis) + " · P" + Math.round(b.method.quantile * 100) + " "
              + c.quantile_hours + (zh ? " 小时" : " h") + " · n=" + c.history_cases;
          } }]]
      ];
      lists.forEach(function (l) {
        var section = el("section", { "class": "board-list", "data-testid": "list-" + l[0] });
        var h = el("h2", {}, w(l[0]) + " ");
        h.appendChild(el("b", { "data-testid": "total-" + l[0] }, l[1].total));
        if (l[1].total > l[1].cases.length) {
          h.appendChild(el("small", {}, " (" + w("shown") + " " + l[1].cases.length + ")"));
        }
        section.appendChild(h);
        section.appendChild(sortable(caseColumns(l[2]), l[1].cases, "shift-" + l[0],
                                     function (c) { return c.id; }));
        body.appendChild(section);
      });
      stats.loads += 1;
      stats.shift = b;
      stats.ready = true;
    }).catch(function () { statusLine.textContent = w("failed"); });
  }

  var names = get("/api/v1/categories").then(function (c) {
    c.domains.forEach(function (d) {
      categoryName[d.code] = zh ? d.name_zh : d.name_en || d.name_zh;
      d.children.forEach(function (k) { categoryName[k.code] = zh ? k.name_zh : k.name_en || k.name_zh; });
    });
  }).catch(function () { /* codes stand in for names */ });
  names.then(config.page === "workload" ? workload : shift);
})();

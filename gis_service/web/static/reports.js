/* The monthly reports (/desk/reports, reports/desk_page.py): pick a unit and a month, make
   a draft (POST /api/v1/reports/monthly; a 202 is followed through its status_url), list
   the versions (GET /api/v1/reports/monthly?unit=…), open a PDF, send a draft (POST
   …/{id}/send; a correction asks for its reason). Needs pagefetch.js (gisApi). No inline
   script: the page's CSP forbids it. */
(function () {
  "use strict";
  var config = JSON.parse(document.body.getAttribute("data-config"));
  var zh = config.lang === "zh";
  var WORDS = {
    unit: ["单位", "Unit"], month: ["月份", "Month"], lang: ["语言", "Language"],
    make: ["生成月度报告", "Monthly report"], version: ["版本", "Version"], status: ["状态", "Status"],
    draft: ["草稿", "Draft"], sent: ["已报送", "Sent"], created: ["生成", "Made"],
    sent_at: ["报送", "Sent"], reason: ["更正原因", "Reason"], pdf: ["PDF", "PDF"],
    send: ["报送", "Send"], action: ["操作", "Action"], making: ["正在生成…", "Making…"], made: ["已生成", "Made"],
    none: ["暂无报告", "No reports yet"], ask_reason: ["更正原因（已报送过，必填）：",
    "Reason for the correction (a version was sent already):"], failed: ["失败", "Failed"]
  };
  function w(key) { return WORDS[key][zh ? 0 : 1]; }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function when(iso) { return iso ? iso.slice(0, 16).replace("T", " ") : ""; }
  document.querySelectorAll("[data-word]").forEach(function (n) {
    n.textContent = w(n.getAttribute("data-word"));
  });
  var stats = (window.gisReports = { loads: 0, ready: false });
  var form = document.querySelector(".reports-form");
  var unitBox = form.querySelector("[name=unit]");
  var monthBox = form.querySelector("[name=month]");
  var langBox = form.querySelector("[name=lang]");
  var status = document.querySelector(".reports-status");
  var table = document.querySelector(".reports-list");
  monthBox.value = config.month;
  langBox.value = config.lang;

  function say(text, bad) {
    status.textContent = text;
    status.className = "reports-status" + (bad ? " error" : "");
  }
  function addUnit(code, name) {
    if (unitBox.querySelector('option[value="' + code + '"]')) { return; }
    unitBox.appendChild(el("option", { value: code }, name + " " + code));
  }
  function units() {
    var asks = [];
    if (config.scopes.length) {
      config.scopes.forEach(function (code) {
        asks.push(gisApi("GET", "/api/v1/units/" + code + "?geometry=false").then(function (u) {
          addUnit(code, u.properties.name);
          return gisApi("GET", "/api/v1/units?geometry=false&limit=200&parent=" + code);
        }).then(function (fc) {
          fc.features.forEach(function (f) {
            if (f.properties.level !== "building") { addUnit(f.properties.code, f.properties.name); }
          });
        }));
      });
    } else {
      config.top_levels.forEach(function (level) {
        asks.push(gisApi("GET", "/api/v1/units?geometry=false&limit=200&level=" + level)
          .then(function (fc) {
            fc.features.forEach(function (f) { addUnit(f.properties.code, f.properties.name); });
          }));
      });
    }
    return Promise.all(asks);
  }

  function draw(rows) {
    var head = table.querySelector("thead"), body = table.querySelector("tbody");
    head.textContent = ""; body.textContent = "";
    var tr = el("tr");
    ["month", "version", "status", "created", "sent_at", "reason", "pdf", "action"].forEach(function (k) {
      tr.appendChild(el("th", {}, w(k)));
    });
    head.appendChild(tr);
    if (!rows.length) {
      var empty = el("tr"); empty.appendChild(el("td", { colspan: "8", "data-testid": "reports-empty" }, w("none")));
      body.appendChild(empty);
      return;
    }
    rows.forEach(function (v) {
      var row = el("tr", { "data-testid": "report-version", "data-id": v.id, "data-status": v.status });
      row.appendChild(el("td", {}, v.month));
      row.appendChild(el("td", {}, "v" + v.version));
      row.appendChild(el("td", {}, w(v.status)));
      row.appendChild(el("td", {}, v.created_by + " " + when(v.created_at)));
      row.appendChild(el("td", {}, v.sent_at ? (v.sent_by + " " + when(v.sent_at)) : ""));
      row.appendChild(el("td", { "class": "reason" }, v.reason || ""));
      var link = el("td"); link.appendChild(el("a", { href: v.pdf_url, target: "_blank",
        "data-testid": "report-pdf" }, "PDF")); row.appendChild(link);
      var act = el("td");
      if (v.status === "draft") {
        var b = el("button", { type: "button", "data-testid": "report-send" }, w("send"));
        b.addEventListener("click", function () { send(v, rows); });
        act.appendChild(b);
      }
      row.appendChild(act);
      body.appendChild(row);
    });
  }
  function load() {
    if (!unitBox.value) { draw([]); return Promise.resolve(); }
    return gisApi("GET", "/api/v1/reports/monthly?unit=" + encodeURIComponent(unitBox.value))
      .then(function (r) { draw(r.versions); stats.loads += 1; stats.ready = true; })
      .catch(function (err) { say(w("failed") + ": " + err.message, true); stats.ready = true; });
  }
  function send(v, rows) {
    var sentBefore = rows.some(function (r) { return r.month === v.month && r.status === "sent"; });
    var reason = v.reason;
    if (sentBefore && !reason) {
      reason = window.prompt(w("ask_reason"));
      if (!reason) { return; }
    }
    gisApi("POST", v.url + "/send", { reason: reason || null })
      .then(function (r) { say(w("sent") + ": v" + r.version); return load(); })
      .catch(function (err) { say(w("failed") + ": " + err.message, true); });
  }
  function follow(job) {
    return new Promise(function (resolve) { setTimeout(resolve, 1000); })
      .then(function () { return gisApi("GET", job.status_url); })
      .then(function (j) {
        if (j.status === "running") { return follow(j); }
        if (j.status === "failed") { throw new Error(j.error); }
        return j;
      });
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    say(w("making"));
    var button = form.querySelector("button"); button.disabled = true;
    gisApi("POST", "/api/v1/reports/monthly",
           { unit: unitBox.value, month: monthBox.value, lang: langBox.value })
      .then(function (r) { return r.status_url ? follow(r) : r; })
      .then(function () { say(w("made")); return load(); })
      .catch(function (err) { say(w("failed") + ": " + err.message, true); })
      .then(function () { button.disabled = false; });
  });
  unitBox.addEventListener("change", load);
  units().then(load).catch(function (err) { say(err.message, true); stats.ready = true; });
})();

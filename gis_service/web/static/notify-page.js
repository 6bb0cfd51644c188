/* The whole inbox and the notification settings (/desk/notifications,
   desk/notifications_page.py). The list: GET /api/v1/notifications (keyset pages:
   before_id = next_before_id), POST …/{id}/read, POST …/read-all. The settings:
   GET/PUT /api/v1/notifications/preferences — its answer carries the kinds and the
   channels with their labels (notify/kinds.py), so no list of them is typed here; a
   channel the account cannot receive comes with its reason and is shown disabled. Only
   what the viewer changed is sent (untouched choices keep following the defaults); the
   server checks everything and its error text is shown as it is. After a change of the
   unread count the navigation badge is told ("gis:unread", notify-badge.js); after the
   badge's list marks some read ("gis:inbox-written") the list is read again.
   Needs pagefetch.js (gisApi). No inline script or style: the page's CSP forbids it. */
(function () {
  "use strict";
  var config = JSON.parse(document.body.getAttribute("data-config"));
  var zh = config.lang === "zh";
  var lang = zh ? "zh" : "en";
  var WORDS = {
    inbox: ["全部通知", "All notifications"], settings: ["通知设置", "Notification settings"],
    time: ["时间", "Time"], kind: ["类型", "Kind"], title: ["标题", "Title"],
    body: ["内容", "Message"], case_no: ["案件", "Case"], state: ["状态", "State"],
    read: ["已读", "Read"], unread: ["未读", "Unread"], mark: ["标为已读", "Mark read"],
    all_read: ["全部标为已读", "Mark all read"], only_unread: ["只看未读", "Unread only"],
    unread_n: ["未读 {n} 条", "{n} unread"], empty: ["暂无通知", "No notifications"],
    older: ["更早 ›", "Older ›"], newer: ["‹ 较新", "‹ Newer"], first: ["最新", "Newest"],
    loading: ["加载中…", "Loading…"], failed: ["加载失败：", "Failed to load: "],
    urgent: ["紧急通知", "urgent notice"],
    urgent_kind: ["免打扰时段照发", "sent in quiet hours too"],
    urgent_note: ["这类通知总是紧急：免打扰时段内短信照发", "Always urgent: an SMS is sent even in quiet hours"],
    inbox_channel: ["站内通知", "In-app inbox"],
    inbox_always: ["站内通知总是接收", "The in-app inbox always gets every notification"],
    quiet: ["免打扰时段", "Quiet hours"], starts: ["开始", "From"], ends: ["结束", "Until"],
    quiet_note: ["此时段内非紧急短信推迟到时段结束后发送；开始与结束相同表示不设免打扰。时间为本区时间。",
                 "A non-urgent SMS is held until the quiet hours end; the same start and end: " +
                 "no quiet hours. Times are the district's."],
    default_: ["（系统默认）", "(the default)"], save: ["保存设置", "Save settings"],
    saving: ["保存中…", "Saving…"], saved: ["已保存", "Saved"],
    nothing: ["没有改动", "Nothing changed"], save_failed: ["保存失败：", "Not saved: "],
    chosen_default: ["默认", "default"]
  };
  function w(key, vars) {
    var s = WORDS[key][zh ? 0 : 1];
    Object.keys(vars || {}).forEach(function (k) { s = s.replace("{" + k + "}", vars[k]); });
    return s;
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  /* The server answers in the district's time (ISO 8601 with its offset): its own digits
     are what a person reads, whatever zone the browser is in (as the phone app). */
  function when(iso) {
    var m = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d)/.exec(iso || "");
    return m ? m[1] + " " + m[2] : (iso || "");
  }
  function message(err) {
    var d = err.body && err.body.detail;
    return typeof d === "string" ? d : err.message;
  }
  document.querySelectorAll("[data-word]").forEach(function (e) {
    e.textContent = w(e.getAttribute("data-word"));
  });

  var state = { unreadOnly: false, pages: [null], rows: [], kinds: {}, prefs: null };
  // what the tests and the screenshots wait for
  var stats = (window.gisNotifyPage = { loads: 0, saves: 0, ready: false });

  /* ---- the inbox ---- */
  var bar = document.querySelector(".notify-bar");
  var status = document.querySelector(".notify-status");
  var table = document.querySelector(".notify-list");
  var pager = document.querySelector("[data-testid=notify-pager]");
  var count = el("b", { "data-testid": "notify-unread" });
  var onlyBox = el("input", { type: "checkbox", "data-testid": "notify-unread-only" });
  var only = el("label", { class: "notify-only" });
  only.appendChild(onlyBox);
  only.appendChild(document.createTextNode(" " + w("only_unread")));
  var allRead = el("button", { type: "button", "data-testid": "notify-read-all" }, w("all_read"));
  bar.appendChild(count);
  bar.appendChild(only);
  bar.appendChild(allRead);
  onlyBox.addEventListener("change", function () {
    state.unreadOnly = onlyBox.checked;
    state.pages = [null];
    load();
  });
  allRead.addEventListener("click", function () {
    allRead.disabled = true;
    gisApi("POST", "/api/v1/notifications/read-all").then(load, shown)
      .then(function () { allRead.disabled = false; });
  });

  var head = el("tr");
  ["time", "title", "body", "case_no", "state", ""].forEach(function (k) {
    head.appendChild(el("th", {}, k ? w(k) : ""));
  });
  table.tHead.appendChild(head);

  function shown(err) { status.textContent = w("failed") + message(err); status.className = "notify-status error"; }

  function unread(n) {
    count.textContent = w("unread_n", { n: n });
    count.className = n ? "some" : "none";
    document.dispatchEvent(new CustomEvent("gis:unread", { detail: n }));
  }

  function markRead(n) {
    return gisApi("POST", "/api/v1/notifications/" + n.id + "/read");
  }

  function row(n) {
    var tr = el("tr", { "data-testid": "notify-row", "data-id": String(n.id),
                        class: n.read_at ? "read" : "unread" });
    var kind = state.kinds[n.kind];  // the title names the case; the kind is its tooltip
    tr.appendChild(el("td", { class: "when" }, when(n.created_at)));
    var title = el("td", { class: "title", title: kind ? kind.label[lang] : n.kind }, n.title);
    if (n.urgent) { title.appendChild(el("span", { class: "urgent" }, w("urgent"))); }
    tr.appendChild(title);
    tr.appendChild(el("td", { class: "text" }, n.body));
    var c = el("td");
    if (n.case_id) {
      var a = el("a", { href: config.case_url.replace("{id}", n.case_id) + (zh ? "" : "?lang=en"),
                        "data-testid": "notify-case" }, n.case_no || ("#" + n.case_id));
      a.addEventListener("click", function (e) {  // opening it reads it
        if (n.read_at || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) { return; }
        e.preventDefault();
        markRead(n).catch(function () { return null; })
          .then(function () { window.location.href = a.href; });
      });
      c.appendChild(a);
    }
    tr.appendChild(c);
    tr.appendChild(el("td", { class: "state" }, n.read_at ? w("read") : w("unread")));
    var act = el("td");
    if (!n.read_at) {
      var b = el("button", { type: "button", "data-testid": "notify-mark-read" }, w("mark"));
      b.addEventListener("click", function () {
        b.disabled = true;
        markRead(n).then(load, function (err) { b.disabled = false; shown(err); });
      });
      act.appendChild(b);
    }
    tr.appendChild(act);
    return tr;
  }

  function load() {
    var before = state.pages[state.pages.length - 1];
    var q = new URLSearchParams({ limit: String(config.page_size) });
    if (before) { q.set("before_id", String(before)); }
    if (state.unreadOnly) { q.set("unread", "true"); }
    status.textContent = w("loading");
    status.className = "notify-status";
    return gisApi("GET", "/api/v1/notifications?" + q.toString()).then(function (page) {
      stats.loads += 1;
      var body = table.tBodies[0];
      body.textContent = "";
      page.items.forEach(function (n) { body.appendChild(row(n)); });
      status.textContent = page.items.length ? "" : w("empty");
      unread(page.unread);
      allRead.disabled = page.unread === 0;
      paging(page.next_before_id);
    }, shown);
  }

  function paging(next) {
    pager.textContent = "";
    if (state.pages.length > 1) {
      var first = el("button", { type: "button", "data-testid": "notify-first" }, w("first"));
      first.addEventListener("click", function () { state.pages = [null]; load(); });
      var newer = el("button", { type: "button", "data-testid": "notify-newer" }, w("newer"));
      newer.addEventListener("click", function () { state.pages.pop(); load(); });
      pager.appendChild(first);
      pager.appendChild(newer);
    }
    if (next) {
      var older = el("button", { type: "button", "data-testid": "notify-older" }, w("older"));
      older.addEventListener("click", function () { state.pages.push(next); load(); });
      pager.appendChild(older);
    }
  }

  document.addEventListener("gis:inbox-written", function () { load(); });

  /* ---- the settings ---- */
  var form = document.querySelector(".notify-form");

  function drawForm(prefs) {
    state.prefs = prefs;
    state.kinds = {};
    prefs.kinds.forEach(function (k) { state.kinds[k.code] = k; });
    var enabled = {};
    prefs.choices.forEach(function (c) { enabled[c.kind + "/" + c.channel] = c; });
    form.textContent = "";
    var grid = el("table", { class: "desk-list notify-grid", "data-testid": "prefs-table" });
    var hr = el("tr");
    hr.appendChild(el("th", {}, w("kind")));
    hr.appendChild(el("th", { title: w("inbox_always") }, w("inbox_channel")));
    prefs.channels.forEach(function (ch) {
      var th = el("th", { "data-testid": "channel-" + ch.code }, ch.label[lang]);
      if (!ch.reachable) {
        th.className = "off";
        th.appendChild(el("small", { "data-testid": "channel-reason-" + ch.code },
                          ch.unreachable_reason[lang]));
      }
      hr.appendChild(th);
    });
    grid.appendChild(el("thead")).appendChild(hr);
    var tb = grid.appendChild(el("tbody"));
    prefs.kinds.forEach(function (k) {
      var tr = el("tr", { "data-testid": "prefs-kind-" + k.code });
      var name = el("td", { class: "kind" }, k.label[lang]);
      if (k.urgent) { name.appendChild(el("span", { class: "urgent", title: w("urgent_note") }, w("urgent_kind"))); }
      tr.appendChild(name);
      var always = el("td");
      always.appendChild(el("input", { type: "checkbox", checked: "", disabled: "",
                                       title: w("inbox_always"), "aria-label": w("inbox_always") }));
      tr.appendChild(always);
      prefs.channels.forEach(function (ch) {
        var c = enabled[k.code + "/" + ch.code];
        var td = el("td");
        var box = el("input", { type: "checkbox", "data-testid": "pref-" + k.code + "-" + ch.code,
                                "data-kind": k.code, "data-channel": ch.code,
                                "aria-label": k.label[lang] + " · " + ch.label[lang] });
        // a channel that reaches nobody shows what arrives by it: nothing
        box.checked = !!(c && c.enabled) && ch.reachable;
        if (!ch.reachable) {
          box.disabled = true;
          box.title = ch.unreachable_reason[lang];
        }
        td.appendChild(box);
        if (c && !c.chosen && ch.reachable) { td.appendChild(el("small", { class: "default" }, w("chosen_default"))); }
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    });
    form.appendChild(grid);

    var q = prefs.quiet_hours;
    var fs = el("fieldset", { class: "notify-quiet", "data-testid": "quiet-hours" });
    fs.appendChild(el("legend", {}, w("quiet") + (q.chosen ? "" : " " + w("default_"))));
    [["starts", q.starts], ["ends", q.ends]].forEach(function (pair) {
      var label = el("label", {}, w(pair[0]) + " ");
      var input = el("input", { type: "time", step: "60", name: pair[0],
                                "data-testid": "quiet-" + pair[0] });
      input.value = pair[1];
      label.appendChild(input);
      fs.appendChild(label);
    });
    fs.appendChild(el("p", { class: "note" }, w("quiet_note")));
    form.appendChild(fs);
    var save = el("button", { type: "submit", "data-testid": "prefs-save" }, w("save"));
    form.appendChild(save);
    form.appendChild(el("p", { class: "notify-result", "data-testid": "prefs-result",
                               role: "status", "aria-live": "polite" }));
  }

  /* what differs from the answer the form was drawn from: {choices, quiet_hours?} */
  function changes() {
    var before = {};
    state.prefs.choices.forEach(function (c) { before[c.kind + "/" + c.channel] = c.enabled; });
    var choices = [];
    form.querySelectorAll("input[data-kind]").forEach(function (box) {
      var key = box.getAttribute("data-kind") + "/" + box.getAttribute("data-channel");
      if (!box.disabled && box.checked !== before[key]) {
        choices.push({ kind: box.getAttribute("data-kind"),
                       channel: box.getAttribute("data-channel"), enabled: box.checked });
      }
    });
    var out = { choices: choices };
    var starts = form.querySelector("[data-testid=quiet-starts]").value;
    var ends = form.querySelector("[data-testid=quiet-ends]").value;
    var q = state.prefs.quiet_hours;
    if (starts !== q.starts || ends !== q.ends) { out.quiet_hours = { starts: starts, ends: ends }; }
    return out;
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var result = form.querySelector("[data-testid=prefs-result]");
    var save = form.querySelector("[data-testid=prefs-save]");
    form.querySelectorAll("[aria-invalid]").forEach(function (i) { i.removeAttribute("aria-invalid"); });
    var body = changes();
    if (!body.choices.length && !body.quiet_hours) {
      result.textContent = w("nothing");
      result.className = "notify-result";
      return;
    }
    save.disabled = true;
    result.textContent = w("saving");
    result.className = "notify-result";
    gisApi("PUT", "/api/v1/notifications/preferences", body).then(function (prefs) {
      stats.saves += 1;
      drawForm(prefs);
      var done = form.querySelector("[data-testid=prefs-result]");
      done.textContent = w("saved");
      done.className = "notify-result ok";
    }, function (err) {
      save.disabled = false;
      result.textContent = w("save_failed") + message(err);
      result.className = "notify-result error";
      // the field the server named (e.g. quiet_hours.starts) is marked
      var field = (err.body && err.body.field) || "";
      var m = /^quiet_hours\.(starts|ends)$/.exec(field);
      if (m) { form.querySelector("[data-testid=quiet-" + m[1] + "]").setAttribute("aria-invalid", "true"); }
    });
  });

  gisApi("GET", "/api/v1/notifications/preferences").then(drawForm, function (err) {
    form.textContent = "";
    form.appendChild(el("p", { class: "error" }, w("failed") + message(err)));
  }).then(load).then(function () { stats.ready = true; });
})();

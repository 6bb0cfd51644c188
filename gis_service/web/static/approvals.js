/* The approval inbox (/desk/approvals, desk/approvals_page.py): extension requests (延期)
   waiting for the viewer's decision, each with its clock; approve or refuse many at once
   (POST /api/v1/approvals/decisions: each applied or listed with its reason); delegations
   given and received (/api/v1/approvals/delegations). Needs pagefetch.js (gisApi) and
   /m/vocabulary.js. No inline script: the page's CSP forbids it. */
(function () {
  "use strict";
  var config = JSON.parse(document.body.getAttribute("data-config"));
  var zh = config.lang === "zh";
  var vocab = window.gisVocabulary || { approval_states: ["pending", "approved", "refused"] };
  var WORDS = {
    pending: ["待审批", "Waiting"], approved: ["已批准", "Approved"], refused: ["已驳回", "Refused"],
    approve: ["批准", "Approve"], refuse: ["驳回", "Refuse"], note: ["意见（驳回必填）", "Note (needed to refuse)"],
    all: ["全选", "Select all"], case_no: ["案件编号", "Case"], category: ["类别", "Category"],
    requested_by: ["申请人", "Requested by"], reason: ["理由", "Reason"], hours: ["延期(小时)", "Hours"],
    deadline: ["现时限", "Deadline now"], proposed: ["延期后时限", "Would become"],
    due_by: ["审批时限", "Decide by"], left: ["剩余", "Left"], past_due: ["审批超时", "past due"],
    decided: ["决定", "Decision"], empty: ["没有申请", "No requests"], applied: ["已处理", "Decided"],
    failed: ["未处理", "Not decided"], failed_load: ["加载失败", "Failed to load"],
    delegations: ["委托审批", "Delegations"], given: ["我委托给", "I delegated to"],
    received: ["委托给我", "Delegated to me"], until: ["至", "until"], end: ["结束委托", "End"],
    delegate_id: ["受托人用户编号", "Delegate's user id"], ends_at: ["结束时间", "Ends at"],
    delegate: ["委托", "Delegate"], h: ["小时", "h"], none: ["无", "none"]
  };
  function w(key) { return WORDS[key][zh ? 0 : 1]; }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function when(iso) {
    if (!iso) { return w("none"); }
    return new Date(iso).toLocaleString(zh ? "zh-CN" : "en-GB", { hour12: false });
  }
  function message(err) {
    var d = err.body && err.body.detail;
    return typeof d === "string" ? d : err.message;
  }

  var categoryName = {};
  var params = new URLSearchParams(window.location.search);
  var state = { tab: params.get("state") || "pending", rows: [], selected: {} };
  var stats = (window.gisApprovals = { loads: 0, ready: false });

  var tabs = document.querySelector(".approvals-tabs");
  (vocab.approval_states || ["pending", "approved", "refused"]).forEach(function (s) {
    var b = el("button", { type: "button", role: "tab", "data-testid": "approval-tab-" + s }, w(s));
    b.addEventListener("click", function () {
      state.tab = s; state.selected = {};
      var q = new URLSearchParams(window.location.search); q.set("state", s);
      history.replaceState(null, "", window.location.pathname + "?" + q.toString());
      showTabs(); load();
    });
    tabs.appendChild(b);
  });
  function showTabs() {
    tabs.querySelectorAll("button").forEach(function (b) {
      b.setAttribute("aria-selected", b.getAttribute("data-testid") === "approval-tab-" + state.tab);
    });
    bar.hidden = state.tab !== "pending";
  }

  /* ---- the decision bar ---- */
  var bar = document.querySelector(".approvals-bar");
  var note = el("input", { type: "text", maxlength: "2000", placeholder: w("note"),
                           "data-testid": "decision-note", size: "40" });
  var approve = el("button", { type: "button", "data-testid": "approve" }, w("approve"));
  var refuse = el("button", { type: "button", "data-testid": "refuse" }, w("refuse"));
  bar.appendChild(note); bar.appendChild(approve); bar.appendChild(refuse);
  var result = document.querySelector(".approvals-result");
  function decide(decision) {
    var ids = Object.keys(state.selected).map(Number);
    if (!ids.length) { return; }
    var body = { ids: ids, decision: decision };
    if (note.value.trim()) { body.note = note.value.trim(); }
    result.textContent = "";
    gisApi("POST", "/api/v1/approvals/decisions", body).then(function (r) {
      result.appendChild(el("p", { "data-testid": "decision-applied" },
                            w("applied") + ": " + r.applied.length));
      if (r.failed.length) {
        var ul = el("ul", { "data-testid": "decision-failed" });
        r.failed.forEach(function (f) {
          ul.appendChild(el("li", { "data-approval": f.id }, w("failed") + " #" + f.id + ": " + f.detail));
        });
        result.appendChild(ul);
      }
      state.selected = {}; note.value = ""; load();
    }).catch(function (err) {
      result.appendChild(el("p", { "class": "error", "data-testid": "decision-error" }, message(err)));
    });
  }
  approve.addEventListener("click", function () { decide("approve"); });
  refuse.addEventListener("click", function () { decide("refuse"); });

  /* ---- the list ---- */
  var table = document.querySelector(".approvals-list");
  var head = table.querySelector("thead");
  var body = table.querySelector("tbody");
  function header() {
    head.textContent = "";
    var tr = el("tr");
    var all = el("input", { type: "checkbox", "data-testid": "select-all", "aria-label": w("all") });
    all.addEventListener("change", function () {
      state.rows.forEach(function (a) { if (all.checked) { state.selected[a.id] = true; } else { delete state.selected[a.id]; } });
      draw();
    });
    var th = el("th"); if (state.tab === "pending") { th.appendChild(all); } tr.appendChild(th);
    ["case_no", "category", "requested_by", "reason", "hours", "deadline", "proposed",
     state.tab === "pending" ? "due_by" : "decided", state.tab === "pending" ? "left" : "note"]
      .forEach(function (k) { tr.appendChild(el("th", {}, WORDS[k] ? w(k) : k)); });
    head.appendChild(tr);
  }
  function draw() {
    header();
    body.textContent = "";
    if (!state.rows.length) {
      var tr = el("tr"); var td = el("td", { colspan: "10", "data-testid": "approvals-empty" }, w("empty"));
      tr.appendChild(td); body.appendChild(tr); return;
    }
    state.rows.forEach(function (a) {
      var tr = el("tr", { "data-approval": a.id, "data-testid": "approval-row" });
      if (a.past_due) { tr.className = "late"; }
      var td = el("td");
      if (state.tab === "pending") {
        var box = el("input", { type: "checkbox", "data-testid": "select-approval", "aria-label": a.case_no });
        box.checked = !!state.selected[a.id];
        box.addEventListener("change", function () {
          if (box.checked) { state.selected[a.id] = true; } else { delete state.selected[a.id]; }
        });
        td.appendChild(box);
      }
      tr.appendChild(td);
      var link = el("a", { href: "/desk/cases/" + a.case_id + (zh ? "" : "?lang=en") }, a.case_no);
      var c = el("td"); c.appendChild(link); tr.appendChild(c);
      tr.appendChild(el("td", {}, categoryName[a.category] || a.category));
      tr.appendChild(el("td", {}, a.requested_by_name || a.requested_by || ""));
      tr.appendChild(el("td", { "class": "reason" }, a.reason));
      tr.appendChild(el("td", {}, a.hours));
      tr.appendChild(el("td", {}, when(a.deadline_at)));
      tr.appendChild(el("td", {}, when(a.proposed_deadline_at)));
      if (state.tab === "pending") {
        tr.appendChild(el("td", {}, when(a.due_by)));
        tr.appendChild(el("td", { "class": "left" }, a.past_due ? w("past_due") :
                          Math.round(a.hours_left) + " " + w("h")));
      } else {
        tr.appendChild(el("td", {}, when(a.decided_at)));
        tr.appendChild(el("td", {}, a.decision_note || ""));
      }
      body.appendChild(tr);
    });
  }
  function load() {
    return gisApi("GET", "/api/v1/approvals?state=" + encodeURIComponent(state.tab) + "&limit=500")
      .then(function (r) { state.rows = r.approvals; stats.loads += 1; draw(); stats.ready = true; })
      .catch(function (err) { result.textContent = w("failed_load") + ": " + message(err); });
  }

  /* ---- delegations ---- */
  var box = document.querySelector(".approvals-delegations");
  function delegations() {
    return gisApi("GET", "/api/v1/approvals/delegations").then(function (d) {
      box.textContent = "";
      box.appendChild(el("h2", {}, w("delegations")));
      [["given", d.given], ["received", d.received]].forEach(function (pair) {
        var ul = el("ul", { "data-testid": "delegations-" + pair[0] });
        pair[1].forEach(function (g) {
          var who = pair[0] === "given" ? g.delegate_name : g.delegator_name;
          var li = el("li", {}, w(pair[0]) + " " + who + " " + w("until") + " " + when(g.ends_at) + " ");
          if (pair[0] === "given") {
            var end = el("button", { type: "button", "data-testid": "end-delegation" }, w("end"));
            end.addEventListener("click", function () {
              gisApi("DELETE", "/api/v1/approvals/delegations/" + g.id).then(delegations)
                .catch(function (err) { li.appendChild(el("span", { "class": "error" }, message(err))); });
            });
            li.appendChild(end);
          }
          ul.appendChild(li);
        });
        box.appendChild(ul);
      });
      var form = el("form", { "data-testid": "delegation-form" });
      var id = el("input", { type: "number", min: "1", required: "required", "aria-label": w("delegate_id"),
                             placeholder: w("delegate_id") });
      var ends = el("input", { type: "datetime-local", required: "required", "aria-label": w("ends_at") });
      var go = el("button", { type: "submit" }, w("delegate"));
      var err = el("span", { "class": "error", "data-testid": "delegation-error" });
      [id, ends, go, err].forEach(function (x) { form.appendChild(x); });
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        gisApi("POST", "/api/v1/approvals/delegations",
               { delegate_id: parseInt(id.value, 10), ends_at: new Date(ends.value).toISOString() })
          .then(delegations).catch(function (e) { err.textContent = message(e); });
      });
      box.appendChild(form);
    });
  }

  showTabs();
  window.gisCategoryNames(zh).then(function (n) { categoryName = n; }, function () {})
    .then(load);
  delegations();
})();

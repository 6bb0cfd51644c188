/* Saved searches on the desk's queue page (/desk/): "save this view" under a name, and
   the viewer's saved searches, each opening the queue with its tab and filters
   (GET/POST /api/v1/desk/saved-searches, DELETE …/{id}; desk/saved_searches.py checks the
   query against the queue's filters). The view is the page's address, which desk.js keeps
   up to date. No inline script: the page's CSP forbids it. */
(function () {
  "use strict";
  var config = JSON.parse(document.body.getAttribute("data-config"));
  var zh = config.lang === "zh";
  var WORDS = {
    save: ["保存此视图", "Save this view"], name: ["名称", "Name"],
    saved: ["已存视图", "Saved views"], none: ["暂无", "none yet"],
    remove: ["删除", "Delete"], failed: ["保存失败", "Not saved"]
  };
  function w(key) { return WORDS[key][zh ? 0 : 1]; }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  var state = (window.gisSaved = { ready: false, saved: [] });
  var box = el("form", { "class": "desk-filters desk-saved", "data-testid": "saved" });
  var name = el("input", { type: "text", size: "12", maxlength: "100", "data-testid": "saved-name",
                           placeholder: w("name"), "aria-label": w("name"), required: "" });
  var save = el("button", { type: "submit", "data-testid": "saved-save" }, w("save"));
  var message = el("span", { "data-testid": "saved-message", "aria-live": "polite" });
  var list = el("span", { "data-testid": "saved-list" });
  box.appendChild(name);
  box.appendChild(save);
  box.appendChild(message);
  box.appendChild(el("span", {}, w("saved") + ":"));
  box.appendChild(list);
  var filters = document.querySelector(".desk-filters");
  filters.parentNode.insertBefore(box, filters.nextSibling);

  function request(method, url, body) {
    /* pagefetch.js: the cookie, and the header that makes a cookie write our page's own;
       a refusal rejects with our error body ({error, detail, ...}) */
    return window.gisApi(method, url, body).catch(function (err) { throw err.body || err; });
  }
  function show(items) {
    state.saved = items;
    list.textContent = "";
    if (!items.length) { list.appendChild(el("span", {}, w("none"))); }
    items.forEach(function (s) {
      var q = new URLSearchParams(s.query);
      if (!zh) { q.set("lang", "en"); }
      var item = el("span", { "class": "desk-saved-item", "data-testid": "saved-item",
                              "data-id": s.id });
      item.appendChild(el("a", { href: "/desk/?" + q.toString(), "data-testid": "saved-open",
                                 title: s.query }, s.name));
      var del = el("button", { type: "button", "data-testid": "saved-delete",
                               "aria-label": w("remove") + " " + s.name }, "×");
      del.addEventListener("click", function () {
        request("DELETE", "/api/v1/desk/saved-searches/" + s.id).then(load);
      });
      item.appendChild(del);
      list.appendChild(item);
    });
  }
  function load() {
    return request("GET", "/api/v1/desk/saved-searches").then(function (b) {
      show(b.saved_searches);
      state.ready = true;
    }).catch(function () { message.textContent = w("failed"); });
  }
  box.addEventListener("submit", function (ev) {
    ev.preventDefault();
    message.textContent = "";
    var query = window.location.search.replace(/^\?/, "");
    request("POST", "/api/v1/desk/saved-searches", { name: name.value.trim(), query: query })
      .then(function () { name.value = ""; return load(); })
      .catch(function (e) { message.textContent = w("failed") + ": " + ((e && e.detail) || ""); });
  });
  load();
})();

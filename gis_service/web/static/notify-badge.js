/* The inbox badge of the navigation bar (desk/nav.py inbox_badge): the unread count from
   GET /api/v1/notifications/unread, read at load and every minute; the button opens the
   latest notifications (GET /api/v1/notifications?limit=10); a click on one marks it
   read, "all read" marks them all (POST …/read-all); for the desk's roles the list ends
   with a link to the whole inbox and the settings (the list's data-page, desk/nav.py
   INBOX_PAGE). Cookie writes carry X-Requested-With (api/deps.py PAGE_WRITE_HEADER).
   Events on document: "gis:unread" (detail: the count) from a page that changed the
   inbox sets the badge; "gis:inbox-written" is sent after the list here marked some
   read. No inline script or style. */
(function () {
  "use strict";
  var button = document.querySelector("[data-testid=nav-inbox]");
  var count = document.querySelector("[data-testid=nav-unread]");
  var list = document.getElementById("gis-inbox");
  if (!button || !count || !list) { return; }
  var zh = (document.documentElement.lang || "zh").indexOf("zh") === 0;
  var words = zh
    ? { empty: "暂无通知", all: "全部已读", unread: "未读", page: "全部通知与设置" }
    : { empty: "No notifications", all: "Mark all read", unread: "unread",
        page: "All notifications & settings" };

  function call(method, url) {
    var headers = method === "GET" ? {} : { "X-Requested-With": "XMLHttpRequest" };
    return fetch(url, { method: method, credentials: "same-origin", headers: headers })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      });
  }

  function show(n) {
    count.textContent = String(n);
    count.classList.toggle("none", n === 0);
    button.title = n + " " + words.unread;
    button.hidden = false;
  }

  function written() { document.dispatchEvent(new CustomEvent("gis:inbox-written")); }

  function refresh() {
    return call("GET", "/api/v1/notifications/unread").then(function (d) { show(d.unread); })
      .catch(function () { /* signed out or offline: keep the last count */ });
  }

  function item(n) {
    var li = document.createElement("li");
    li.className = n.read_at ? "read" : "unread";
    li.setAttribute("data-testid", "inbox-item");
    var title = document.createElement("b");
    title.textContent = n.title;
    var body = document.createElement("span");
    body.textContent = n.body;
    li.appendChild(title);
    li.appendChild(body);
    li.addEventListener("click", function () {
      call("POST", "/api/v1/notifications/" + n.id + "/read").then(function () {
        li.className = "read";
        written();
        return refresh();
      }).then(function () {
        if (n.case_id) { window.location.href = "/desk/cases/" + n.case_id; }
      });
    });
    return li;
  }

  function open() {
    return call("GET", "/api/v1/notifications?limit=10").then(function (page) {
      list.textContent = "";
      show(page.unread);
      var ul = document.createElement("ul");
      page.items.forEach(function (n) { ul.appendChild(item(n)); });
      if (!page.items.length) {
        var li = document.createElement("li");
        li.textContent = words.empty;
        ul.appendChild(li);
      }
      var all = document.createElement("button");
      all.type = "button";
      all.textContent = words.all;
      all.setAttribute("data-testid", "inbox-read-all");
      all.addEventListener("click", function () {
        call("POST", "/api/v1/notifications/read-all").then(function () {
          written();
          return open();
        });
      });
      list.appendChild(ul);
      list.appendChild(all);
      var target = list.getAttribute("data-page");
      if (target) {
        var whole = document.createElement("a");
        whole.href = target;
        whole.className = "gis-inbox-page";
        whole.textContent = words.page;
        whole.setAttribute("data-testid", "inbox-page");
        list.appendChild(whole);
      }
      list.hidden = false;
    });
  }

  button.addEventListener("click", function () {
    var expanded = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", expanded ? "false" : "true");
    if (expanded) { list.hidden = true; } else { open(); }
  });
  document.addEventListener("gis:unread", function (e) { show(e.detail); });
  refresh();
  window.setInterval(refresh, 60000);
})();

/* Our pages' one way to call the API (desk, case page, approvals, admin): the sign-in
   cookie travels with every request; a write adds X-Requested-With: XMLHttpRequest, the
   header without which the API refuses a cookie write (api/deps.py PAGE_WRITE_HEADER,
   OWASP's custom-header CSRF defence). gisApi(method, url, body) resolves to the answer's
   JSON (null for 204/304) and rejects with an Error carrying .status and .body (our JSON
   error body: {error, detail, ...}) for any answer other than 2xx; ``init`` adds fetch
   options (e.g. {keepalive: true} for a request sent while the page unloads).
   gisCategories() resolves to GET /api/v1/categories' answer, gisCategoryNames(zh) to the
   categories' names (both fetched once per page). */
(function () {
  "use strict";
  function gisApi(method, url, body, headers, init) {
    var opts = Object.assign({}, init || {},
                             { method: method, credentials: "same-origin", headers: headers || {} });
    if (method !== "GET" && method !== "HEAD") {
      opts.headers["X-Requested-With"] = "XMLHttpRequest";
    }
    if (body !== undefined && body !== null) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      if (r.status === 204 || r.status === 304) { return null; }
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
        if (!r.ok) {
          var err = new Error((data && data.detail) || ("HTTP " + r.status));
          err.status = r.status;
          err.body = data || {};
          throw err;
        }
        return data;
      });
    });
  }
  window.gisApi = gisApi;

  /* GET /api/v1/categories ({domains: [{code, name_zh, name_en, children}]}), fetched
     once per page; and {category code: its name in the page's language} for domains and
     sub-categories. */
  var categories = null;
  window.gisCategories = function () {
    categories = categories || gisApi("GET", "/api/v1/categories");
    return categories;
  };
  var names = null;
  window.gisCategoryNames = function (zh) {
    names = names || window.gisCategories().then(function (c) {
      var out = {};
      c.domains.forEach(function (d) {
        [d].concat(d.children).forEach(function (k) {
          out[k.code] = zh ? k.name_zh : (k.name_en || k.name_zh);
        });
      });
      return out;
    });
    return names;
  };
})();

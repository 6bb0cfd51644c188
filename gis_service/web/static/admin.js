/* The admin pages (/admin/…): one table, one form and row actions per section, all on
   /api/v1/admin/… (gis_service/admin/api.py), whose services hold every rule: this file
   checks nothing itself and shows the server's refusal beside the form and its field.
   Words: the vocabulary (/m/vocabulary.js) and WORDS below. No inline script or style:
   the page's CSP forbids it; its settings are the body's data-config. Calls go through
   pagefetch.js (gisApi: the sign-in cookie, and the header our pages' writes carry). */
(function () {
  "use strict";
  var config = JSON.parse(document.body.getAttribute("data-config"));
  var zh = config.lang === "zh";
  var vocab = window.gisVocabulary || {};
  var state = (window.gisAdmin = { ready: false, loads: 0, errors: 0, section: config.section });
  var WORDS = {
    id: ["编号", "Id"], username: ["用户名", "Username"], display_name: ["姓名", "Name"],
    password: ["密码", "Password"], role: ["角色", "Role"], scopes: ["辖区（单元编码，逗号分隔）", "Scope (unit codes, comma-separated)"],
    team_id: ["队伍", "Team"], phone: ["电话", "Phone"], active: ["启用", "Active"],
    actions: ["操作", "Actions"], create: ["新增", "Create"], save: ["保存", "Save"],
    cancel: ["取消", "Cancel"], edit: ["修改", "Edit"], deactivate: ["停用", "Deactivate"],
    activate: ["启用", "Activate"], reset: ["重置密码", "Reset password"],
    new_password: ["新密码（仅显示一次）：", "New password (shown once): "],
    name: ["名称", "Name"], kind: ["类型", "Kind"], unit_code: ["单元编码", "Unit code"],
    members: ["成员", "Members"], show_members: ["成员", "Members"], add_member: ["加入队伍", "Add to team"],
    remove: ["移出", "Remove"], user_id: ["账号", "Account"], sort: ["排序", "Order"],
    load: ["查看", "Show"], unit: ["单元编码", "Unit code"], code: ["编码", "Code"],
    parent_code: ["所属大类", "Domain"], name_zh: ["中文名", "Chinese name"], name_en: ["英文名", "English name"],
    deadline_hours: ["处置时限（小时）", "Deadline (hours)"], handling_level: ["处置层级", "Handling level"],
    public: ["公开", "Public"], yes: ["是", "yes"], no: ["否", "no"], scope_code: ["限定单元（可空）", "Scope unit (optional)"],
    key_prefix: ["密钥开头", "Key starts"], created_at: ["创建", "Created"], revoked_at: ["吊销", "Revoked"],
    revoke: ["吊销", "Revoke"], new_key: ["新密钥（仅显示一次，请立即交给接入方）：", "New key (shown once, hand it over now): "],
    categories: ["服务类别", "Categories"], address: ["地址", "Address"], opening_hours: ["开放时间", "Opening hours"],
    lon: ["经度", "Longitude"], lat: ["纬度", "Latitude"], closed_at: ["关闭于", "Closed"],
    close: ["关闭", "Close"], reopen: ["重新开放", "Reopen"], click_map: ["在地图上点击放置新点位；拖动已有点位可移动。", "Click the map to place a new point; drag a point to move it."],
    moved: ["已移动", "Moved"], saved: ["已保存", "Saved"], all: ["全部", "All"], filter: ["筛选", "Filter"],
    q: ["关键词", "Text"], failed: ["请求失败", "Request failed"], none: ["无", "none"],
    refresh: ["可达性图层正在刷新", "Access figures are refreshing"], removed: ["已移除", "Removed"],
    confirm_remove: ["移出后该账号将被停用。继续？", "The account will be deactivated. Go on?"],
    channel: ["渠道", "Channel"], recipient: ["接收方", "Recipient"], attempts: ["尝试次数", "Attempts"],
    last_error: ["最后错误", "Last error"], updated_at: ["时间", "Time"], pick: ["选择", "Pick"],
    retry: ["重发", "Retry"], retry_selected: ["重发所选", "Retry selected"], pick_all: ["全选", "Select all"],
    result: ["结果", "Result"], queued: ["已重新排队", "Queued again"], url: ["接收地址（URL）", "URL"],
    kinds: ["通知类型", "Kinds"], kinds_hint: ["通知类型（不选即全部）", "Kinds (none: all)"], all_kinds: ["全部类型", "All kinds"],
    new_secret: ["签名密钥（仅显示一次，请立即交给接收方）：", "Signing secret (shown once, hand it over now): "],
    delete: ["删除", "Delete"], confirm_delete: ["删除该订阅及其投递记录？", "Delete this subscription and its deliveries?"],
    last_status: ["最近投递", "Last delivery"], deleted: ["已删除", "Deleted"],
    retried: ["重发结果：成功 {ok} 条，失败 {bad} 条", "Retried: {ok} queued, {bad} refused"],
    status_pending: ["待发送", "pending"], status_sending: ["发送中", "sending"],
    status_sent: ["已送达", "sent"], status_dead: ["失败", "dead"]
  };
  function w(key) { return WORDS[key] ? WORDS[key][zh ? 0 : 1] : key; }
  function label(list, code) {
    var found = (list || []).filter(function (x) { return x.code === code; })[0];
    return found ? found.label[zh ? "zh" : "en"] || found.label.zh : code;
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) { e.setAttribute(k, attrs[k]); }
    });
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  /* ---- the API ---- */
  /* pagefetch.js: the cookie and the page-write header; answers as {ok, status, body} */
  function api(method, url, body) {
    return window.gisApi(method, url, body).then(
      function (b) { return { ok: true, status: 200, body: b }; },
      function (err) {
        if (!err.status) { throw err; }
        return { ok: false, status: err.status, body: err.body };
      });
  }
  var A = "/api/v1/admin";

  /* ---- the page's parts ---- */
  var form = document.querySelector("[data-testid=form]");
  var formError = document.querySelector("[data-testid=form-error]");
  var notice = document.querySelector("[data-testid=notice]");
  var filter = document.querySelector("[data-testid=filter]");
  var table = document.querySelector("[data-testid=table]");
  var extra = document.querySelector("[data-testid=extra]");
  if (!form) { state.ready = true; return; }  /* the index: links only */

  function say(text, testid) {
    notice.textContent = "";
    if (!text) { return; }
    notice.appendChild(el("span", { "data-testid": testid || "notice-text" }, text));
  }
  function clearErrors() {
    formError.textContent = "";
    Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (e) { e.textContent = ""; });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (e) { e.removeAttribute("aria-invalid"); });
  }
  /* the server's refusal: its detail beside the form, and beside the field it names */
  function refused(res) {
    state.errors += 1;
    var b = res.body || {};
    var detail = b.detail || (w("failed") + " (" + res.status + ")");
    formError.textContent = detail;
    formError.setAttribute("data-field", b.field || "");
    var name = (b.field || "").split(".")[0];
    var slot = form.querySelector("[data-error-for='" + name + "']");
    if (slot) { slot.textContent = detail; }
    var input = form.querySelector("[name='" + name + "']");
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  }

  /* a form from a list of fields: {name, type: text|password|number|select|check|list, options} */
  var current = { spec: null, submit: null };
  function buildForm(fields, submitWord, submit, values) {
    form.textContent = "";
    clearErrors();
    current = { fields: fields, submit: submit };
    fields.forEach(function (f) {
      var id = "f-" + f.name;
      var wrap = el("div", { "class": "admin-field" });
      var input;
      if (f.type === "select") {
        input = el("select", { id: id, name: f.name, "data-testid": "input-" + f.name });
        (f.options || []).forEach(function (o) { input.appendChild(el("option", { value: o[0] }, o[1])); });
      } else if (f.type === "check") {
        input = el("input", { id: id, name: f.name, type: "checkbox", "data-testid": "input-" + f.name });
      } else if (f.type === "checks") {  /* several codes from a server list */
        input = el("span", { id: id, "class": "admin-checks", "data-testid": "input-" + f.name });
        (f.options || []).forEach(function (o) {
          var box = el("label", { "class": "admin-check" });
          box.appendChild(el("input", { type: "checkbox", name: f.name, value: o[0], "data-testid": "input-" + f.name + "-" + o[0] }));
          box.appendChild(document.createTextNode(o[1]));
          input.appendChild(box);
        });
      } else {
        input = el("input", { id: id, name: f.name, type: f.type === "password" ? "password" : "text",
          autocomplete: f.type === "password" ? "new-password" : "off", "data-testid": "input-" + f.name });
      }
      var v = values ? values[f.name] : f.value;
      if (v !== undefined && v !== null) {
        if (f.type === "checks") {
          Array.prototype.forEach.call(input.querySelectorAll("input"), function (b) { b.checked = v.indexOf(b.value) >= 0; });
        } else if (f.type === "check") { input.checked = !!v; }
        else if (f.type === "list") { input.value = v.join(","); }
        else { input.value = String(v); }
      }
      if (f.readonly) { input.setAttribute("disabled", "disabled"); }
      wrap.appendChild(el("label", { "for": id }, f.label || w(f.name)));
      wrap.appendChild(input);
      wrap.appendChild(el("span", { "class": "field-error", "data-error-for": f.name, "data-testid": "error-" + f.name }));
      form.appendChild(wrap);
    });
    var buttons = el("div", { "class": "admin-buttons" });
    buttons.appendChild(el("button", { type: "submit", "data-testid": "submit" }, submitWord));
    if (values) {
      var cancel = el("button", { type: "button", "data-testid": "cancel" }, w("cancel"));
      cancel.addEventListener("click", function () { sections[config.section].form(); });
      buttons.appendChild(cancel);
    }
    form.appendChild(buttons);
  }
  function readForm() {
    var out = {};
    current.fields.forEach(function (f) {
      if (f.readonly) { return; }
      if (f.type === "checks") {
        out[f.name] = Array.prototype.map.call(form.querySelectorAll("[name='" + f.name + "']:checked"), function (b) { return b.value; });
        return;
      }
      var input = form.querySelector("[name='" + f.name + "']");
      var v = input.value.trim();
      if (f.type === "check") { out[f.name] = input.checked; return; }
      if (f.type === "list") { out[f.name] = v ? v.split(/[,，\s]+/).filter(Boolean) : []; return; }
      if (v === "") { if (!f.optional) { out[f.name] = v; } return; }
      if (f.type === "number") { var n = Number(v); out[f.name] = isNaN(n) ? v : n; return; }
      if (f.type === "select" && f.numeric) { out[f.name] = Number(v); return; }
      out[f.name] = v;
    });
    return out;
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    clearErrors();
    say("");
    if (current.submit) { current.submit(readForm()); }
  });

  function fillTable(columns, rows, actions, rowId) {
    var head = table.querySelector("thead");
    var body = table.querySelector("tbody");
    head.textContent = "";
    body.textContent = "";
    var tr = el("tr");
    columns.forEach(function (c) { tr.appendChild(el("th", {}, c[1])); });
    if (actions) { tr.appendChild(el("th", {}, w("actions"))); }
    head.appendChild(tr);
    rows.forEach(function (row) {
      var r = el("tr", { "data-testid": "row-" + rowId(row) });
      columns.forEach(function (c) {
        var v = typeof c[2] === "function" ? c[2](row) : row[c[0]];
        var td = el("td", { "data-col": c[0] }, v instanceof Node || v === null || v === undefined ? "" : v);
        if (v instanceof Node) { td.appendChild(v); }
        r.appendChild(td);
      });
      if (actions) {
        var td = el("td", { "class": "admin-actions" });
        actions(row).forEach(function (a) {
          var b = el("button", { type: "button", "data-testid": a[0] + "-" + rowId(row) }, a[1]);
          b.addEventListener("click", function () { a[2](row); });
          td.appendChild(b);
        });
        r.appendChild(td);
      }
      body.appendChild(r);
    });
    state.loads += 1;
  }
  function yes(v) { return v ? w("yes") : w("no"); }
  function when(v) { return v ? new Date(v).toLocaleString(zh ? "zh-CN" : "en") : ""; }
  /* run a write; on success reload the section (then the callback), else show the refusal */
  function write(method, url, body, done) {
    return api(method, url, body).then(function (res) {
      if (!res.ok) { refused(res); return res; }
      return Promise.resolve(sections[config.section].load()).then(function () {
        if (done) { done(res.body); }
        return res;
      });
    });
  }

  /* ---- sections ---- */
  var roles = (vocab.account_roles || []).filter(function (r) { return r !== "public"; });
  var roleOptions = roles.map(function (r) { return [r, label(vocab.roles, r)]; });
  var teams = [];
  function teamOptions(blank) {
    var o = blank ? [["", "—"]] : [];
    return o.concat(teams.filter(function (t) { return t.active; })
      .map(function (t) { return [String(t.id), t.name + " (" + t.unit_code + ")"]; }));
  }
  function loadTeams() {
    return api("GET", A + "/teams").then(function (res) { teams = res.ok ? res.body.teams : []; });
  }
  var sections = {};

  sections.users = {
    fields: function (editing) {
      return [
        { name: "username", readonly: editing }, { name: "display_name", optional: true },
        editing ? null : { name: "password", type: "password" },
        { name: "role", type: "select", options: roleOptions },
        { name: "scopes", type: "list" },
        { name: "team_id", type: "select", options: teamOptions(true), optional: true, numeric: true },
        { name: "phone", optional: true }
      ].filter(Boolean);
    },
    form: function () {
      var self = this;
      buildForm(this.fields(false), w("create"), function (body) {
        write("POST", A + "/users", body, function () { self.form(); say(w("saved")); });
      });
    },
    edit: function (u) {
      var self = this;
      buildForm(this.fields(true), w("save"), function (body) {
        if (!("team_id" in body)) { body.team_id = null; }
        write("PATCH", A + "/users/" + u.id, body, function () { self.form(); say(w("saved")); });
      }, u);
    },
    filter: function () {
      filter.textContent = "";
      var role = el("select", { name: "role", "data-testid": "filter-role" });
      role.appendChild(el("option", { value: "" }, w("all")));
      roleOptions.forEach(function (o) { role.appendChild(el("option", { value: o[0] }, o[1])); });
      var q = el("input", { name: "q", placeholder: w("q"), "data-testid": "filter-q" });
      filter.appendChild(role);
      filter.appendChild(q);
      filter.appendChild(el("button", { type: "submit", "data-testid": "filter-submit" }, w("filter")));
      var self = this;
      filter.addEventListener("submit", function (ev) { ev.preventDefault(); self.load(); });
    },
    load: function () {
      var self = this;
      var p = new URLSearchParams();
      var role = filter.querySelector("[name=role]");
      var q = filter.querySelector("[name=q]");
      if (role && role.value) { p.set("role", role.value); }
      if (q && q.value.trim()) { p.set("q", q.value.trim()); }
      return Promise.all([api("GET", A + "/users?" + p.toString()), loadTeams()]).then(function (got) {
        var res = got[0];
        if (!res.ok) { refused(res); return; }
        var teamName = {};
        teams.forEach(function (t) { teamName[t.id] = t.name; });
        fillTable([
          ["id", w("id")], ["username", w("username")], ["display_name", w("display_name")],
          ["role", w("role"), function (u) { return label(vocab.roles, u.role); }],
          ["scopes", w("scopes"), function (u) { return u.scopes.join(", "); }],
          ["team_id", w("team_id"), function (u) { return u.team_id ? teamName[u.team_id] || u.team_id : ""; }],
          ["active", w("active"), function (u) { return yes(u.active); }]
        ], res.body.users, function (u) {
          return [
            ["edit", w("edit"), function () { self.edit(u); }],
            u.active ? ["deactivate", w("deactivate"), function () { write("POST", A + "/users/" + u.id + "/deactivate"); }]
                     : ["activate", w("activate"), function () { write("POST", A + "/users/" + u.id + "/activate"); }],
            ["reset", w("reset"), function () {
              write("POST", A + "/users/" + u.id + "/password", {}, function (b) { say(w("new_password") + b.password, "new-password"); });
            }]
          ];
        }, function (u) { return u.username; });
      });
    }
  };

  var kindOptions = (vocab.team_kinds || []).map(function (k) { return [k.code, k.label[zh ? "zh" : "en"]]; });
  sections.teams = {
    fields: function (editing) {
      return [
        { name: "name" }, { name: "kind", type: "select", options: kindOptions },
        { name: "unit_code", readonly: editing }, { name: "phone", optional: true }
      ];
    },
    form: function () {
      var self = this;
      buildForm(this.fields(false), w("create"), function (body) {
        write("POST", A + "/teams", body, function () { self.form(); say(w("saved")); });
      });
    },
    edit: function (t) {
      var self = this;
      buildForm(this.fields(true), w("save"), function (body) {
        write("PATCH", A + "/teams/" + t.id, body, function () { self.form(); say(w("saved")); });
      }, t);
    },
    members: function (t) {
      extra.textContent = "";
      extra.appendChild(el("h2", {}, w("members") + " · " + t.name));
      Promise.all([api("GET", A + "/teams/" + t.id + "/members"), api("GET", A + "/users?role=team_member&active=true")]).then(function (got) {
        var list = el("ul", { "data-testid": "members" });
        (got[0].body.users || []).forEach(function (u) {
          var li = el("li", { "data-testid": "member-" + u.username }, u.display_name + " (" + u.username + ")" + (u.active ? "" : " · " + w("deactivate")));
          if (u.active) {
            var b = el("button", { type: "button", "data-testid": "remove-member-" + u.username }, w("remove"));
            b.addEventListener("click", function () {
              if (window.confirm(w("confirm_remove"))) {
                write("DELETE", A + "/teams/" + t.id + "/members/" + u.id, undefined, function () { sections.teams.members(t); });
              }
            });
            li.appendChild(b);
          }
          list.appendChild(li);
        });
        extra.appendChild(list);
        var pick = el("select", { name: "user_id", "data-testid": "member-pick" });
        (got[1].body.users || []).filter(function (u) { return u.team_id !== t.id; }).forEach(function (u) {
          pick.appendChild(el("option", { value: String(u.id) }, u.display_name + " (" + u.username + ")"));
        });
        var add = el("button", { type: "button", "data-testid": "add-member" }, w("add_member"));
        add.addEventListener("click", function () {
          if (!pick.value) { return; }
          write("POST", A + "/teams/" + t.id + "/members", { user_id: Number(pick.value) }, function () { sections.teams.members(t); });
        });
        extra.appendChild(pick);
        extra.appendChild(add);
      });
    },
    load: function () {
      var self = this;
      return loadTeams().then(function () {
        fillTable([
          ["id", w("id")], ["name", w("name")],
          ["kind", w("kind"), function (t) { return zh ? t.kind_zh : t.kind_en; }],
          ["unit_code", w("unit_code"), function (t) { return t.unit_code + " " + (t.unit_name || ""); }],
          ["phone", w("phone")], ["members", w("members")],
          ["active", w("active"), function (t) { return yes(t.active); }]
        ], teams, function (t) {
          return [
            ["edit", w("edit"), function () { self.edit(t); }],
            ["members", w("show_members"), function () { self.members(t); }],
            t.active ? ["deactivate", w("deactivate"), function () { write("PATCH", A + "/teams/" + t.id, { active: false }); }]
                     : ["activate", w("activate"), function () { write("PATCH", A + "/teams/" + t.id, { active: true }); }]
          ];
        }, function (t) { return t.id; });
      });
    }
  };

  var staffOptions = (vocab.staff_role_labels || []).map(function (r) { return [r.code, r.label[zh ? "zh" : "en"]]; });
  sections.rosters = {
    unit: new URLSearchParams(window.location.search).get("unit") || "",
    fields: function () {
      return [
        { name: "unit_code", value: this.unit }, { name: "role", type: "select", options: staffOptions },
        { name: "name" }, { name: "phone", optional: true }, { name: "sort", type: "number", value: 0 }
      ];
    },
    form: function () {
      var self = this;
      buildForm(this.fields(), w("create"), function (body) {
        self.unit = body.unit_code || self.unit;
        write("POST", A + "/rosters", body, function () { self.form(); say(w("saved")); });
      });
    },
    edit: function (s) {
      var self = this;
      buildForm(this.fields(), w("save"), function (body) {
        write("PUT", A + "/rosters/" + s.id, body, function () { self.form(); say(w("saved")); });
      }, s);
    },
    filter: function () {
      var self = this;
      filter.textContent = "";
      var unit = el("input", { name: "unit", placeholder: w("unit"), value: this.unit, "data-testid": "filter-unit" });
      filter.appendChild(unit);
      filter.appendChild(el("button", { type: "submit", "data-testid": "filter-submit" }, w("load")));
      filter.addEventListener("submit", function (ev) {
        ev.preventDefault();
        self.unit = unit.value.trim();
        self.form();
        self.load();
      });
    },
    load: function () {
      var self = this;
      if (!this.unit) { fillTable([["id", w("id")]], [], null, function () { return ""; }); return Promise.resolve(); }
      return api("GET", A + "/rosters?unit=" + encodeURIComponent(this.unit)).then(function (res) {
        if (!res.ok) { refused(res); return; }
        fillTable([
          ["id", w("id")], ["unit_code", w("unit_code")],
          ["role", w("role"), function (s) { return label(vocab.staff_role_labels, s.role); }],
          ["name", w("name")], ["phone", w("phone")], ["sort", w("sort")]
        ], res.body.staff, function (s) {
          return [
            ["edit", w("edit"), function () { self.edit(s); }],
            ["remove", w("remove"), function () { write("DELETE", A + "/rosters/" + s.id); }]
          ];
        }, function (s) { return s.id; });
      });
    }
  };

  var levelOptions = (vocab.handling_levels || []).map(function (l) { return [l, label(vocab.levels, l)]; });
  sections.categories = {
    domains: [],
    form: function () {
      var self = this;
      buildForm([
        { name: "parent_code", type: "select", options: this.domains.filter(function (d) { return d.active; })
            .map(function (d) { return [d.code, d.code + " " + (zh ? d.name_zh : d.name_en)]; }) },
        { name: "code" }, { name: "name_zh" }, { name: "name_en" },
        { name: "deadline_hours", type: "number", optional: true },
        { name: "handling_level", type: "select", options: [["", "—"]].concat(levelOptions), optional: true }
      ], w("create"), function (body) {
        write("POST", A + "/categories", body, function () { self.form(); say(w("saved")); });
      });
    },
    edit: function (c) {
      var self = this;
      buildForm([
        { name: "code", readonly: true }, { name: "name_zh" }, { name: "name_en" },
        { name: "deadline_hours", type: "number" },
        { name: "handling_level", type: "select", options: levelOptions },
        { name: "public", type: "check" }, { name: "active", type: "check" }
      ], w("save"), function (body) {
        write("PATCH", A + "/categories/" + encodeURIComponent(c.code), body, function () { self.form(); say(w("saved")); });
      }, c);
    },
    load: function () {
      var self = this;
      return api("GET", A + "/categories").then(function (res) {
        if (!res.ok) { refused(res); return; }
        self.domains = res.body.domains;
        var rows = [];
        self.domains.forEach(function (d) { rows.push(d); d.children.forEach(function (c) { rows.push(c); }); });
        fillTable([
          ["code", w("code"), function (c) { return (c.parent_code ? "　└ " : "") + c.code; }],
          ["name", w("name"), function (c) { return zh ? c.name_zh : c.name_en; }],
          ["deadline_hours", w("deadline_hours")],
          ["handling_level", w("handling_level"), function (c) { return label(vocab.levels, c.handling_level); }],
          ["public", w("public"), function (c) { return yes(c.public); }],
          ["active", w("active"), function (c) { return yes(c.active); }]
        ], rows, function (c) {
          return [
            ["edit", w("edit"), function () { self.edit(c); }],
            c.active ? ["deactivate", w("deactivate"), function () { write("PATCH", A + "/categories/" + encodeURIComponent(c.code), { active: false }); }]
                     : ["activate", w("activate"), function () { write("PATCH", A + "/categories/" + encodeURIComponent(c.code), { active: true }); }]
          ];
        }, function (c) { return c.code; });
        if (!form.querySelector("[data-testid=cancel]")) { self.form(); }
      });
    }
  };

  sections.open311 = {
    form: function () {
      buildForm([{ name: "name" }, { name: "scope_code", optional: true }], w("create"), function (body) {
        write("POST", A + "/open311-keys", body, function (b) {
          sections.open311.form();
          say(w("new_key") + b.api_key, "new-key");
        });
      });
    },
    load: function () {
      return api("GET", A + "/open311-keys").then(function (res) {
        if (!res.ok) { refused(res); return; }
        fillTable([
          ["id", w("id")], ["name", w("name")],
          ["key_prefix", w("key_prefix"), function (k) { return k.key_prefix + "…"; }],
          ["scope_code", w("scope_code"), function (k) { return k.scope_code || w("all"); }],
          ["created_at", w("created_at"), function (k) { return when(k.created_at); }],
          ["revoked_at", w("revoked_at"), function (k) { return when(k.revoked_at); }]
        ], res.body.clients, function (k) {
          return k.revoked_at ? [] : [["revoke", w("revoke"), function () { write("POST", A + "/open311-keys/" + k.id + "/revoke"); }]];
        }, function (k) { return k.name; });
      });
    }
  };

  /* ---- service points, with the map ---- */
  sections["service-points"] = {
    kinds: [],
    map: null,
    layer: null,
    draft: null,
    form: function () {
      var self = this;
      buildForm([
        { name: "kind", type: "select", options: this.kinds.map(function (k) { return [k.code, zh ? k.name_zh : (k.name_en || k.name_zh)]; }) },
        { name: "name" }, { name: "address", optional: true }, { name: "phone", optional: true },
        { name: "opening_hours", optional: true },
        { name: "lon", type: "number" }, { name: "lat", type: "number" }
      ], w("create"), function (body) {
        write("POST", A + "/service-points", body, function (b) {
          if (self.draft) { self.map.removeLayer(self.draft); self.draft = null; }
          self.form();
          say(w("saved") + " · " + w("refresh"), "saved-point");
          state.lastPoint = b.id;
        });
      });
    },
    place: function (latlng) {
      var lon = form.querySelector("[name=lon]");
      var lat = form.querySelector("[name=lat]");
      if (!lon || !lat) { return; }
      lon.value = latlng.lng.toFixed(7);
      lat.value = latlng.lat.toFixed(7);
      if (this.draft) { this.draft.setLatLng(latlng); }
      else {
        this.draft = L.marker(latlng, { icon: L.divIcon({ className: "admin-pin admin-pin-new", iconSize: [18, 18] }) }).addTo(this.map);
      }
      state.placed = [latlng.lng, latlng.lat];
    },
    setupMap: function () {
      var self = this;
      this.map = L.map("admin-map", { zoomControl: true }).setView([34.78, 113.68], 12);
      window.gisAddBasemap(self.map);
      this.layer = L.featureGroup().addTo(this.map);
      this.map.on("click", function (ev) { self.place(ev.latlng); });
      say(w("click_map"), "map-hint");
    },
    load: function () {
      var self = this;
      return api("GET", A + "/service-points").then(function (res) {
        if (!res.ok) { refused(res); return; }
        var points = res.body.points;
        self.layer.clearLayers();
        state.markers = {};
        points.forEach(function (p) {
          if (p.closed_at) { return; }
          var m = L.marker([p.lat, p.lon], {
            draggable: true, title: p.name,
            icon: L.divIcon({ className: "admin-pin", iconSize: [14, 14] })
          });
          m.on("dragend", function () {
            var to = m.getLatLng();
            write("POST", A + "/service-points/" + p.id + "/move", { lon: to.lng, lat: to.lat }, function () {
              say(w("moved") + " · " + w("refresh"), "moved-point");
            }).then(function (r) { if (!r.ok) { self.load(); } });
          });
          m.addTo(self.layer);
          state.markers[p.id] = m;
        });
        if (!self.fitted && points.length) {
          var bounds = L.latLngBounds(points.map(function (p) { return [p.lat, p.lon]; }));
          if (bounds.getNorthEast().equals(bounds.getSouthWest())) { self.map.setView(bounds.getCenter(), 15); }
          else { self.map.fitBounds(bounds.pad(0.1), { maxZoom: 16 }); }
          self.fitted = true;
        }
        fillTable([
          ["id", w("id")], ["name", w("name")], ["kind", w("kind")],
          ["categories", w("categories"), function (p) { return p.categories.join(", "); }],
          ["unit_code", w("unit_code")],
          ["lon", w("lon"), function (p) { return p.lon.toFixed(6) + ", " + p.lat.toFixed(6); }],
          ["closed_at", w("closed_at"), function (p) { return when(p.closed_at); }]
        ], points, function (p) {
          return [p.closed_at ? ["reopen", w("reopen"), function () { write("POST", A + "/service-points/" + p.id + "/reopen"); }]
                              : ["close", w("close"), function () { write("POST", A + "/service-points/" + p.id + "/close"); }]];
        }, function (p) { return p.id; });
      });
    }
  };

  /* ---- notifications: dead letters and webhook subscriptions ---- */
  /* kinds and channels: the server's lists (notify/kinds.py) in the page's data-config */
  var NV = config.notify || { kinds: [], channels: [] };
  function statusWord(status) { return status ? w("status_" + status) : ""; }
  sections["dead-letters"] = {
    picked: {},
    form: function () { form.textContent = ""; form.hidden = true; },
    filter: function () {
      var self = this;
      filter.textContent = "";
      var channel = el("select", { name: "channel", "data-testid": "filter-channel" });
      channel.appendChild(el("option", { value: "" }, w("all")));
      NV.channels.forEach(function (c) { channel.appendChild(el("option", { value: c.code }, label(NV.channels, c.code))); });
      filter.appendChild(channel);
      filter.appendChild(el("button", { type: "submit", "data-testid": "filter-submit" }, w("filter")));
      var all = el("button", { type: "button", "data-testid": "pick-all" }, w("pick_all"));
      all.addEventListener("click", function () {
        Array.prototype.forEach.call(table.querySelectorAll("input[name=pick]:not(:disabled)"), function (b) {
          b.checked = true;
          self.picked[b.value] = true;
        });
      });
      filter.appendChild(all);
      var many = el("button", { type: "button", "data-testid": "retry-selected" }, w("retry_selected"));
      many.addEventListener("click", function () { self.retryPicked(); });
      filter.appendChild(many);
      filter.addEventListener("submit", function (ev) { ev.preventDefault(); self.load(); });
    },
    /* one retry; its answer (queued, or the server's refusal) lands in the row's result cell */
    retry: function (id) {
      return api("POST", A + "/notify/deliveries/" + id + "/retry").then(function (res) {
        var row = table.querySelector("[data-testid='row-" + id + "']");
        var cell = row && row.querySelector("[data-col=result]");
        var text = res.ok ? w("queued") : ((res.body && res.body.detail) || (w("failed") + " (" + res.status + ")"));
        if (!res.ok) { state.errors += 1; }
        if (cell) {
          cell.textContent = "";
          cell.appendChild(el("span", { "data-testid": "result-" + id, "data-ok": res.ok ? "true" : "false" }, text));
        }
        if (row && res.ok) {
          Array.prototype.forEach.call(row.querySelectorAll("button, input"), function (b) { b.disabled = true; });
          row.querySelector("[data-col=attempts]").textContent = String(res.body.attempts);
        }
        delete sections["dead-letters"].picked[id];
        return res.ok;
      });
    },
    retryPicked: function () {
      var self = this;
      var ids = Object.keys(this.picked);
      if (!ids.length) { return Promise.resolve(); }
      var ok = 0;
      var bad = 0;
      return ids.reduce(function (p, id) {
        return p.then(function () { return self.retry(id).then(function (good) { if (good) { ok += 1; } else { bad += 1; } }); });
      }, Promise.resolve()).then(function () {
        say(w("retried").replace("{ok}", ok).replace("{bad}", bad), "retried");
      });
    },
    load: function () {
      var self = this;
      var channel = filter.querySelector("[name=channel]");
      var p = new URLSearchParams({ limit: "1000" });
      if (channel && channel.value) { p.set("channel", channel.value); }
      this.picked = {};
      return api("GET", A + "/notify/dead-letters?" + p.toString()).then(function (res) {
        if (!res.ok) { refused(res); return; }
        state.deadTotal = res.body.total;
        fillTable([
          ["pick", w("pick"), function (d) {
            var box = el("input", { type: "checkbox", name: "pick", value: d.id, "data-testid": "pick-" + d.id, "aria-label": w("pick") });
            box.addEventListener("change", function () { if (box.checked) { self.picked[d.id] = true; } else { delete self.picked[d.id]; } });
            return box;
          }],
          ["kind", w("kind"), function (d) { return label(NV.kinds, d.kind); }],
          ["channel", w("channel"), function (d) { return label(NV.channels, d.channel); }],
          ["recipient", w("recipient")], ["attempts", w("attempts")],
          ["last_error", w("last_error")],
          ["updated_at", w("updated_at"), function (d) { return when(d.updated_at); }],
          ["result", w("result"), function () { return ""; }]
        ], res.body.items, function (d) {
          return [["retry", w("retry"), function () { self.retry(d.id); }]];
        }, function (d) { return d.id; });
      });
    }
  };

  sections.webhooks = {
    form: function () {
      buildForm([
        { name: "name" }, { name: "url" },
        { name: "kinds", label: w("kinds_hint"), type: "checks", options: NV.kinds.map(function (k) { return [k.code, label(NV.kinds, k.code)]; }) }
      ], w("create"), function (body) {
        write("POST", A + "/webhooks", body, function (b) {
          sections.webhooks.form();
          notice.textContent = "";
          notice.appendChild(el("span", {}, w("new_secret")));
          notice.appendChild(el("code", { "data-testid": "new-secret" }, b.secret));
        });
      });
    },
    load: function () {
      return api("GET", A + "/webhooks").then(function (res) {
        if (!res.ok) { refused(res); return; }
        fillTable([
          ["id", w("id")], ["name", w("name")], ["url", w("url")],
          ["kinds", w("kinds"), function (h) {
            return h.kinds.length ? h.kinds.map(function (k) { return label(NV.kinds, k); }).join("、") : w("all_kinds");
          }],
          ["active", w("active"), function (h) { return yes(h.active); }],
          ["last_status", w("last_status"), function (h) {
            return h.last_status ? statusWord(h.last_status) + " · " + when(h.last_delivery_at) : w("none");
          }],
          ["last_error", w("last_error")]
        ], res.body.webhooks, function (h) {
          return [
            h.active ? ["deactivate", w("deactivate"), function () { write("PUT", A + "/webhooks/" + h.id, { active: false }); }]
                     : ["activate", w("activate"), function () { write("PUT", A + "/webhooks/" + h.id, { active: true }); }],
            ["delete", w("delete"), function () {
              if (window.confirm(w("confirm_delete"))) {
                write("DELETE", A + "/webhooks/" + h.id, undefined, function () { say(w("deleted"), "deleted"); });
              }
            }]
          ];
        }, function (h) { return h.name; });
      });
    }
  };

  /* ---- start ---- */
  var section = sections[config.section];
  if (!section) { state.ready = true; return; }
  var before = Promise.resolve();
  if (config.section === "users") { before = loadTeams(); }
  if (config.section === "service-points") {
    before = api("GET", "/api/v1/service-kinds").then(function (res) { section.kinds = res.body.kinds; });
    section.setupMap();
  }
  before.then(function () {
    if (section.filter) { section.filter(); }
    if (config.section !== "categories") { section.form(); }
    return section.load();
  }).then(function () { state.ready = true; }, function (e) {
    state.errors += 1;
    formError.textContent = w("failed") + ": " + e;
  });
})();

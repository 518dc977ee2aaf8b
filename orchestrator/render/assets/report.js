// The HTML report's script. Rows are built from the embedded JSON with textContent, never
// innerHTML, and only a page of them is in the DOM at a time, so 20,000 results stay quick and
// nothing in them can run. It loads nothing from anywhere: the page works offline.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var col = {};
  data.columns.forEach(function (name, i) { col[name] = i; });
  var rows = data.rows;
  var haystack = rows.map(function (row) {
    return [row[col.publicId], row[col.organization], row[col.transition], row[col.status],
            row[col.reason], row[col.change]].join("\n").toLowerCase();
  });
  var PAGE = data.pageSize;
  var state = { query: "", status: "", organization: "", key: null, desc: false, page: 0 };

  var table = document.getElementById("promotions-table");
  var body = table.tBodies[0];
  var keys = Array.prototype.map.call(table.tHead.rows[0].cells, function (th) {
    return th.getAttribute("data-key");
  });
  var numeric = { durationSeconds: 1, evaluationSeconds: 1, critical: 1, severe: 1,
                  moderate: 1, low: 1 };
  var search = document.getElementById("search");
  var statusFilter = document.getElementById("status-filter");
  var orgFilter = document.getElementById("org-filter");
  var info = document.getElementById("page-info");
  var prev = document.getElementById("prev-page");
  var next = document.getElementById("next-page");

  var orgs = {};
  rows.forEach(function (row) { orgs[row[col.organization] || ""] = true; });
  Object.keys(orgs).sort().forEach(function (name) {
    var option = document.createElement("option");
    option.value = name;
    option.textContent = name || "(no organization)";
    orgFilter.appendChild(option);
  });

  function seconds(value) {
    if (value === null || value === undefined) { return ""; }
    if (value < 60) { return value.toFixed(1) + " s"; }
    var whole = Math.round(value);
    if (whole < 3600) {
      return Math.floor(whole / 60) + " min " + String(whole % 60).padStart(2, "0") + " s";
    }
    return Math.floor(whole / 3600) + " h " +
      String(Math.floor(whole % 3600 / 60)).padStart(2, "0") + " min";
  }

  function webUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  function filtered() {
    var query = state.query.toLowerCase().trim();
    var words = query ? query.split(/\s+/) : [];
    var out = [];
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      if (state.status && row[col.status] !== state.status) { continue; }
      if (state.organization !== "" && (row[col.organization] || "") !== state.organization) {
        continue;
      }
      var text = haystack[i];
      if (words.every(function (w) { return text.indexOf(w) !== -1; })) { out.push(row); }
    }
    if (state.key !== null) {
      var index = col[state.key];
      var sign = state.desc ? -1 : 1;
      var isNumber = numeric[state.key] === 1;
      out.sort(function (a, b) {
        var x = a[index], y = b[index];
        if (x === y) { return 0; }
        if (x === null || x === undefined) { return 1; }
        if (y === null || y === undefined) { return -1; }
        if (isNumber) { return (x - y) * sign; }
        return String(x).localeCompare(String(y)) * sign;
      });
    }
    return out;
  }

  function cell(tr, key, row) {
    var td = document.createElement("td");
    var value = row[col[key]];
    if (key === "status") {
      var badge = document.createElement("span");
      badge.className = "badge s-" + value;
      badge.textContent = value;
      td.appendChild(badge);
    } else if (key === "report") {
      var url = webUrl(row[col.reportUrl]);
      if (url) {
        var a = document.createElement("a");
        a.href = url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        a.textContent = "report";
        td.appendChild(a);
      }
    } else if (key === "durationSeconds" || key === "evaluationSeconds") {
      td.className = "num";
      td.textContent = seconds(value);
    } else if (numeric[key] === 1) {
      td.className = "num";
      td.textContent = value === null || value === undefined ? "" : String(value);
    } else {
      if (key === "reason") { td.className = "reason"; }
      td.textContent = value === null || value === undefined ? "" : String(value);
    }
    tr.appendChild(td);
  }

  function render() {
    var list = filtered();
    var pages = Math.max(1, Math.ceil(list.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var first = state.page * PAGE;
    var shown = list.slice(first, first + PAGE);
    var fragment = document.createDocumentFragment();
    shown.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-status", row[col.status]);
      keys.forEach(function (key) { cell(tr, key, row); });
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
    info.textContent = list.length === 0
      ? "No promotion matches (" + rows.length + " in all)"
      : "Showing " + (first + 1) + "\u2013" + (first + shown.length) + " of " + list.length +
        (list.length !== rows.length ? " matching (" + rows.length + " in all)" : "");
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
    Array.prototype.forEach.call(document.querySelectorAll(".card[data-status]"), function (c) {
      c.classList.toggle("active", c.getAttribute("data-status") === state.status);
    });
  }

  search.addEventListener("input", function () {
    state.query = search.value;
    state.page = 0;
    render();
  });
  statusFilter.addEventListener("change", function () {
    state.status = statusFilter.value;
    state.page = 0;
    render();
  });
  orgFilter.addEventListener("change", function () {
    state.organization = orgFilter.value;
    state.page = 0;
    render();
  });
  prev.addEventListener("click", function () { state.page -= 1; render(); });
  next.addEventListener("click", function () { state.page += 1; render(); });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    var key = th.getAttribute("data-key");
    if (!key || col[key] === undefined) { return; }
    th.addEventListener("click", function () {
      state.desc = state.key === key ? !state.desc : false;
      state.key = key;
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) {
        other.classList.remove("sorted", "desc");
      });
      th.classList.add("sorted");
      if (state.desc) { th.classList.add("desc"); }
      render();
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll(".card[data-status]"), function (c) {
    c.addEventListener("click", function () {
      var status = c.getAttribute("data-status");
      state.status = state.status === status ? "" : status;
      statusFilter.value = state.status;
      state.page = 0;
      render();
      document.getElementById("promotions").scrollIntoView();
    });
  });
  render();
})();

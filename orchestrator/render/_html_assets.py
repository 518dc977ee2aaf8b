"""The HTML report's inline stylesheet and script. They load nothing from anywhere: the page
must work offline, from a CI artifact or an email attachment."""

from __future__ import annotations

STATUS_COLOURS = {
    "COMPLETED": "#2e7d32",
    "FAILED": "#c62828",
    "ERROR": "#ef6c00",
    "SKIPPED": "#90a4ae",
    "TIMED_OUT": "#8e24aa",
    "CANCELLED": "#5d4037",
}

_STATUS_RULES = "\n".join(
    f".s-{status} {{ fill: {colour}; background: {colour}; }}\n"
    f".card.s-{status} {{ border-top-color: {colour}; background: var(--card); }}\n"
    f".badge.s-{status} {{ color: #fff; }}"
    for status, colour in STATUS_COLOURS.items()
)

CSS = (
    """
:root { --fg: #1c2430; --muted: #5f6b7a; --bg: #f6f7f9; --card: #fff; --line: #dde1e6;
        --accent: #1565c0; color-scheme: light dark; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e9ee; --muted: #9aa5b1; --bg: #14181d; --card: #1d232a; --line: #323a44;
          --accent: #64b5f6; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
       sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 10px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
.meta { color: var(--muted); margin: 0; }
.meta span + span::before { content: " · "; }
section { max-width: 1400px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { min-width: 120px; padding: 10px 14px; border-radius: 6px; background: var(--card);
        border: 1px solid var(--line); border-top: 4px solid var(--muted); cursor: default; }
.card[data-status] { cursor: pointer; }
.card[data-status].active { outline: 2px solid var(--accent); }
.card .n { display: block; font-size: 24px; font-weight: 600; }
.card .label { color: var(--muted); }
.band-critical { border-top-color: #b71c1c; } .band-severe { border-top-color: #e65100; }
.band-moderate { border-top-color: #f9a825; } .band-low { border-top-color: #1e88e5; }
.chart { width: 100%; height: auto; background: var(--card); border: 1px solid var(--line);
         border-radius: 6px; }
.chart text { font-size: 11px; fill: var(--muted); }
.chart .axis { stroke: var(--muted); stroke-width: 1; }
.chart .hbar, .chart .area { fill: var(--accent); opacity: 0.8; }
.chart rect:hover { opacity: 0.7; }
table { border-collapse: collapse; width: 100%; background: var(--card);
        border: 1px solid var(--line); }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { position: sticky; top: 0; background: var(--card); white-space: nowrap; }
th[data-key] { cursor: pointer; user-select: none; }
th.sorted::after { content: " \\25B2"; } th.sorted.desc::after { content: " \\25BC"; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.reason { min-width: 220px; max-width: 420px; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
#promotions-table td { white-space: nowrap; }
#promotions-table td.reason { white-space: normal; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px;
         font-weight: 600; }
.stack { display: flex; height: 10px; min-width: 160px; border-radius: 3px; overflow: hidden;
         background: var(--line); }
.stack span { display: block; height: 100%; }
.controls { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 8px; }
.controls input[type=search] { flex: 1 1 320px; padding: 6px 8px; font: inherit;
                               border: 1px solid var(--line); border-radius: 4px;
                               background: var(--card); color: var(--fg); }
.controls select, .controls button { padding: 5px 8px; font: inherit; border-radius: 4px;
                                     border: 1px solid var(--line); background: var(--card);
                                     color: var(--fg); }
.pager { display: flex; gap: 8px; align-items: center; margin-top: 8px; color: var(--muted); }
.empty, .more { color: var(--muted); }
a { color: var(--accent); }
.legend { display: flex; flex-wrap: wrap; gap: 12px; margin: 6px 0; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px;
            border-radius: 2px; }
"""
    + _STATUS_RULES
)

# Rows are built from the embedded JSON with textContent, never innerHTML, and only a page of
# them is in the DOM at a time, so 20,000 results stay quick and nothing in them can run.
JS = r"""
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
"""

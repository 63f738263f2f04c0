/* zoo report: the catalog's filter and sort, and the trade-off charts. No dependency but the
   bundled plotly.min.js (charts page only). State lives in the address hash, e.g.
   index.html#task=object-detection&sort=measured&dir=desc, so a view can be linked (and a headless
   browser, which cannot click, can be asked for one). */
"use strict";

function zooParams() { return new URLSearchParams(window.location.hash.replace(/^#/, "")); }

function zooSetHash(params) {
  for (const [k, v] of [...params.entries()]) { if (!v) params.delete(k); }
  const text = params.toString();
  history.replaceState(null, "", text ? "#" + text : window.location.pathname);
}

function zooMark() { document.documentElement.dataset.loadMs = performance.now().toFixed(1); }

function zooCatalog() {
  const form = document.getElementById("filters");
  const table = document.getElementById("catalog");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const count = document.getElementById("count");
  const keys = Array.from(form.querySelectorAll("select")).map((s) => s.name);
  const numeric = new Set(["reported", "measured"]);

  function apply() {
    const p = zooParams();
    const q = (p.get("q") || "").toLowerCase();
    form.elements.q.value = p.get("q") || "";
    for (const key of keys) form.elements[key].value = p.get(key) || "";
    let shown = 0;
    for (const row of rows) {
      let ok = !q || row.dataset.name.toLowerCase().includes(q) || row.dataset.title.toLowerCase().includes(q);
      for (const key of keys) {
        const want = p.get(key);
        if (ok && want && row.dataset[key] !== want) ok = false;
      }
      row.hidden = !ok;
      if (ok) shown += 1;
    }
    count.textContent = shown + " of " + rows.length + " models";
    count.dataset.shown = String(shown);
    const sort = p.get("sort");
    const dir = p.get("dir") === "desc" ? -1 : 1;
    for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
    if (sort) {
      const th = table.tHead.querySelector('th[data-sort="' + CSS.escape(sort) + '"]');
      if (th) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      const value = (row) => row.dataset[sort] || "";
      const sorted = rows.slice().sort((a, b) => {
        const x = value(a), y = value(b);
        if (numeric.has(sort)) {  // empty cells last, whatever the direction
          if (x === "" || y === "") return (x === "") - (y === "");
          return dir * (parseFloat(x) - parseFloat(y));
        }
        return dir * x.localeCompare(y);
      });
      for (const row of sorted) body.appendChild(row);
    }
  }

  form.addEventListener("input", () => {
    const p = zooParams();
    p.set("q", form.elements.q.value);
    for (const key of keys) p.set(key, form.elements[key].value);
    zooSetHash(p);
    apply();
  });
  document.getElementById("reset").addEventListener("click", () => { zooSetHash(new URLSearchParams()); apply(); });
  for (const th of table.tHead.querySelectorAll("th[data-sort]")) {
    th.addEventListener("click", () => {
      const p = zooParams();
      const same = p.get("sort") === th.dataset.sort;
      p.set("sort", th.dataset.sort);
      p.set("dir", same && p.get("dir") !== "desc" ? "desc" : "asc");
      zooSetHash(p);
      apply();
    });
  }
  window.addEventListener("hashchange", apply);
  apply();
  zooMark();
}

function zooCharts() {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const form = document.getElementById("chart-controls");
  const note = document.getElementById("chart-note");
  const el = document.getElementById("chart");

  function draw() {
    const p = zooParams();
    for (const key of ["task", "x", "source"]) {
      const want = p.get(key);
      if (want && Array.from(form.elements[key].options).some((o) => o.value === want)) form.elements[key].value = want;
    }
    const task = data.charts[form.elements.task.value];
    if (!task) { note.textContent = "No task with figures to chart."; zooMark(); return; }
    const axis = task.axes[form.elements.x.value];
    const set = axis[form.elements.source.value];
    const traces = [];
    const byPaper = {};
    for (const pt of set.points) (byPaper[pt.paper] = byPaper[pt.paper] || []).push(pt);
    for (const paper of Object.keys(byPaper).sort()) {
      const pts = byPaper[paper];
      const style = data.papers[paper] || { color: "#444", symbol: "circle", title: paper };
      traces.push({
        type: "scatter", mode: "markers", name: paper, x: pts.map((q) => q.x), y: pts.map((q) => q.y),
        text: pts.map((q) => q.model), customdata: pts.map((q) => [style.title, q.hardware || "", q.url]),
        marker: { color: style.color, symbol: style.symbol, size: 10, line: { width: 1, color: "#222" } },
        hovertemplate: "<b>%{text}</b><br>%{customdata[0]}<br>" + axis.label + ": %{x}<br>" + task.y_label +
          ": %{y}<br>%{customdata[1]}<extra></extra>",
      });
    }
    const front = set.points.filter((q) => set.front.includes(q.model)).sort((a, b) => a.x - b.x);
    if (front.length > 1) {
      traces.push({ type: "scatter", mode: "lines", name: "Pareto front", x: front.map((q) => q.x),
        y: front.map((q) => q.y), line: { dash: "dash", color: "#111", width: 1 }, hoverinfo: "skip" });
    }
    const xs = set.points.map((q) => q.x).filter((v) => v > 0);
    const log = xs.length > 1 && Math.max(...xs) > 20 * Math.min(...xs);
    const hardware = [...new Set(set.points.map((q) => q.hardware).filter(Boolean))];
    note.textContent = set.points.length + " point(s), " + front.length + " on the Pareto front" +
      (hardware.length ? "; hardware: " + hardware.join(", ") : "") +
      (set.points.length ? "" : ": nothing measured yet for this pair (zoo eval + zoo bench)");
    el.dataset.points = String(set.points.length);
    const layout = {
      margin: { t: 30, r: 10 }, hovermode: "closest", legend: { font: { size: 11 } },
      xaxis: { title: { text: axis.label }, type: log ? "log" : "linear" },
      yaxis: { title: { text: task.y_label } },
    };
    Plotly.react(el, traces, layout, { responsive: true, displaylogo: false }).then(zooMark);
  }

  form.addEventListener("input", () => {
    const p = zooParams();
    for (const key of ["task", "x", "source"]) p.set(key, form.elements[key].value);
    zooSetHash(p);
    draw();
  });
  window.addEventListener("hashchange", draw);
  draw();
  if (el.on) el.on("plotly_click", (ev) => {
    const url = ev.points[0] && ev.points[0].customdata && ev.points[0].customdata[2];
    if (url) window.location.href = url;
  });
}

if (document.body && !["catalog", "charts"].includes(document.body.dataset.page)) zooMark();

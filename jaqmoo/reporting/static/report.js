/* jaqmoo report: renders the JSON payload in #jaqmoo-data with plotly (embedded, offline). */
(function () {
  "use strict";
  performance.mark("jaqmoo-start");
  var DATA = JSON.parse(document.getElementById("jaqmoo-data").textContent);
  DATA.runs.forEach(function (run) { if (run.dominated) unpack(run.dominated); });
  performance.mark("jaqmoo-parsed");

  /** Dominated points come as base64 little-endian float32 columns: decode to Float32Arrays. */
  function unpack(cols) {
    Object.keys(cols).forEach(function (k) {
      var bin = atob(cols[k]), bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      cols[k] = new Float32Array(bytes.buffer);
    });
  }
  var PLOT_CONFIG = { displaylogo: false, responsive: true };
  var SMALL = { displayModeBar: false };
  var COLOR_AT_LOAD_MAX = 10000;
  var state = { run: null, pinned: null, current: null, sortCol: null, sortDir: 1 };
  var pending = [];

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
    return Number(v.toPrecision(5)).toString();
  }
  function label(run, col) {
    if (run.labels[col]) return run.labels[col];
    return col;
  }
  function fail(err) {
    var box = $("fatal");
    box.hidden = false;
    box.textContent = "report error: " + (err && err.message ? err.message : err);
    throw err;
  }
  function plot(div, traces, layout, config) {
    var p = Plotly.newPlot(div, traces, layout, Object.assign({}, PLOT_CONFIG, config || {}));
    pending.push(p);
    return p;
  }

  /* ------------------------------------------------------------------ projections */
  function projectionPairs(objectives) {
    if (objectives.length === 1) return [[objectives[0], objectives[0]]];
    var out = [];
    for (var i = 0; i < objectives.length; i++) {
      for (var j = i + 1; j < objectives.length; j++) {
        var a = objectives[i], b = objectives[j];
        out.push(a === "accuracy" ? [b, a] : [a, b]);
      }
    }
    return out;
  }
  function positive() {
    for (var a = 0; a < arguments.length; a++) {
      var values = arguments[a] || [];
      for (var i = 0; i < values.length; i++) if (values[i] !== null && values[i] <= 0) return false;
    }
    return true;
  }
  function hoverTexts(run, cols, n, prefix) {
    var keys = ["accuracy", "accuracy_rescored", "energy_pj", "latency_s", "memory_bits", "area_mm2", "gen"]
      .filter(function (k) { return cols[k]; });
    var hw = run.numeric.filter(function (k) { return k.indexOf("hw.") === 0 && cols[k]; });
    var out = new Array(n);
    for (var i = 0; i < n; i++) {
      var parts = [prefix ? prefix(i) : ""];
      keys.forEach(function (k) { parts.push(k + ": " + fmt(cols[k][i])); });
      hw.forEach(function (k) { parts.push(k + ": " + fmt(cols[k][i])); });
      out[i] = parts.filter(Boolean).join("<br>");
    }
    return out;
  }
  function count(cols) {
    var k = Object.keys(cols).filter(function (c) { return c !== "labels"; })[0];
    return k ? cols[k].length : 0;
  }

  function drawProjections(run) {
    var pairs = projectionPairs(run.objectives);
    var ncol = Math.min(pairs.length, 3), nrow = Math.ceil(pairs.length / ncol);
    var colorBy = $("color-by").value;
    var showDom = $("show-dominated").checked;
    var nDom = count(run.dominated), nFront = count(run.front), nBase = run.baselines.labels.length;
    var domHover = hoverTexts(run, run.dominated, nDom, function () { return "<b>dominated</b>"; });
    var frontHover = hoverTexts(run, run.front, nFront, function (i) { return "<b>front point " + i + "</b>"; });
    var baseHover = hoverTexts(run, run.baselines, nBase, function (i) { return "<b>" + run.baselines.labels[i] + "</b>"; });
    var traces = [], layout = {
      grid: { rows: nrow, columns: ncol, pattern: "independent" }, height: 330 * nrow + 40,
      margin: { t: 40, l: 60, r: 20, b: 50 }, showlegend: true, legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom" },
      hovermode: "closest", uirevision: run.name
    };
    var big = nDom > 3000;
    pairs.forEach(function (p, k) {
      var xa = k === 0 ? "x" : "x" + (k + 1), ya = k === 0 ? "y" : "y" + (k + 1);
      var cx = run.metric_of[p[0]], cy = run.metric_of[p[1]];
      var first = k === 0;
      traces.push({
        type: big ? "scattergl" : "scatter", mode: "markers", name: "dominated (" + nDom + ")", legendgroup: "dom",
        showlegend: first, x: run.dominated[cx], y: run.dominated[cy], xaxis: xa, yaxis: ya,
        visible: showDom ? true : "legendonly", hovertext: domHover, hoverinfo: "text",
        marker: { size: 4, color: colorBy ? run.dominated[colorBy] : "#b0b0b0", colorscale: "Viridis",
                  cmin: colorRange(run, colorBy)[0], cmax: colorRange(run, colorBy)[1], opacity: 0.45 },
        meta: { kind: "dominated" }
      });
      traces.push({
        type: "scatter", mode: "markers", name: "Pareto front (" + nFront + ")", legendgroup: "front",
        showlegend: first, x: run.front[cx], y: run.front[cy], xaxis: xa, yaxis: ya,
        hovertext: frontHover, hoverinfo: "text",
        marker: { size: 9, color: colorBy ? run.front[colorBy] : "#1f77b4", colorscale: "Viridis",
                  cmin: colorRange(run, colorBy)[0], cmax: colorRange(run, colorBy)[1],
                  showscale: !!colorBy && first, colorbar: { title: { text: colorBy }, len: 0.6 },
                  line: { width: 1, color: "#222" } },
        meta: { kind: "front" }
      });
      if (nBase) {
        traces.push({
          type: "scatter", mode: "markers+text", name: "uniform-bit baselines", legendgroup: "base",
          showlegend: first, x: run.baselines[cx], y: run.baselines[cy], xaxis: xa, yaxis: ya,
          text: run.baselines.labels.map(function (s) { return s.replace("uniform ", ""); }), textposition: "top center",
          textfont: { color: "#d62728", size: 10 }, hovertext: baseHover, hoverinfo: "text",
          marker: { symbol: "star", size: 15, color: "#d62728", line: { width: 1, color: "#000" } },
          meta: { kind: "baseline" }
        });
      }
      layout["xaxis" + (k === 0 ? "" : k + 1)] = { title: { text: label(run, cx) },
        type: p[0] !== "accuracy" && positive(run.front[cx], run.dominated[cx]) ? "log" : "linear" };
      layout["yaxis" + (k === 0 ? "" : k + 1)] = { title: { text: label(run, cy) } };
    });
    var div = $("projections");
    return plot(div, traces, layout).then(function () { bindClicks(div); });
  }

  function colorRange(run, col) {
    if (!col) return [undefined, undefined];
    var lo = Infinity, hi = -Infinity;
    [run.front[col], run.dominated[col], run.baselines[col]].forEach(function (arr) {
      arr = arr || [];
      for (var i = 0; i < arr.length; i++) { var v = arr[i]; if (v !== null && !Number.isNaN(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } }
    });
    return lo <= hi ? [lo, hi] : [undefined, undefined];
  }

  /* WebGL 3-D scenes are slow to set up without a GPU (seconds in a software renderer), so the
     3-D view is drawn when its box is opened, not at page load. */
  function draw3d(run) {
    var div = $("view3d"), box = $("view3d-box");
    box.hidden = run.objectives.length < 3;
    if (box.hidden || !box.open) { Plotly.purge(div); return null; }
    var ax = [$("x3d").value, $("y3d").value, $("z3d").value].map(function (o) { return run.metric_of[o]; });
    var colorBy = $("color-by").value, range = colorRange(run, colorBy);
    var nFront = count(run.front);
    var traces = [{
      type: "scatter3d", mode: "markers", name: "dominated", x: run.dominated[ax[0]], y: run.dominated[ax[1]],
      z: run.dominated[ax[2]], visible: $("show-dominated").checked ? true : "legendonly", hoverinfo: "x+y+z",
      marker: { size: 2, color: colorBy ? run.dominated[colorBy] : "#b0b0b0", colorscale: "Viridis",
                cmin: range[0], cmax: range[1], opacity: 0.4 }, meta: { kind: "dominated" }
    }, {
      type: "scatter3d", mode: "markers", name: "Pareto front", x: run.front[ax[0]], y: run.front[ax[1]],
      z: run.front[ax[2]], hovertext: hoverTexts(run, run.front, nFront, function (i) { return "front point " + i; }),
      hoverinfo: "text", marker: { size: 5, color: colorBy ? run.front[colorBy] : "#1f77b4", colorscale: "Viridis",
        cmin: range[0], cmax: range[1], line: { width: 1, color: "#222" } }, meta: { kind: "front" }
    }];
    if (run.baselines.labels.length) {
      traces.push({ type: "scatter3d", mode: "markers+text", name: "uniform-bit baselines",
        x: run.baselines[ax[0]], y: run.baselines[ax[1]], z: run.baselines[ax[2]], text: run.baselines.labels,
        marker: { symbol: "diamond", size: 6, color: "#d62728" }, meta: { kind: "baseline" } });
    }
    var layout = { height: 520, margin: { t: 10, l: 0, r: 0, b: 0 }, uirevision: run.name,
      scene: { xaxis: { title: { text: label(run, ax[0]) } }, yaxis: { title: { text: label(run, ax[1]) } },
               zaxis: { title: { text: label(run, ax[2]) } } } };
    return plot(div, traces, layout).then(function () { bindClicks(div); });
  }

  /* ------------------------------------------------------------------ details, pinning */
  /* Plotly.newPlot drops a div's listeners, so every (re)draw binds its own. */
  function bindClicks(div) {
    div.on("plotly_click", function (ev) {
      if (!ev || !ev.points || !ev.points.length) return;
      var p = ev.points[0], kind = p.data.meta && p.data.meta.kind;
      select({ kind: kind, index: p.pointIndex });
    });
  }

  function sameRef(a, b) { return a && b && a.kind === b.kind && a.index === b.index; }

  /** First click shows a point; clicking it again pins it; later clicks fill the second panel. */
  function select(ref) {
    if (sameRef(ref, state.pinned)) return;
    if (sameRef(ref, state.current)) { state.pinned = ref; state.current = null; }
    else state.current = ref;
    renderDetails();
  }

  function renderDetails() {
    var box = $("details");
    box.innerHTML = "";
    [["pinned", state.pinned], ["current", state.current]].forEach(function (pc) {
      if (pc[1]) box.appendChild(detailPanel(state.run, pc[1], pc[0] === "pinned"));
    });
    box.querySelectorAll(".detail-plot").forEach(function (d) { d.__draw(); });
  }

  function pointColumns(run, ref) {
    var src = ref.kind === "front" ? run.front : ref.kind === "baseline" ? run.baselines : run.dominated;
    var out = {};
    run.numeric.forEach(function (c) { if (src[c]) out[c] = src[c][ref.index]; });
    return out;
  }

  function detailPanel(run, ref, pinned) {
    var panel = el("div", { "class": "detail" + (pinned ? " pinned" : ""), "data-kind": ref.kind, "data-index": ref.index });
    var head = el("h3", {}, (pinned ? "pinned: " : "") + (ref.kind === "front" ? "front point " + ref.index
      : ref.kind === "baseline" ? run.baselines.labels[ref.index] : "dominated point"));
    panel.appendChild(head);
    var btn = el("button", { type: "button", "class": pinned ? "unpin" : "pin" }, pinned ? "unpin" : "pin for comparison");
    btn.onclick = function () {
      if (pinned) { state.pinned = null; } else { state.pinned = ref; state.current = null; }
      renderDetails();
    };
    panel.appendChild(btn);
    var cols = pointColumns(run, ref);
    var mt = el("table", { "class": "metrics" });
    Object.keys(cols).forEach(function (c) {
      if (c.indexOf("energy_pj.") === 0) return;
      var tr = el("tr"); tr.appendChild(el("th", {}, c)); tr.appendChild(el("td", { "data-col": c }, fmt(cols[c])));
      mt.appendChild(tr);
    });
    panel.appendChild(mt);
    var nFront = count(run.front);
    var det = ref.kind === "front" ? run.details[ref.index] : ref.kind === "baseline" ? run.details[nFront + ref.index] : null;
    if (!det) {
      panel.appendChild(el("p", { "class": "why" }, "Per-layer details are kept for the front and the baselines only."));
      return panel;
    }
    var check = det.check || {};
    panel.appendChild(el("p", { "class": check.ok ? "meta" : "why" }, check.ok
      ? "Per-layer energy recomputed with jaqmoo.cost; its total matches the stored " + fmt(check.energy_pj_stored) + " pJ."
      : "Per-layer energy not available: " + (check.why || "unknown") + " (stored totals shown)."));
    if (det.architecture) panel.appendChild(el("p", { "class": "meta arch" }, architectureText(det.architecture)));
    panel.appendChild(bitsTable(run, det));
    panel.appendChild(plotBox(function (div) { bitsChart(div, run, det); }));
    panel.appendChild(plotBox(function (div) { energyLayersChart(div, det); }));
    panel.appendChild(plotBox(function (div) { energyTensorChart(div, det); }));
    var hw = el("p", { "class": "meta" }, "hardware: " + Object.keys(det.hardware).map(function (k) {
      return k + "=" + fmt(det.hardware[k]); }).join(", "));
    panel.appendChild(hw);
    var maps = el("details"); maps.appendChild(el("summary", {}, "mappings (loop nests, outermost level first)"));
    det.layers.forEach(function (l) {
      maps.appendChild(el("div", { "class": "meta" }, l.name + ": " + l.mapping));
      maps.appendChild(el("pre", { "class": "nest" }, (l.loop_nest || []).join("\n")));
    });
    panel.appendChild(maps);
    return panel;
  }

  // an architecture search's point: depth per stage, expand and kernel per block (0: not run)
  function architectureText(a) {
    var parts = ["architecture: depth " + (a.depth || []).join("-"), "expand " + (a.expand || []).join(","),
                 "kernel " + (a.kernel || []).join(",")];
    if (a.macs != null) parts.push(fmt(a.macs) + " MACs");
    if (a.params != null) parts.push(fmt(a.params) + " parameters");
    return parts.join(" | ");
  }

  function bitsTable(run, det) {
    var t = el("table", { "class": "bits-table" });
    var hr = el("tr");
    ["layer", "kind", "shape", "w bits", "a bits"].forEach(function (h) { hr.appendChild(el("th", {}, h)); });
    t.appendChild(hr);
    det.layers.forEach(function (l) {
      var tr = el("tr", { "data-layer": l.name });
      tr.appendChild(el("td", { "class": "name" }, l.name));
      tr.appendChild(el("td", { "class": "name" }, l.kind || ""));
      tr.appendChild(el("td", { "class": "shape" }, l.shape || ""));
      tr.appendChild(el("td", { "class": "w" }, fmt(l.w)));
      tr.appendChild(el("td", { "class": "a" }, fmt(l.a)));
      t.appendChild(tr);
    });
    var wrap = el("details", { open: "" }); wrap.appendChild(el("summary", {}, "per-layer bits and network shape"));
    wrap.appendChild(t);
    return wrap;
  }

  function plotBox(drawer) {
    var d = el("div", { "class": "detail-plot" });
    d.__draw = function () { drawer(d); };
    return d;
  }

  function bitsChart(div, run, det) {
    var names = det.layers.map(function (l) { return l.name; });
    var shapes = det.layers.map(function (l) { return l.name + (l.shape ? "<br>" + l.kind + " " + l.shape : ""); });
    plot(div, [
      { type: "bar", name: "weight bits", x: names, y: det.layers.map(function (l) { return l.w; }), hovertext: shapes },
      { type: "bar", name: "activation bits", x: names, y: det.layers.map(function (l) { return l.a; }), hovertext: shapes }
    ], { barmode: "group", height: 260, margin: { t: 30, b: 80, l: 40, r: 10 }, title: { text: "bits per layer", font: { size: 13 } },
         yaxis: { dtick: 1 } }, SMALL);
  }

  function energyLayersChart(div, det) {
    var withLevels = det.layers.filter(function (l) { return l.energy_by_level; });
    if (!withLevels.length) {
      var lv = Object.keys(det.energy_by_level);
      plot(div, [{ type: "bar", x: lv, y: lv.map(function (k) { return det.energy_by_level[k]; }), name: "stored" }],
        { height: 240, margin: { t: 30, b: 60, l: 60, r: 10 }, title: { text: "energy per level (pJ, whole network)", font: { size: 13 } } }, SMALL);
      return;
    }
    var levels = Object.keys(withLevels[0].energy_by_level);
    var names = withLevels.map(function (l) { return l.name; });
    plot(div, levels.map(function (lv) {
      return { type: "bar", name: lv, x: names, y: withLevels.map(function (l) { return l.energy_by_level[lv]; }) };
    }), { barmode: "stack", height: 280, margin: { t: 30, b: 80, l: 60, r: 10 },
          title: { text: "energy per layer and memory level (pJ)", font: { size: 13 } } }, SMALL);
  }

  function energyTensorChart(div, det) {
    var withT = det.layers.filter(function (l) { return l.energy_by_tensor; });
    if (!withT.length) { div.hidden = true; return; }
    var levels = Object.keys(withT[0].energy_by_level);
    var tensors = ["Weights", "Inputs", "Outputs"];
    function total(lv, fn) { return withT.reduce(function (s, l) { return s + fn(l, lv); }, 0); }
    var traces = tensors.map(function (t) {
      return { type: "bar", name: t, x: levels, y: levels.map(function (lv) {
        return total(lv, function (l, v) { return (l.energy_by_tensor[v] || {})[t] || 0; }); }) };
    });
    traces.push({ type: "bar", name: "leakage / compute", x: levels, y: levels.map(function (lv) {
      return total(lv, function (l, v) {
        var acc = tensors.reduce(function (s, t) { return s + ((l.energy_by_tensor[v] || {})[t] || 0); }, 0);
        return Math.max((l.energy_by_level[v] || 0) - acc, 0);
      });
    }) });
    plot(div, traces, { barmode: "stack", height: 280, margin: { t: 30, b: 80, l: 60, r: 10 },
                        title: { text: "energy per memory level and tensor (pJ, all layers)", font: { size: 13 } } }, SMALL);
  }

  /* ------------------------------------------------------------------ hypervolume, table */
  function drawHypervolume(run) {
    var h = run.history, div = $("hypervolume");
    if (!h.generation || !h.generation.length) { div.textContent = "no generation completed yet"; return null; }
    return plot(div, [{ type: "scatter", mode: "lines+markers", x: h.generation, y: h.hypervolume, name: "hypervolume" }],
      { height: 280, margin: { t: 10, l: 60, r: 10, b: 40 }, xaxis: { title: { text: "generation" } },
        yaxis: { title: { text: "hypervolume (this run's scale)" } } });
  }

  function drawTable(run) {
    var t = $("front-table"), cols = run.front_table.columns, rows = run.front_table.rows;
    var n = cols.length ? rows[cols[0]].length : 0;
    var order = [];
    for (var i = 0; i < n; i++) order.push(i);
    if (state.sortCol) {
      var v = rows[state.sortCol];
      order.sort(function (a, b) {
        var x = v[a], y = v[b];
        if (x === y) return a - b;
        if (x === null) return 1;
        if (y === null) return -1;
        return (x < y ? -1 : 1) * state.sortDir;
      });
    }
    t.innerHTML = "";
    var hr = el("tr");
    hr.appendChild(el("th", {}, "#"));
    cols.forEach(function (c) {
      var th = el("th", { "data-col": c, "class": state.sortCol === c ? (state.sortDir > 0 ? "sorted-asc" : "sorted-desc") : "" }, c);
      th.onclick = function () {
        state.sortDir = state.sortCol === c ? -state.sortDir : 1;
        state.sortCol = c;
        drawTable(run);
      };
      hr.appendChild(th);
    });
    t.appendChild(hr);
    order.forEach(function (i) {
      var tr = el("tr", { "data-row": i });
      tr.appendChild(el("td", {}, String(i)));
      cols.forEach(function (c) { tr.appendChild(el("td", {}, fmt(rows[c][i]))); });
      tr.onclick = function () { select({ kind: "front", index: i }); };
      t.appendChild(tr);
    });
  }

  function download(run) {
    var blob = new Blob([run.front_csv], { type: "text/csv" });
    var a = el("a", { href: URL.createObjectURL(blob), download: run.name.replace(/[^\w.-]+/g, "_") + "-front.csv" });
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  /* ------------------------------------------------------------------ run view */
  function fillSelect(sel, values, chosen, labels) {
    sel.innerHTML = "";
    values.forEach(function (v, i) {
      var o = el("option", { value: v }, labels ? labels[i] : v);
      if (v === chosen) o.selected = true;
      sel.appendChild(o);
    });
  }

  function showRun(run) {
    state.run = run; state.pinned = null; state.current = null; state.sortCol = null;
    $("run-heading").textContent = "Pareto front: " + run.name;
    var m = run.meta, bits = [];
    Object.keys(m).forEach(function (k) { if (m[k] !== null && m[k] !== undefined) bits.push(k + ": " + m[k]); });
    $("run-meta").textContent = bits.join(" · ");
    var notes = $("notes"); notes.innerHTML = "";
    (run.notes || []).forEach(function (n) { notes.appendChild(el("p", {}, n)); });
    $("counts").textContent = run.n_evaluations + " evaluations, " + run.n_valid + " valid, " + count(run.front) + " on the front";
    var colorCols = [""].concat(run.numeric);
    // colouring tens of thousands of WebGL markers costs seconds without a GPU: big runs
    // start uncoloured (any column can still be chosen)
    var colorDefault = "mean_w_bits" in run.front && count(run.dominated) <= COLOR_AT_LOAD_MAX ? "mean_w_bits" : "";
    fillSelect($("color-by"), colorCols, colorDefault, colorCols.map(function (c) { return c || "(none)"; }));
    var objs = run.objectives;
    fillSelect($("x3d"), objs, objs[0]); fillSelect($("y3d"), objs, objs[1]); fillSelect($("z3d"), objs, objs[2]);
    $("details").innerHTML = "";
    ["projections", "view3d", "hypervolume"].forEach(function (id) { Plotly.purge($(id)); });
    $("download-csv").onclick = function () { download(run); };
    drawProjections(run); performance.mark("jaqmoo-projections");
    draw3d(run); performance.mark("jaqmoo-3d");
    drawHypervolume(run); drawTable(run); performance.mark("jaqmoo-table");
  }

  /* ------------------------------------------------------------------ sweep grid */
  function distinct(runs, axis) {
    var seen = [];
    runs.forEach(function (r) { var v = String(r.axes[axis]); if (seen.indexOf(v) < 0) seen.push(v); });
    return seen;
  }

  function drawSweep() {
    var runs = DATA.runs, grid = $("sweep-grid");
    var rowAxis = $("sweep-rows").value, colAxis = $("sweep-cols").value;
    var xo = $("sweep-x").value, yo = $("sweep-y").value;
    var rows = rowAxis ? distinct(runs, rowAxis) : [""], cols = colAxis ? distinct(runs, colAxis) : [""];
    grid.querySelectorAll(".js-plotly-plot").forEach(function (d) { Plotly.purge(d); });
    grid.innerHTML = "";
    grid.style.gridTemplateColumns = (rowAxis ? "8em " : "") + cols.map(function () { return "minmax(0, 1fr)"; }).join(" ");
    if (colAxis) {
      if (rowAxis) grid.appendChild(el("div"));
      cols.forEach(function (c) { grid.appendChild(el("div", { "class": "axis-head" }, colAxis + " = " + c)); });
    }
    rows.forEach(function (rv) {
      if (rowAxis) grid.appendChild(el("div", { "class": "axis-head" }, rowAxis + " = " + rv));
      cols.forEach(function (cv) {
        var cell = el("div", { "class": "sweep-cell" });
        runs.forEach(function (run, i) {
          if (rowAxis && String(run.axes[rowAxis]) !== rv) return;
          if (colAxis && String(run.axes[colAxis]) !== cv) return;
          cell.appendChild(sweepPanel(run, i, xo, yo, rowAxis, colAxis));
        });
        grid.appendChild(cell);
      });
    });
  }

  function sweepPanel(run, i, xo, yo, rowAxis, colAxis) {
    var panel = el("div", { "class": "sweep-panel", "data-run": run.name });
    var other = Object.keys(run.axes).filter(function (k) { return k !== rowAxis && k !== colAxis; })
      .map(function (k) { return k + "=" + run.axes[k]; }).join(" ");
    var hv = typeof run.sweep_hypervolume === "number" ? " · HV " + run.sweep_hypervolume.toFixed(3) : "";
    var title = el("div", { "class": "title", title: "show this run below" }, run.name + (other ? " (" + other + ")" : "") + hv);
    panel.appendChild(title);
    if (run.error) { panel.appendChild(el("div", { "class": "error" }, run.error)); return panel; }
    title.onclick = function () { $("run-select").value = String(i); showRun(run); };
    var div = el("div", { "class": "sweep-plot" });
    panel.appendChild(div);
    if (!run.metric_of[xo] || !run.metric_of[yo]) { div.textContent = "this run has no " + xo + " / " + yo + " objective"; return panel; }
    var cx = run.metric_of[xo], cy = run.metric_of[yo];
    var dom = run.dominated, step = Math.max(1, Math.ceil(count(dom) / 600)), dx = [], dy = [];
    for (var k = 0; k < count(dom); k += step) { dx.push(dom[cx][k]); dy.push(dom[cy][k]); }
    var traces = [
      { type: "scatter", mode: "markers", x: dx, y: dy, marker: { size: 3, color: "#c0c0c0" }, name: "dominated", hoverinfo: "skip" },
      { type: "scatter", mode: "markers", x: run.front[cx], y: run.front[cy], marker: { size: 6, color: "#1f77b4" }, name: "front" }
    ];
    if (run.baselines.labels.length) {
      traces.push({ type: "scatter", mode: "markers", x: run.baselines[cx], y: run.baselines[cy], text: run.baselines.labels,
        marker: { symbol: "star", size: 11, color: "#d62728" }, name: "baselines" });
    }
    plot(div, traces, { height: 230, showlegend: false, margin: { t: 5, l: 50, r: 5, b: 35 },
      xaxis: { title: { text: label(run, cx) }, type: xo !== "accuracy" && positive(run.front[cx]) ? "log" : "linear" },
      yaxis: { title: { text: label(run, cy) } } });
    return panel;
  }

  function setupSweep() {
    $("sweep-section").hidden = false;
    var ok = DATA.runs.filter(function (r) { return !r.error; }).length;
    $("sweep-meta").hidden = false;
    $("sweep-meta").textContent = DATA.runs.length + " runs (" + ok + " with results) over " +
      ((DATA.axes || []).join(" x ") || "no axis") + "; each run's own settings are shown above its front below.";
    var axes = DATA.axes || [];
    fillSelect($("sweep-rows"), [""].concat(axes), DATA.grid.rows || "", ["(none)"].concat(axes));
    fillSelect($("sweep-cols"), [""].concat(axes), DATA.grid.cols || "", ["(none)"].concat(axes));
    var withData = DATA.runs.filter(function (r) { return !r.error; });
    var objs = withData.length ? withData[0].objectives : ["accuracy", "energy"];
    var pairs = projectionPairs(objs);
    fillSelect($("sweep-x"), objs, pairs[0][0]); fillSelect($("sweep-y"), objs, pairs[0][1]);
    ["sweep-rows", "sweep-cols", "sweep-x", "sweep-y"].forEach(function (id) { $(id).onchange = drawSweep; });
    drawSweep();
  }

  /* ------------------------------------------------------------------ start */
  function start() {
    $("title").textContent = DATA.title;
    document.title = DATA.title;
    var runs = DATA.runs.filter(function (r) { return !r.error; });
    if (DATA.kind === "sweep") setupSweep();
    if (!runs.length) { $("run-section").hidden = true; return; }
    if (DATA.runs.length > 1) {
      $("run-picker").hidden = false;
      fillSelect($("run-select"), DATA.runs.map(function (r, i) { return String(i); }).filter(function (i) { return !DATA.runs[i].error; }),
        String(DATA.runs.indexOf(runs[0])), runs.map(function (r) { return r.name; }));
      $("run-select").onchange = function () { showRun(DATA.runs[Number(this.value)]); };
    }
    $("color-by").onchange = function () { drawProjections(state.run); draw3d(state.run); };
    $("show-dominated").onchange = function () {
      var vis = this.checked ? true : "legendonly";
      ["projections", "view3d"].forEach(function (id) {
        var gd = $(id);
        if (!gd.data) return;
        var idx = gd.data.map(function (t, i) { return t.meta && t.meta.kind === "dominated" ? i : -1; })
          .filter(function (i) { return i >= 0; });
        Plotly.restyle(gd, { visible: vis }, idx);
      });
    };
    ["x3d", "y3d", "z3d"].forEach(function (id) { $(id).onchange = function () { draw3d(state.run); }; });
    $("view3d-box").addEventListener("toggle", function () { draw3d(state.run); });
    showRun(runs[0]);
  }

  /** Count the front markers actually drawn (SVG nodes) in the first projection. */
  function drawnFrontPoints() {
    var gd = $("projections");
    var i = gd._fullData.findIndex(function (t) { return t.meta && t.meta.kind === "front" && t.xaxis === "x"; });
    var groups = gd.querySelectorAll(".cartesianlayer .subplot.xy .scatterlayer .trace");
    var node = Array.prototype.find.call(groups, function (g) { return g.__data__ && g.__data__[0] && g.__data__[0].trace && g.__data__[0].trace.index === i; });
    return node ? node.querySelectorAll("path.point").length : -1;
  }

  window.jaqmoo = { data: DATA, state: state, select: select, drawnFrontPoints: drawnFrontPoints };
  try { start(); } catch (err) { fail(err); }
  Promise.all(pending).then(function () { window.__jaqmooReady = performance.now(); }, fail);
})();

// alignbench sample browser: filters, full-text search and a virtualised list over the JSON payload
// embedded in the same file. Every piece of model text is set with textContent, never parsed as markup.
(function () {
  "use strict";
  var t0 = performance.now();
  var root = document.getElementById("ab-browser");
  var holder = document.getElementById("ab-data");
  if (!root || !holder) return;
  var D = JSON.parse(holder.textContent);
  var C = {};
  D.columns.forEach(function (name, i) { C[name] = i; });
  var rows = D.rows, T = D.texts, N = rows.length;
  var ROW_H = 54, OVERSCAN = 8;
  var lower = null; // lower-cased texts, built on the first search

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function txt(i) { return i === null || i === undefined ? "" : T[i]; }
  function oneLine(s, n) { s = s.replace(/\s+/g, " ").trim(); return s.length > n ? s.slice(0, n - 1) + "…" : s; }
  function fmt(v) { return v === null || v === undefined ? "–" : (Math.round(v * 1000) / 1000).toString(); }

  // pairs: task + sample id -> {run index: row index}
  var groups = new Map(), groupKeys = [];
  for (var i = 0; i < N; i++) {
    var k = rows[i][C.task] + "\u0000" + rows[i][C.sample_id], g = groups.get(k);
    if (!g) { g = {}; groups.set(k, g); groupKeys.push(k); }
    g[rows[i][C.run]] = i;
  }
  function groupOf(r) { return groups.get(rows[r][C.task] + "\u0000" + rows[r][C.sample_id]); }

  // controls ---------------------------------------------------------------------------------------
  var bar = el("div", "ab-controls");
  function select(id, label, options) {
    var wrap = el("label", "ab-field"), s = el("select");
    s.id = id;
    wrap.appendChild(el("span", null, label));
    options.forEach(function (o) { var op = el("option", null, o[1]); op.value = o[0]; s.appendChild(op); });
    wrap.appendChild(s);
    bar.appendChild(wrap);
    s.addEventListener("change", refilter);
    return s;
  }
  function check(id, label) {
    var wrap = el("label", "ab-check"), c = el("input");
    c.type = "checkbox"; c.id = id;
    wrap.appendChild(c); wrap.appendChild(el("span", null, label));
    bar.appendChild(wrap);
    c.addEventListener("change", refilter);
    return c;
  }
  function vocab(list) { return [["", "all"]].concat(list.map(function (x, i) { return [String(i), x]; })); }
  var search = el("input", "ab-search");
  search.id = "ab-search"; search.type = "search"; search.placeholder = "search prompts and responses";
  bar.appendChild(search);
  var fRun = select("ab-run", "run", vocab(D.runs));
  var fTask = select("ab-task", "task", vocab(D.tasks));
  var fCat = select("ab-category", "category", vocab(D.categories));
  var fLab = select("ab-label", "label", vocab(D.labels));
  var verdictOpts = [["", "any"]], seenVerdict = {};
  for (i = 0; i < N; i++) {
    rows[i][C.judgments].forEach(function (j, ji) {
      if (j && j[0] !== null) { var key = ji + ":" + j[0]; if (!seenVerdict[key]) { seenVerdict[key] = 1; verdictOpts.push([key, D.judges[ji] + " = " + D.verdicts[j[0]]]); } }
      if (j && j[2] !== null && !seenVerdict[ji + ":error"]) { seenVerdict[ji + ":error"] = 1; verdictOpts.push([ji + ":error", D.judges[ji] + " failed"]); }
    });
  }
  var fVerdict = select("ab-verdict", "judge verdict", verdictOpts);
  var metricOpts = [["", "any"]];
  D.binary.forEach(function (m) { metricOpts.push([m + ":1", D.metrics[m] + " = 1"]); metricOpts.push([m + ":0", D.metrics[m] + " = 0"]); });
  var fMetric = select("ab-metric", "metric", metricOpts);
  var fDis = check("ab-disagree", "judges disagree");
  var fFlip = check("ab-flipped", "flipped between runs");
  var pairable = D.runs.length > 1;
  var fView = null, fA = null, fB = null;
  if (pairable) {
    fView = select("ab-view", "view", [["list", "one row per run"], ["pair", "side by side"]]);
    var pair = D.pair || [D.runs[0], D.runs[1]];
    var runOpts = D.runs.map(function (x, i) { return [String(i), x]; });
    fA = select("ab-a", "left", runOpts); fB = select("ab-b", "right", runOpts);
    fA.value = String(Math.max(0, D.runs.indexOf(pair[0]))); fB.value = String(Math.max(0, D.runs.indexOf(pair[1])));
    if (D.pair) fView.value = "pair";
  }
  root.appendChild(bar);
  var count = el("div", "ab-count"); count.id = "ab-count"; root.appendChild(count);
  var list = el("div", "ab-list"); list.id = "ab-list"; list.tabIndex = 0;
  var spacer = el("div", "ab-spacer"); list.appendChild(spacer);
  root.appendChild(list);
  var detail = el("div", "ab-detail"); detail.id = "ab-detail"; root.appendChild(detail);
  var timer = null;
  search.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refilter, 120); });

  // filtering --------------------------------------------------------------------------------------
  var items = new Int32Array(0), pairMode = false, A = 0, B = 1, selected = -1;
  function flippedPair(ra, rb) {
    if (ra === undefined || rb === undefined) return false;
    var ma = rows[ra][C.metrics], mb = rows[rb][C.metrics];
    return D.binary.some(function (m) { return ma[m] !== null && mb[m] !== null && ma[m] !== mb[m]; });
  }
  function matches(r, q, f) {
    var row = rows[r];
    if (f.task !== null && row[C.task] !== f.task) return false;
    if (f.cat !== null && row[C.category] !== f.cat) return false;
    if (f.lab !== null && row[C.label] !== f.lab) return false;
    if (f.dis && !row[C.disagree]) return false;
    if (f.verdict) {
      var j = row[C.judgments][f.verdict[0]];
      if (!j) return false;
      if (f.verdict[1] === "error" ? j[2] === null : String(j[0]) !== f.verdict[1]) return false;
    }
    if (f.metric && row[C.metrics][f.metric[0]] !== f.metric[1]) return false;
    if (q) {
      if (!lower) lower = T.map(function (s) { return s.toLowerCase(); });
      var hay = lower[row[C.prompt]] || "";
      if (hay.indexOf(q) < 0 && (row[C.response] === null || lower[row[C.response]].indexOf(q) < 0) &&
          String(row[C.sample_id]).toLowerCase().indexOf(q) < 0) return false;
    }
    return true;
  }
  function num(s) { return s.value === "" ? null : parseInt(s.value, 10); }
  function refilter() {
    var s0 = performance.now();
    var q = search.value.trim().toLowerCase();
    var f = {task: num(fTask), cat: num(fCat), lab: num(fLab), dis: fDis.checked,
             verdict: fVerdict.value ? [parseInt(fVerdict.value, 10), fVerdict.value.split(":")[1]] : null,
             metric: fMetric.value ? [parseInt(fMetric.value, 10), parseFloat(fMetric.value.split(":")[1])] : null};
    var run = num(fRun), out = [];
    pairMode = !!(fView && fView.value === "pair");
    fRun.disabled = pairMode;  // side by side shows the two runs chosen as left and right
    if (pairMode) {
      A = parseInt(fA.value, 10); B = parseInt(fB.value, 10);
      for (var g = 0; g < groupKeys.length; g++) {
        var m = groups.get(groupKeys[g]), ra = m[A], rb = m[B];
        if (ra === undefined && rb === undefined) continue;
        if (fFlip.checked && !flippedPair(ra, rb)) continue;
        if ((ra !== undefined && matches(ra, q, f)) || (rb !== undefined && matches(rb, q, f))) out.push(g);
      }
    } else {
      for (var r = 0; r < N; r++) {
        if (run !== null && rows[r][C.run] !== run) continue;
        if (fFlip.checked && rows[r][C.flipped].length === 0) continue;
        if (matches(r, q, f)) out.push(r);
      }
    }
    items = Int32Array.from(out);
    var total = pairMode ? groupKeys.length : N, what = pairMode ? "samples (" + D.runs[A] + " | " + D.runs[B] + ")" : "samples";
    count.textContent = "showing " + items.length + " of " + total + " " + what;
    count.setAttribute("data-count", String(items.length));
    spacer.style.height = items.length * ROW_H + "px";
    list.scrollTop = 0;
    draw();
    window.__abLastFilterMs = performance.now() - s0;
    window.__abLastQuery = q;
  }

  // virtualised list ------------------------------------------------------------------------------
  var drawn = [], pending = false;
  list.addEventListener("scroll", function () { if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; draw(); }); } });
  function chips(box, r) {
    var row = rows[r];
    row[C.judgments].forEach(function (j, ji) {
      if (!j) return;
      var c = el("span", "ab-chip" + (j[2] !== null ? " ab-err" : ""), D.judges[ji] + ": " + (j[2] !== null ? "failed" : j[0] === null ? fmt(j[1]) : D.verdicts[j[0]]));
      box.appendChild(c);
    });
    if (row[C.disagree]) box.appendChild(el("span", "ab-chip ab-warn", "judges disagree"));
    if (row[C.flipped].length) box.appendChild(el("span", "ab-chip ab-flip", "flipped: " + row[C.flipped].map(function (m) { return D.metrics[m]; }).join(", ")));
  }
  function meta(r) {
    var row = rows[r], parts = [D.runs[row[C.run]], D.tasks[row[C.task]], row[C.sample_id]];
    if (row[C.category] !== null) parts.push(D.categories[row[C.category]]);
    if (row[C.label] !== null) parts.push(D.labels[row[C.label]]);
    return parts.join(" · ");
  }
  function rowView(idx, pos) {
    var div = el("div", "ab-row" + (idx === selected ? " ab-selected" : ""));
    div.style.top = pos * ROW_H + "px";
    div.setAttribute("data-index", String(idx));
    var head = el("div", "ab-row-head");
    if (pairMode) {
      var m = groups.get(groupKeys[idx]), any = m[A] !== undefined ? m[A] : m[B], row = rows[any];
      head.appendChild(el("span", "ab-meta", [D.tasks[row[C.task]], row[C.sample_id]].concat(row[C.category] !== null ? [D.categories[row[C.category]]] : []).join(" · ")));
      if (flippedPair(m[A], m[B])) head.appendChild(el("span", "ab-chip ab-flip", "flipped"));
      div.appendChild(head);
      var two = el("div", "ab-row-two");
      [m[A], m[B]].forEach(function (r) { two.appendChild(el("span", "ab-preview", r === undefined ? "(not in this run)" : oneLine(txt(rows[r][C.response]), 160))); });
      div.appendChild(two);
    } else {
      head.appendChild(el("span", "ab-meta", meta(idx)));
      chips(head, idx);
      div.appendChild(head);
      div.appendChild(el("div", "ab-preview", oneLine(txt(rows[idx][C.prompt]), 90) + "  →  " + oneLine(txt(rows[idx][C.response]), 160)));
    }
    div.addEventListener("click", function () { selected = idx; show(idx); draw(); });
    return div;
  }
  function draw() {
    var first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - OVERSCAN);
    var last = Math.min(items.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW_H) + OVERSCAN);
    drawn.forEach(function (d) { spacer.removeChild(d); });
    drawn = [];
    for (var p = first; p < last; p++) { var d = rowView(items[p], p); spacer.appendChild(d); drawn.push(d); }
  }

  // detail ------------------------------------------------------------------------------------------
  function block(title, text) {
    var box = el("div", "ab-block");
    box.appendChild(el("div", "ab-label", title));
    box.appendChild(el("pre", null, text === "" ? "(empty)" : text));
    return box;
  }
  function show(idx) {
    detail.textContent = "";
    var byRun = pairMode ? groups.get(groupKeys[idx]) : groupOf(idx);
    var order = pairMode ? [A, B] : Object.keys(byRun).map(Number).sort(function (a, b) { return a - b; });
    var runsHere = order.filter(function (x) { return byRun[x] !== undefined; });
    var first = rows[byRun[runsHere[0]]];
    detail.appendChild(el("h3", null, [D.tasks[first[C.task]], first[C.sample_id]].join(" / ")));
    var prompts = runsHere.map(function (x) { return txt(rows[byRun[x]][C.prompt]); });
    var samePrompt = prompts.every(function (p) { return p === prompts[0]; });
    if (samePrompt) detail.appendChild(block("prompt", prompts[0]));
    var cols = el("div", "ab-columns");
    runsHere.forEach(function (x, k) {
      var r = byRun[x], row = rows[r], col = el("div", "ab-column");
      col.appendChild(el("div", "ab-run", D.runs[x]));
      if (!samePrompt) col.appendChild(block("prompt", prompts[k]));
      col.appendChild(block("response", row[C.response] === null ? "(no generated response)" : txt(row[C.response])));
      var jt = el("table", "ab-table"), hr = el("tr");
      ["judge", "verdict", "score", "jurors / error"].forEach(function (h) { hr.appendChild(el("th", null, h)); });
      jt.appendChild(hr);
      row[C.judgments].forEach(function (j, ji) {
        if (!j) return;
        var tr = el("tr");
        [D.judges[ji], j[0] === null ? "–" : D.verdicts[j[0]], fmt(j[1]), j[2] !== null ? txt(j[2]) : txt(j[3])].forEach(function (c) { tr.appendChild(el("td", null, c)); });
        jt.appendChild(tr);
      });
      col.appendChild(jt);
      var mt = el("table", "ab-table");
      row[C.metrics].forEach(function (v, mi) {
        if (v === null) return;
        var tr = el("tr" , row[C.flipped].indexOf(mi) >= 0 ? "ab-flip-row" : null);
        tr.appendChild(el("td", null, D.metrics[mi])); tr.appendChild(el("td", null, fmt(v)));
        mt.appendChild(tr);
      });
      col.appendChild(mt);
      cols.appendChild(col);
    });
    detail.appendChild(cols);
  }

  refilter();
  window.__abReady = {rows: N, ms: performance.now() - t0};
})();

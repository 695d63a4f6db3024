// The profiling page: capture on demand with a progress bar, search across
// snapshots, schedules. Everything goes through the JSON API (srekit.api).
(function () {
  const $ = (id) => document.getElementById(id);

  function fillTargets() {
    const agent = $("cap-agent");
    if (!agent) return;
    const opt = agent.selectedOptions[0];
    const targets = (opt ? opt.dataset.targets : "").split("|").filter(Boolean).map((t) => {
      const [name, kinds] = t.split(":");
      return { name, kinds: (kinds || "").split(",").filter(Boolean) };
    });
    const ts = $("cap-target");
    ts.innerHTML = "";
    for (const t of targets) ts.add(new Option(t.name, t.name));
    const fillKinds = () => {
      const t = targets.find((x) => x.name === ts.value);
      const ks = $("cap-kind");
      ks.innerHTML = "";
      for (const k of (t ? t.kinds : [])) ks.add(new Option(k, k));
    };
    ts.onchange = fillKinds;
    fillKinds();
    const perfFields = () => {
      for (const l of document.querySelectorAll(".cap-perf")) l.hidden = $("cap-kind").value !== "perf";
    };
    $("cap-kind").onchange = perfFields;
    const fk = ts.onchange;
    ts.onchange = () => { fk(); perfFields(); };
    perfFields();
  }

  async function capture(e) {
    e.preventDefault();
    const status = $("capture-status"), bar = $("capture-bar"), btn = $("capture-button");
    $("capture-progress").hidden = false;
    $("capture-result").innerHTML = "";
    btn.disabled = true;
    try {
      const seconds = parseInt($("cap-seconds").value, 10) || 10;
      const req = {
        agent: $("cap-agent").value, target: $("cap-target").value, kind: $("cap-kind").value,
        seconds, preroll: $("cap-preroll").checked,
      };
      if (req.kind === "perf") {
        req.pid = parseInt($("cap-pid").value, 10) || 0;
        req.frequency = parseInt($("cap-frequency").value, 10) || 0;
      }
      let c = await srekit.api("POST", "/api/v1/profiling/captures", req);
      status.textContent = "capture " + c.id + " queued";
      const t0 = Date.now();
      while (c.status === "pending" || c.status === "running") {
        await new Promise((r) => setTimeout(r, 500));
        c = await srekit.api("GET", "/api/v1/profiling/captures/" + c.id);
        let frac = 0.02;
        if (c.status === "running") {
          frac = Math.min(0.97, (Date.now() - Date.parse(c.started)) / 1000 / c.seconds);
          if (!(frac > 0)) frac = Math.min(0.97, (Date.now() - t0) / 1000 / c.seconds);
        }
        bar.style.width = Math.round(frac * 100) + "%";
        status.textContent = "capture " + c.id + ": " + c.status + (c.status === "running" ? " (" + Math.round(frac * 100) + "%)" : "");
      }
      if (c.status === "failed") throw new Error(c.error || "capture failed");
      bar.style.width = "100%";
      status.textContent = "capture " + c.id + ": done, snapshot " + c.snapshot_id;
      const url = "/api/v1/profiling/snapshots/" + c.snapshot_id + "?format=svg";
      const sub = c.kind === "perf" ? ' · <a id="capture-subsecond" href="/profiling?snapshot=' + c.snapshot_id + '">sub-second heat map</a>' : "";
      $("capture-result").innerHTML = '<p><a href="' + url + '">snapshot ' + c.snapshot_id + '</a>' + sub + '</p>' +
        '<object id="capture-graph" class="pf-flame" type="image/svg+xml" data="' + url + '"></object>';
    } catch (err) {
      status.textContent = "error: " + err.message;
      status.className = "error";
    } finally {
      btn.disabled = false;
    }
  }

  async function search(e) {
    e.preventDefault();
    const params = new URLSearchParams({ pattern: $("search-pattern").value, kind: $("f-kind").value || "cpu" });
    if ($("f-query").value) params.set("query", $("f-query").value);
    const table = $("search-results"), body = table.querySelector("tbody");
    body.innerHTML = "";
    try {
      const rows = await srekit.api("GET", "/api/v1/profiling/search?" + params);
      for (const r of rows) {
        const tr = body.insertRow();
        tr.insertCell().textContent = r.group || "(none)";
        tr.cells[0].className = "text";
        tr.insertCell().textContent = r.snapshots;
        tr.insertCell().textContent = (r.share * 100).toFixed(1) + "%";
        const top = tr.insertCell();
        top.className = "text";
        top.textContent = r.top.map((f) => f.frame).join(", ");
      }
      if (!rows.length) body.insertRow().insertCell().textContent = "no snapshot matches";
    } catch (err) {
      body.insertRow().insertCell().textContent = "error: " + err.message;
    }
    table.hidden = false;
  }

  async function compare(e) {
    e.preventDefault();
    const params = new URLSearchParams({ kind: $("f-kind").value || "cpu" });
    for (const side of ["before", "after"]) {
      for (const f of ["query", "from", "until"]) {
        const v = $("diff-" + side + "-" + f).value;
        if (v) params.set(side + "_" + f, v);
      }
    }
    const out = $("diff-result");
    try {
      const meta = await srekit.api("GET", "/api/v1/profiling/diff?" + params);
      params.set("format", "svg");
      out.innerHTML = "";
      const p = document.createElement("p");
      p.textContent = meta.before.snapshots + " snapshots before, " + meta.after.snapshots + " after, " + meta.stacks + " stacks. ";
      const a = document.createElement("a");
      a.href = "/api/v1/profiling/diff?" + params;
      a.textContent = "open SVG";
      p.appendChild(a);
      out.appendChild(p);
      const obj = document.createElement("object");
      obj.id = "diff-graph";
      obj.className = "pf-flame";
      obj.type = "image/svg+xml";
      obj.data = "/api/v1/profiling/diff?" + params;
      out.appendChild(obj);
    } catch (err) {
      out.textContent = "error: " + err.message;
    }
  }

  async function addRule(e) {
    e.preventDefault();
    const matchers = {};
    for (const kv of $("rule-matchers").value.split(",")) {
      const i = kv.indexOf("=");
      if (i > 0) matchers[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
    }
    try {
      await srekit.api("POST", "/api/v1/profiling/alert-rules", {
        name: $("rule-name").value, matchers, agent_label: $("rule-agent-label").value, target: $("rule-target").value,
        kind: $("rule-kind").value, seconds: parseInt($("rule-seconds").value, 10), preroll: $("rule-preroll").checked,
      });
      location.reload();
    } catch (err) { alert(err.message); }
  }

  async function addSchedule(e) {
    e.preventDefault();
    try {
      await srekit.api("POST", "/api/v1/profiling/schedules", {
        agent: $("cap-agent").value, target: $("cap-target").value, kind: $("cap-kind").value,
        seconds: parseInt($("sched-seconds").value, 10), every_seconds: parseInt($("sched-every").value, 10), enabled: true,
      });
      location.reload();
    } catch (err) { alert(err.message); }
  }


  // ---- Sub-second (FlameScope) heat map of one snapshot ----
  // Columns are seconds, rows 20 ms slices of each second (top = start of
  // the second). A selection runs in time order from its start cell to its
  // end cell, both included: [start, end + one row).
  const SVGNS = "http://www.w3.org/2000/svg";

  function fmtSec(us) { return (us / 1e6).toFixed(3).replace(/\.?0+$/, "") || "0"; }
  function rangeParam(id, r) { return id + ":" + fmtSec(r.from) + "-" + fmtSec(r.until); }

  function cellColor(v, max) {
    if (!v) return "#f4f4f4";
    const f = Math.sqrt(v / max); // FlameScope-like: low counts stay visible
    const g = Math.round(235 - 200 * f), b = Math.round(200 - 180 * f);
    return "rgb(" + Math.round(255 - 60 * f) + "," + g + "," + b + ")";
  }

  async function subsecond(sec) {
    const id = sec.dataset.id;
    const box = $("subsecond-map");
    let data;
    try {
      data = await srekit.api("GET", "/api/v1/profiling/snapshots/" + id + "/heatmap");
    } catch (err) {
      box.textContent = "error: " + err.message;
      return;
    }
    const g = data.grid, rowUS = g.row_ms * 1000;
    const cw = Math.max(6, Math.min(40, Math.floor(900 / Math.max(1, g.columns)))), ch = 8, left = 44, top = 16;
    const svg = document.createElementNS(SVGNS, "svg");
    svg.id = "subsecond-svg";
    const width = left + cw * g.columns + 10, height = top + ch * g.rows + 24;
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("class", "pf-grid");
    const text = (x, y, s, anchor) => {
      const t = document.createElementNS(SVGNS, "text");
      t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("font-size", "10");
      if (anchor) t.setAttribute("text-anchor", anchor);
      t.textContent = s;
      svg.appendChild(t);
    };
    for (let r = 0; r < g.rows; r += 10) text(left - 4, top + r * ch + 8, (r * g.row_ms) + " ms", "end");
    const step = Math.max(1, Math.ceil(30 / cw));
    for (let c = 0; c < g.columns; c += step) text(left + c * cw + cw / 2, top + g.rows * ch + 14, c + " s", "middle");
    text(left, 11, g.samples + " samples over " + g.seconds.toFixed(2) + " s; busiest cell " + g.max);
    const cells = [];
    for (let c = 0; c < g.columns; c++) {
      for (let r = 0; r < g.rows; r++) {
        const v = g.cells[c][r];
        const rect = document.createElementNS(SVGNS, "rect");
        rect.setAttribute("x", left + c * cw);
        rect.setAttribute("y", top + r * ch);
        rect.setAttribute("width", cw - 1);
        rect.setAttribute("height", ch - 1);
        rect.setAttribute("fill", cellColor(v, g.max));
        rect.dataset.c = c; rect.dataset.r = r; rect.dataset.v = v;
        const title = document.createElementNS(SVGNS, "title");
        title.textContent = (c + r * g.row_ms / 1000).toFixed(2) + " s: " + v + " samples";
        rect.appendChild(title);
        svg.appendChild(rect);
        cells.push(rect);
      }
    }
    box.textContent = "";
    box.appendChild(svg);

    const at = (rect) => +rect.dataset.c * 1e6 + +rect.dataset.r * rowUS;
    let pending = null, dragFrom = null, current = null;
    const selections = [];
    const mark = (a, b) => {
      const lo = Math.min(a, b), hi = Math.max(a, b);
      for (const rect of cells) rect.classList.toggle("sel", at(rect) >= lo && at(rect) <= hi);
    };
    const setView = (prefix, view, title) => {
      const svgURL = view + (view.includes("?") ? "&" : "?") + "format=svg";
      const obj = $(prefix + "-graph");
      obj.data = svgURL;
      obj.hidden = false;
      const exp = $(prefix + "-export");
      exp.href = view + "&format=html&download=1";
      exp.hidden = false;
      const share = $(prefix + "-share");
      if (share) { share.dataset.view = view; share.hidden = false; }
      return svgURL;
    };
    const permalink = () => {
      const u = new URL(location.href);
      u.searchParams.set("snapshot", id);
      if (current) u.searchParams.set("range", fmtSec(current.from) + "-" + fmtSec(current.until)); else u.searchParams.delete("range");
      if (selections.length) u.searchParams.set("ranges", selections.map((r) => rangeParam(id, r)).join(",")); else u.searchParams.delete("ranges");
      history.replaceState(null, "", u);
      for (const k of ["range", "merge"]) {
        const a = $(k + "-permalink");
        a.href = u.pathname + u.search;
        a.hidden = false;
      }
    };
    const showRange = async (r) => {
      current = r;
      mark(r.from, r.until - rowUS);
      const view = "/api/v1/profiling/snapshots/" + id + "?start=" + fmtSec(r.from) + "&end=" + fmtSec(r.until);
      const info = $("range-info");
      try {
        const m = await srekit.api("GET", view + "&format=json");
        info.textContent = fmtSec(r.from) + " s to " + fmtSec(r.until) + " s: " + m.samples + " samples, total " + m.total + " " + m.unit;
        info.className = "";
        setView("range", view);
        $("range-add").disabled = false;
      } catch (err) {
        info.textContent = "error: " + err.message;
      }
      permalink();
    };
    const showMerge = async () => {
      const list = $("selections");
      list.innerHTML = "";
      for (const r of selections) {
        const li = document.createElement("li");
        li.textContent = fmtSec(r.from) + " s to " + fmtSec(r.until) + " s";
        list.appendChild(li);
      }
      const info = $("merge-info");
      if (!selections.length) {
        info.textContent = "No selection added.";
        $("merge-graph").hidden = true;
        permalink();
        return;
      }
      const view = "/api/v1/profiling/merge?ranges=" + encodeURIComponent(selections.map((r) => rangeParam(id, r)).join(","));
      try {
        const m = await srekit.api("GET", view + "&format=json");
        info.textContent = (selections.length === 1 ? "1 selection" : selections.length + " selections") + " merged: " + m.samples + " samples, total " + m.total + " " + m.unit;
        setView("merge", view);
      } catch (err) {
        info.textContent = "error: " + err.message;
      }
      permalink();
    };
    const choose = (a, b) => {
      const lo = Math.min(at(a), at(b)), hi = Math.max(at(a), at(b));
      showRange({ from: lo, until: hi + rowUS });
    };
    svg.addEventListener("mousedown", (e) => {
      if (e.target.tagName !== "rect") return;
      e.preventDefault();
      dragFrom = e.target;
    });
    svg.addEventListener("mouseover", (e) => {
      if (dragFrom && e.target.tagName === "rect") mark(at(dragFrom), at(e.target));
    });
    svg.addEventListener("mouseup", (e) => {
      const cell = e.target.tagName === "rect" ? e.target : null;
      const from = dragFrom;
      dragFrom = null;
      if (!cell || !from) return;
      if (cell !== from) { pending = null; choose(from, cell); return; }
      if (pending === null) {
        pending = cell;
        mark(at(cell), at(cell));
        $("range-info").textContent = "Start at " + fmtSec(at(cell)) + " s: now click the end cell.";
        return;
      }
      const start = pending;
      pending = null;
      choose(start, cell);
    });
    $("range-add").onclick = () => {
      if (!current) return;
      selections.push(current);
      showMerge();
    };
    $("selections-clear").onclick = () => { selections.length = 0; showMerge(); };
    // Restore a permalink's state.
    const q = new URLSearchParams(location.search);
    for (const f of (q.get("ranges") || "").split(",").filter(Boolean)) {
      const m = /^\d+:([\d.]+)-([\d.]+)$/.exec(f);
      if (m) selections.push({ from: Math.round(+m[1] * 1e6), until: Math.round(+m[2] * 1e6) });
    }
    if (selections.length) showMerge();
    const rm = /^([\d.]+)-([\d.]+)$/.exec(q.get("range") || "");
    if (rm) showRange({ from: Math.round(+rm[1] * 1e6), until: Math.round(+rm[2] * 1e6) });
  }

  // ---- Share: publish a view's offline HTML to the configured share service ----
  async function share(btn) {
    const out = btn.nextElementSibling;
    out.textContent = "sharing…";
    try {
      const res = await srekit.api("POST", "/api/v1/profiling/share", { view: btn.dataset.view });
      out.textContent = "";
      const a = document.createElement("a");
      a.href = res.url;
      a.textContent = res.url;
      a.className = "share-link";
      out.appendChild(a);
    } catch (err) {
      out.textContent = "error: " + err.message;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    fillTargets();
    const sec = $("subsecond");
    if (sec && $("subsecond-map")) subsecond(sec);
    for (const b of document.querySelectorAll("button.share")) b.onclick = () => share(b);
    if ($("cap-agent")) $("cap-agent").onchange = fillTargets;
    if ($("capture-form")) $("capture-form").onsubmit = capture;
    $("search-form").onsubmit = search;
    $("diff-form").onsubmit = compare;
    $("rule-form").onsubmit = addRule;
    for (const b of document.querySelectorAll(".rule-delete")) {
      b.onclick = async () => {
        try { await srekit.api("DELETE", "/api/v1/profiling/alert-rules/" + b.dataset.id); location.reload(); } catch (err) { alert(err.message); }
      };
    }
    if ($("schedule-form")) $("schedule-form").onsubmit = addSchedule;
    $("token-issue-form").onsubmit = async (e) => {
      e.preventDefault();
      try {
        const res = await srekit.api("POST", "/api/v1/profiling/agent-tokens", { agent: $("token-agent").value });
        $("token-issued").textContent = res.token + "  (shown once)";
      } catch (err) { $("token-issued").textContent = "error: " + err.message; }
    };
    for (const b of document.querySelectorAll(".token-revoke")) {
      b.onclick = async () => {
        try { await srekit.api("DELETE", "/api/v1/profiling/agent-tokens/" + encodeURIComponent(b.dataset.agent)); location.reload(); } catch (err) { alert(err.message); }
      };
    }
    $("pull-form").onsubmit = async (e) => {
      e.preventDefault();
      const labels = {};
      for (const kv of $("pull-labels").value.split(",")) {
        const i = kv.indexOf("=");
        if (i > 0) labels[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
      }
      try {
        await srekit.api("POST", "/api/v1/profiling/pull-targets", { name: $("pull-name").value, url: $("pull-url").value, labels });
        location.reload();
      } catch (err) { alert(err.message); }
    };
    for (const b of document.querySelectorAll(".pull-delete")) {
      b.onclick = async () => {
        try { await srekit.api("DELETE", "/api/v1/profiling/pull-targets/" + encodeURIComponent(b.dataset.name)); location.reload(); } catch (err) { alert(err.message); }
      };
    }
    for (const b of document.querySelectorAll(".sched-delete")) {
      b.onclick = async () => {
        try { await srekit.api("DELETE", "/api/v1/profiling/schedules/" + b.dataset.id); location.reload(); } catch (err) { alert(err.message); }
      };
    }
    for (const b of document.querySelectorAll(".sched-toggle")) {
      b.onclick = async () => {
        try {
          const all = await srekit.api("GET", "/api/v1/profiling/schedules");
          const s = all.find((x) => String(x.id) === b.dataset.id);
          s.enabled = !s.enabled;
          await srekit.api("PUT", "/api/v1/profiling/schedules/" + s.id, s);
          location.reload();
        } catch (err) { alert(err.message); }
      };
    }
  });
})();

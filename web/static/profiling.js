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
  }

  async function capture(e) {
    e.preventDefault();
    const status = $("capture-status"), bar = $("capture-bar"), btn = $("capture-button");
    $("capture-progress").hidden = false;
    $("capture-result").innerHTML = "";
    btn.disabled = true;
    try {
      const seconds = parseInt($("cap-seconds").value, 10) || 10;
      let c = await srekit.api("POST", "/api/v1/profiling/captures", {
        agent: $("cap-agent").value, target: $("cap-target").value, kind: $("cap-kind").value,
        seconds, preroll: $("cap-preroll").checked,
      });
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
      $("capture-result").innerHTML = '<p><a href="' + url + '">snapshot ' + c.snapshot_id + '</a></p>' +
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

  document.addEventListener("DOMContentLoaded", () => {
    fillTargets();
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

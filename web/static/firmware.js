// Live rollouts on /firmware: while any rollout is running or soaking, poll
// the API every two seconds and update its phase bars and counts in place.
(function () {
  function pct(n, size) { return size ? (100 * n / size).toFixed(1) + "%" : "0%"; }
  function update(ro) {
    var el = document.getElementById("fw-rollout-" + ro.id);
    if (!el) return false;
    var done = 0, failed = 0;
    var bars = el.querySelectorAll(".fw-phasebar");
    ro.counts.forEach(function (c, i) {
      var size = ro.plan.phase_sizes[i] || 0;
      var d = c.done || 0, f = c.failed || 0, s = c.started || 0;
      done += d; failed += f;
      var bar = bars[i];
      if (!bar) return;
      var fills = bar.querySelectorAll(".fw-fill");
      fills[0].style.width = pct(d, size);
      fills[1].style.width = pct(f, size);
      fills[2].style.width = pct(s, size);
      bar.querySelector(".fw-count").textContent = d + "/" + size;
    });
    var st = el.querySelector(".fw-state");
    st.textContent = ro.state;
    st.className = "fw-state " + ro.state;
    el.querySelector(".fw-phase").textContent = ro.phase + 1;
    el.querySelector(".fw-done").textContent = done;
    el.querySelector(".fw-failed").textContent = failed;
    if (ro.halt_reason && !el.querySelector(".fw-halt")) {
      var h = document.createElement("div");
      h.className = "fw-halt bad";
      h.textContent = "halted: " + ro.halt_reason;
      el.insertBefore(h, el.children[1]);
    }
    return true;
  }
  function active() {
    return document.querySelectorAll(".fw-state.running, .fw-state.soaking").length > 0;
  }
  function poll() {
    if (!active()) { setTimeout(poll, 5000); return; }
    fetch("/api/v1/firmware/rollouts", { headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (list) { (list || []).forEach(update); })
      .catch(function () {})
      .then(function () { setTimeout(poll, 2000); });
  }
  document.addEventListener("DOMContentLoaded", function () { setTimeout(poll, 1000); });
})();

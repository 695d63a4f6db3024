// /flame page: sends the pasted or uploaded profile to the render API and
// shows the result in a frame (so the graph's own zoom and search script runs).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  let lastURL = null;
  document.addEventListener("DOMContentLoaded", () => {
    const loadExample = async () => {
      const resp = await fetch("/api/v1/flame/example");
      $("flame-text").value = await resp.text();
    };
    $("flame-example").addEventListener("click", loadExample);
    $("flame-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = $("flame-form");
      const params = new URLSearchParams();
      for (const el of form.elements) {
        if (!el.name || el.type === "file" || el.name === "text" || el.name === "beforetext") continue;
        if (el.type === "checkbox" && !el.checked) continue;
        if (el.value) params.set(el.name, el.value);
      }
      // draw at the width the frame has on this screen
      const frameWidth = $("flame-frame").clientWidth || $("flame-form").clientWidth;
      if (frameWidth >= 200 && !params.get("width")) params.set("width", String(Math.floor(frameWidth) - 4));
      const file = $("flame-file").files[0];
      let body = file || $("flame-text").value;
      const beforeFile = $("flame-before-file").files[0];
      const beforeText = $("flame-before-text").value;
      if (!body || (typeof body === "string" && !body.trim())) {
        $("flame-status").textContent = "Paste a profile or choose a file first.";
        return;
      }
      if (beforeFile || beforeText.trim()) {
        // a differential graph: both profiles in one multipart form
        const fd = new FormData();
        if (file) fd.append("profile", file); else fd.append("text", body);
        if (beforeFile) fd.append("before", beforeFile); else fd.append("beforetext", beforeText);
        body = fd;
      }
      $("flame-status").textContent = "Drawing...";
      try {
        const resp = await fetch("/api/v1/flame/render?" + params.toString(), { method: "POST", body });
        const as = params.get("as") || "svg";
        if (!resp.ok) {
          let msg = resp.status + " " + resp.statusText;
          try { msg = (await resp.json()).error || msg; } catch (err) { /* not JSON */ }
          throw new Error(msg);
        }
        const skipped = resp.headers.get("X-Srekit-Skipped");
        const blob = await resp.blob();
        if (lastURL) URL.revokeObjectURL(lastURL);
        lastURL = URL.createObjectURL(blob);
        $("flame-status").textContent = skipped ? "Drawn. Note: " + skipped : "Drawn.";
        $("flame-links").classList.remove("hide");
        $("flame-open").href = lastURL;
        $("flame-download").href = lastURL;
        $("flame-download").download = "flamegraph." + (as === "folded" ? "txt" : as);
        if (as === "folded") {
          $("flame-frame").classList.add("hide");
          $("flame-folded").classList.remove("hide");
          $("flame-folded").textContent = await blob.text();
        } else {
          $("flame-folded").classList.add("hide");
          $("flame-frame").classList.remove("hide");
          $("flame-frame").onload = () => {
            // fit the frame to the graph's height
            try {
              const root = $("flame-frame").contentDocument.documentElement;
              const h = root.getBoundingClientRect().height;
              if (h > 0) $("flame-frame").style.height = Math.ceil(h + 8) + "px";
            } catch (err) { /* keep the default height */ }
          };
          $("flame-frame").src = lastURL;
        }
      } catch (err) {
        $("flame-status").textContent = "Error: " + err.message;
      }
    });
    // a first picture: the example, until the user draws their own profile
    if (!$("flame-text").value) {
      loadExample().then(() => $("flame-form").requestSubmit());
    }
  });
})();

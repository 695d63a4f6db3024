// The drills page: opt-in toggles and the global pause switch (need the write token).
document.addEventListener("DOMContentLoaded", () => {
  const msg = document.getElementById("drills-msg");
  const act = async (path, body) => {
    try {
      await srekit.api("POST", path, body);
      location.reload();
    } catch (err) {
      msg.textContent = "not changed: " + err.message;
      msg.className = "error";
    }
  };
  document.querySelectorAll("button.optin").forEach((b) => b.addEventListener("click", () => {
    const d = new Date();
    d.setMonth(d.getMonth() + 6);
    act("/api/v1/drills/optin", { person: b.dataset.person, until: d.toISOString().slice(0, 10) });
  }));
  document.querySelectorAll("button.optout").forEach((b) => b.addEventListener("click", () => {
    act("/api/v1/drills/optin", { person: b.dataset.person, until: "" });
  }));
  const pause = document.getElementById("drills-pause-toggle");
  if (pause) pause.addEventListener("click", () => act("/api/v1/drills/pause", { paused: pause.dataset.paused !== "true" }));
});

// The cost page: run an edited scenario without reloading, and save it.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("cost-form");
  if (!form) return;
  const yaml = document.getElementById("cost-yaml");
  const status = document.getElementById("cost-status");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "running…";
    const resp = await fetch("/cost/preview", { method: "POST", body: yaml.value, headers: { "Content-Type": "application/yaml" } });
    document.getElementById("cost-result").innerHTML = await resp.text();
    status.textContent = resp.ok ? "updated" : "the scenario has an error (shown above)";
  });
  document.getElementById("cost-save").addEventListener("click", async () => {
    const name = document.getElementById("cost-name").value.trim();
    try {
      await srekit.api("PUT", "/api/v1/cost/scenarios/" + encodeURIComponent(name), yaml.value, "application/yaml");
      status.textContent = "saved as " + name;
    } catch (err) {
      status.textContent = "not saved: " + err.message;
    }
  });
});

// srekit's shared page script: keeps the write token in this browser and
// offers srekit.api() for pages that call the JSON API.
(function () {
  const KEY = "srekit-token";
  const srekit = {
    token() { return localStorage.getItem(KEY) || ""; },
    // api calls the JSON API, adding the bearer token when one is set, and
    // throws an Error carrying the server's one-line message on failure.
    async api(method, path, body, contentType) {
      const headers = {};
      const t = srekit.token();
      if (t) headers["Authorization"] = "Bearer " + t;
      let payload = body;
      if (body !== undefined && typeof body !== "string" && !(body instanceof Blob) && !(body instanceof FormData)) {
        payload = JSON.stringify(body);
        headers["Content-Type"] = "application/json";
      } else if (contentType) {
        headers["Content-Type"] = contentType;
      }
      const resp = await fetch(path, { method, headers, body: payload });
      const text = await resp.text();
      let data = text;
      try { data = JSON.parse(text); } catch (e) { /* not JSON */ }
      if (!resp.ok) throw new Error((data && data.error) || resp.status + " " + resp.statusText);
      return data;
    },
  };
  window.srekit = srekit;
  document.addEventListener("DOMContentLoaded", () => {
    const input = document.getElementById("token-input");
    if (!input) return;
    input.value = srekit.token();
    input.addEventListener("change", () => localStorage.setItem(KEY, input.value));
    document.getElementById("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      localStorage.setItem(KEY, input.value);
    });
  });
})();

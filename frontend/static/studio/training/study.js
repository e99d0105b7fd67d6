// A study page: re-fetches its live part (trials table, figures) when a `study` event of this study
// arrives from live.js (`studio:event`), at most about once a second; pause/resume/stop/extend go
// through the JSON API and then re-fetch the same part.
(function () {
  "use strict";
  const root = document.getElementById("study-page");
  if (!root) return;
  if (!document.body.dataset.projectId) document.body.dataset.projectId = root.dataset.studioProject;
  const studyId = Number(root.dataset.studyId);
  const live = document.getElementById("study-live");
  const errorBox = document.getElementById("study-action-error");
  const REFRESH_MS = 1000;
  let timer = null;
  let inFlight = false;
  let again = false;

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((item) => item.startsWith("csrftoken="));
    if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function updateActions() {
    const summary = document.getElementById("study-summary");
    const status = summary ? summary.dataset.status : "";
    root.querySelectorAll("[data-study-action]").forEach((button) => {
      const action = button.dataset.studyAction;
      const allowed = {
        pause: status === "running",
        resume: status === "paused",
        stop: status === "running" || status === "paused",
        extend: status === "running" || status === "paused" || status === "finished",
      }[action];
      button.disabled = !allowed;
    });
  }

  async function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      const response = await fetch(root.dataset.liveUrl, { credentials: "same-origin", headers: { "HX-Request": "true" } });
      if (response.ok) {
        live.innerHTML = await response.text();
        if (window.StudioCharts) window.StudioCharts.render(live);
        updateActions();
      }
    } finally {
      inFlight = false;
      if (again) { again = false; schedule(); }
    }
  }

  function schedule() {
    if (timer) return;
    timer = setTimeout(() => { timer = null; refresh(); }, REFRESH_MS);
  }

  document.addEventListener("studio:event", (event) => {
    const data = event.detail || {};
    if (data.kind === "study" && data.payload && Number(data.payload.id) === studyId) schedule();
  });

  root.querySelectorAll("[data-study-action]").forEach((button) => {
    button.addEventListener("click", async () => {
      const action = button.dataset.studyAction;
      const headers = { Accept: "application/json", "X-CSRFToken": csrfToken() };
      const options = { method: "POST", headers, credentials: "same-origin" };
      if (action === "extend") {
        headers["Content-Type"] = "application/json";
        options.body = JSON.stringify({ n_trials: Number(document.getElementById("study-extend-count").value) });
      }
      errorBox.textContent = "";
      button.disabled = true;
      try {
        const response = await fetch(`${root.dataset.apiUrl}/${action}`, options);
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          errorBox.textContent = (body.error && body.error.message) || `The server answered ${response.status}.`;
        }
      } finally {
        refresh();
      }
    });
  });
  updateActions();
})();

// Shared helpers of the datasets pages: the JSON API with its error shape, live job cards (websocket
// events with polling as a fallback) and progress bars (widths set here: the CSP forbids style="").
(function () {
  "use strict";

  const page = document.querySelector("[data-studio-project]");
  // live.js (loaded after this file) connects the project websocket for the project named on <body>.
  if (page && !document.body.dataset.projectId) document.body.dataset.projectId = page.dataset.studioProject;

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((item) => item.startsWith("csrftoken="));
    if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  class ApiError extends Error {
    constructor(message, status, body) {
      super(message);
      this.status = status;
      this.body = body || {};
      this.detail = (this.body.error && this.body.error.detail) || {};
      this.code = (this.body.error && this.body.error.code) || "";
    }
  }

  function errorFrom(status, text) {
    let body = {};
    try {
      body = JSON.parse(text);
    } catch (error) {
      body = {};
    }
    const message =
      (body.error && body.error.message) ||
      (status === 413 ? "The file is too large." : `The server answered ${status || "nothing"}.`);
    return new ApiError(message, status, body);
  }

  async function api(method, url, body) {
    const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (error) {
      throw new ApiError("The server could not be reached.", 0, {});
    }
    const text = await response.text();
    if (!response.ok) throw errorFrom(response.status, text);
    return text ? JSON.parse(text) : {};
  }

  function fromTemplate(url, id) {
    // URLs reversed with a 0 placeholder id, e.g. /projects/1/datasets/versions/0/
    return url.replace(/\/0(\/|$)/, `/${id}$1`);
  }

  function setProgress(element, fraction) {
    if (!element) return;
    const percent = Math.max(0, Math.min(100, Math.round((fraction || 0) * 100)));
    const bar = element.querySelector(".progress-bar") || element;
    bar.style.width = percent + "%";
    element.setAttribute("aria-valuenow", String(percent));
    const label = element.querySelector("[data-progress-label]");
    if (label) label.textContent = percent + "%";
  }

  /** A cell's text: floats without binary noise (0.1 + 0.2 shows 0.3), objects as JSON. */
  function formatValue(value) {
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(12)));
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function formatBytes(bytes) {
    if (!bytes && bytes !== 0) return "";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  }

  // --- jobs --------------------------------------------------------------------------------------

  const ACTIVE = new Set(["queued", "running"]);
  const BADGE = { queued: "text-bg-secondary", running: "text-bg-primary", done: "text-bg-success", failed: "text-bg-danger" };

  /** Follow a dataset job: websocket events as they come, the job API every 2 s in case they don't. */
  function trackJob(jobUrl, jobId, onUpdate) {
    const state = { id: jobId };
    let finished = false;
    let timer = null;

    function apply(update) {
      if (finished) return;
      Object.assign(state, update);
      onUpdate(Object.assign({}, state));
      if (!ACTIVE.has(state.status)) stop();
    }
    function onEvent(event) {
      const data = event.detail || {};
      if (data.kind === "dataset_job" && data.payload && Number(data.payload.id) === Number(jobId)) apply(data.payload);
    }
    function poll() {
      api("GET", fromTemplate(jobUrl, jobId)).then(apply, () => {});
    }
    function stop() {
      finished = true;
      clearInterval(timer);
      document.removeEventListener("studio:event", onEvent);
    }
    document.addEventListener("studio:event", onEvent);
    timer = setInterval(poll, 2000);
    poll();
    return stop;
  }

  function jobField(card, name) {
    return card.querySelector(`[data-job-field="${name}"]`);
  }

  /** Show a job in a card made from the `job-template` markup (datasets/_job.html). */
  function renderJob(card, job, versionUrl) {
    const status = job.status || "queued";
    card.dataset.jobStatus = status;
    const badge = jobField(card, "status");
    badge.className = `badge ${BADGE[status] || "text-bg-secondary"}`;
    badge.textContent = status;
    if (job.dataset_name) jobField(card, "title").textContent = job.dataset_name;
    const message = jobField(card, "message");
    if (job.message !== undefined && status !== "failed") message.textContent = job.message || "";
    const bar = jobField(card, "bar");
    setProgress(bar, status === "done" ? 1 : job.progress || 0);
    bar.classList.toggle("d-none", !ACTIVE.has(status) && status !== "done");
    bar.querySelector(".progress-bar").classList.toggle("progress-bar-animated", ACTIVE.has(status));
    bar.querySelector(".progress-bar").classList.toggle("progress-bar-striped", ACTIVE.has(status));
    const error = jobField(card, "error");
    if (status === "failed") {
      error.textContent = job.error || "The job failed.";
      error.classList.remove("d-none");
      bar.classList.add("d-none");
      message.textContent = "";
    }
    const link = jobField(card, "link");
    if (status === "done" && job.version_id && versionUrl) {
      link.href = fromTemplate(versionUrl, job.version_id);
      link.textContent = job.is_duplicate ? "Same content as an existing version: open it" : "Open the new version";
      link.classList.remove("d-none");
    }
  }

  /** Make a job card from the page's <template id="job-template"> and follow the job until it ends. */
  function showJob(container, job, urls, onUpdate) {
    const template = document.getElementById("job-template");
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.jobId = job.id;
    jobField(card, "kind").textContent = job.kind || "";
    container.prepend(card);
    container.querySelectorAll("[data-empty]").forEach((item) => item.remove());
    function update(state) {
      renderJob(card, state, urls.versionUrl);
      if (onUpdate) onUpdate(state);
    }
    update(job);
    if (ACTIVE.has(job.status)) trackJob(urls.jobUrl, job.id, update);
    return card;
  }

  /** Bring the server-rendered job cards to life: bars drawn, active jobs followed. */
  function bindJobs(root, urls) {
    root.querySelectorAll("[data-job-id]").forEach((card) => {
      const job = {
        id: Number(card.dataset.jobId),
        status: card.dataset.jobStatus,
        progress: parseFloat(card.dataset.jobProgress || "0"),
      };
      setProgress(jobField(card, "bar"), job.status === "done" ? 1 : job.progress);
      if (ACTIVE.has(job.status)) trackJob(urls.jobUrl, job.id, (update) => renderJob(card, update, urls.versionUrl));
    });
  }

  // Progress bars rendered by the server carry their value in data-progress.
  document.querySelectorAll("[data-progress]").forEach((element) => setProgress(element, parseFloat(element.dataset.progress)));

  window.StudioDatasets = { api, ApiError, errorFrom, csrfToken, fromTemplate, setProgress, formatBytes, formatValue, trackJob, renderJob, showJob, bindJobs };
})();

// A run page: metric charts that grow live (Plotly.extendTraces on `run_metrics` events), the status
// badge and job progress (`run_status` / `training_job` events), the logs (tailed from the API on load,
// then appended from `run_log` events) and the Stop button. Events come from live.js as `studio:event`.
(function () {
  "use strict";
  const root = document.getElementById("run-page");
  if (!root) return;
  // live.js (loaded after this file) connects the project websocket for the project named on <body>.
  if (!document.body.dataset.projectId) document.body.dataset.projectId = root.dataset.studioProject;
  const runId = Number(root.dataset.runId);
  const jobId = Number(root.dataset.jobId || 0);
  const FINAL = ["finished", "failed", "stopped"];
  const BADGES = { finished: "text-bg-success", running: "text-bg-primary", failed: "text-bg-danger", lost: "text-bg-danger", stopped: "text-bg-warning" };

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((item) => item.startsWith("csrftoken="));
    if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  async function api(method, url) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    const response = await fetch(url, { method, headers, credentials: "same-origin" });
    const text = await response.text();
    let body = {};
    try {
      body = text ? JSON.parse(text) : {};
    } catch (error) {
      body = {};
    }
    if (!response.ok) throw new Error((body.error && body.error.message) || `The server answered ${response.status}.`);
    return body;
  }

  function setProgress(element, fraction) {
    if (!element) return;
    const percent = Math.max(0, Math.min(100, Math.round((fraction || 0) * 100)));
    element.querySelector(".progress-bar").style.width = percent + "%";
    element.setAttribute("aria-valuenow", String(percent));
  }

  // --- status and progress -------------------------------------------------------------------------
  const badge = document.querySelector("#run-status .badge");
  const progress = document.getElementById("run-progress");
  const stopButton = document.getElementById("run-stop");
  if (progress) setProgress(progress, parseFloat(progress.dataset.progress));

  function setStatus(status) {
    if (!badge || !status) return;
    badge.textContent = status;
    badge.dataset.status = status;
    badge.className = "badge studio-run-status " + (BADGES[status] || "text-bg-secondary");
    if (FINAL.includes(status)) {
      if (stopButton) stopButton.classList.add("d-none");
      if (status === "finished") setProgress(progress, 1);
    }
  }

  // --- charts ----------------------------------------------------------------------------------------
  const pending = {}; // key -> [{step, value}] received before the chart was drawn
  let liveCharts = 0;

  function chartFor(key) {
    const holder = root.querySelector(`[data-metric-key="${CSS.escape(key)}"]`);
    return holder ? holder.querySelector(".studio-chart") : null;
  }

  function newChart(key) {
    const system = key.startsWith("system/");
    const grid = document.getElementById(system ? "system-charts" : "metric-charts");
    const empty = grid.querySelector("[data-empty]");
    if (empty) empty.remove();
    const col = document.createElement("div");
    col.className = "col";
    const card = document.createElement("div");
    card.className = "card";
    const body = document.createElement("div");
    body.className = "card-body p-1";
    body.dataset.metricKey = key;
    const chart = document.createElement("div");
    chart.className = "studio-chart";
    chart.id = `chart-live-${++liveCharts}`;
    chart.setAttribute("role", "img");
    chart.setAttribute("aria-label", key);
    body.append(chart);
    card.append(body);
    col.append(card);
    grid.append(col);
    const color = system ? "#72b7b2" : "#4c78a8";
    const axis = { gridcolor: "#ebf0f8", zerolinecolor: "#ebf0f8", automargin: true };
    window.Plotly.newPlot(
      chart,
      [{ type: "scatter", mode: "lines+markers", name: key, x: [], y: [], line: { color, width: 2 }, marker: { color, size: 4 } }],
      {
        title: { text: key, x: 0.01, xanchor: "left", y: 0.98, yanchor: "top", font: { size: 13 } },
        height: 240, autosize: true, margin: { l: 48, r: 12, t: 30, b: 36 }, showlegend: false, font: { size: 11 },
        paper_bgcolor: "white", plot_bgcolor: "white", xaxis: Object.assign({ title: { text: "step" } }, axis), yaxis: axis,
      },
      { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] },
    );
    chart.dataset.rendered = "true";
    return chart;
  }

  function flush(key) {
    const points = pending[key];
    if (!points || !points.length || typeof window.Plotly === "undefined") return;
    let chart = chartFor(key);
    if (!chart) chart = newChart(key);
    if (!chart.data || !chart.data.length) return; // not drawn yet: charts.js draws it after load
    delete pending[key];
    const xs = chart.data[0].x || [];
    const last = xs.length ? xs[xs.length - 1] : -Infinity;
    const fresh = points.filter((point) => point.step > last).sort((a, b) => a.step - b.step);
    if (!fresh.length) return;
    window.Plotly.extendTraces(chart, { x: [fresh.map((p) => p.step)], y: [fresh.map((p) => p.value)] }, [0]);
  }

  function onMetrics(payload) {
    for (const point of payload.points || []) {
      const value = typeof point.value === "number" ? point.value : null;
      (pending[point.key] = pending[point.key] || []).push({ step: point.step, value });
    }
    Object.keys(pending).forEach(flush);
  }
  // Points that came before plotly drew the charts wait for it.
  const retry = setInterval(() => {
    Object.keys(pending).forEach(flush);
  }, 500);
  window.addEventListener("pagehide", () => clearInterval(retry));

  // --- logs ------------------------------------------------------------------------------------------
  const logs = document.getElementById("run-logs");
  const logsState = document.getElementById("run-logs-state");
  let logsLoaded = false;
  const early = [];

  function appendLog(text) {
    const stick = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 8;
    logs.append(document.createTextNode(text));
    if (stick) logs.scrollTop = logs.scrollHeight;
  }

  async function loadLogs() {
    let after = 0;
    try {
      for (;;) {
        const data = await api("GET", `${root.dataset.logsUrl}?after=${after}`);
        for (const chunk of data.chunks || []) appendLog(chunk.text);
        if (!data.chunks || !data.chunks.length || data.next === after) break;
        after = data.next;
      }
      logsState.textContent = "";
    } catch (error) {
      logsState.textContent = error.message;
    }
    logsLoaded = true;
    // Events that arrived while loading: skip those whose text the API already gave.
    for (const text of early.splice(0)) if (!logs.textContent.endsWith(text)) appendLog(text);
    logs.dataset.state = "ready";
  }

  function onLog(payload) {
    if (!logsLoaded) early.push(payload.text || "");
    else appendLog(payload.text || "");
  }

  // --- events ------------------------------------------------------------------------------------------
  document.addEventListener("studio:event", (event) => {
    const data = event.detail || {};
    const payload = data.payload || {};
    if (data.kind === "run_metrics" && Number(payload.run_id) === runId) onMetrics(payload);
    else if (data.kind === "run_log" && Number(payload.run_id) === runId) onLog(payload);
    else if (data.kind === "run_status" && Number(payload.id) === runId) setStatus(payload.status);
    else if (data.kind === "training_job" && Number(payload.run_id) === runId) {
      if (typeof payload.progress === "number") setProgress(progress, payload.progress);
      const message = document.getElementById("run-message");
      if (message && payload.message) message.textContent = payload.message;
      const jobStatus = document.getElementById("run-job-status");
      if (jobStatus && payload.status) jobStatus.textContent = `job #${payload.id} · ${payload.status}`;
      const error = document.getElementById("run-error");
      if (error && payload.error) error.textContent = payload.error;
      if (payload.status && payload.status !== "running" && payload.status !== "queued") setStatus(payload.status);
      else if (payload.status === "running") setStatus("running");
    }
  });

  if (stopButton && jobId) {
    stopButton.addEventListener("click", async () => {
      stopButton.disabled = true;
      try {
        await api("POST", root.dataset.stopUrl);
        stopButton.textContent = "Stopping…";
      } catch (error) {
        stopButton.disabled = false;
        document.getElementById("run-error").textContent = error.message;
      }
    });
  }

  loadLogs();
})();

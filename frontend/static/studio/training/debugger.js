// The run page's Debugger tab: the tab follows the URL hash (#debugger opens it), its content is
// loaded from the server once (training/views/debugger.py), then it lives from the project events that
// live.js re-broadcasts as `studio:event`: `run_metrics` extend the charts (or the figures of charts not
// drawn yet), a `run_artifact` of a confusion matrix adds its epoch to the slider (and shows it when the
// slider is on the latest epoch), `run_insights` replaces the insights list.
(function () {
  "use strict";
  const root = document.getElementById("run-page");
  const body = document.getElementById("debugger-body");
  if (!root || !body) return;
  const runId = Number(root.dataset.runId);
  const CONFUSION_PATH = /^debugger\/confusion_matrix\/step-(\d+)\.json$/;
  const BADGES = { critical: "text-bg-danger", warning: "text-bg-warning", info: "text-bg-info" };
  let loaded = false;
  const early = []; // events that came before the tab's content

  // --- tab and URL hash ----------------------------------------------------------------------------
  const tabLink = document.getElementById("debugger-tab");
  const overviewLink = document.getElementById("overview-tab");

  function showFromHash() {
    const link = window.location.hash === "#debugger" ? tabLink : overviewLink;
    if (link && window.bootstrap && !link.classList.contains("active")) window.bootstrap.Tab.getOrCreateInstance(link).show();
  }
  document.addEventListener("shown.bs.tab", (event) => {
    if (event.target === tabLink) history.replaceState(null, "", "#debugger");
    else if (event.target === overviewLink && window.location.hash === "#debugger") {
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
  });
  window.addEventListener("hashchange", showFromHash);

  // --- insights ------------------------------------------------------------------------------------
  function setInsightCount(count) {
    const badge = document.getElementById("debugger-insight-count");
    if (!badge) return;
    badge.textContent = count ? String(count) : "";
    badge.classList.toggle("d-none", !count);
  }

  function renderInsights(insights) {
    const list = document.getElementById("run-insights");
    if (!list) return;
    list.replaceChildren();
    if (!insights.length) {
      const item = document.createElement("li");
      item.className = "list-group-item px-0 text-body-secondary";
      item.dataset.empty = "";
      item.textContent = "No insights: the rules found nothing to flag so far.";
      list.append(item);
    }
    for (const insight of insights) {
      const item = document.createElement("li");
      item.className = "list-group-item px-0 d-flex gap-2 align-items-start";
      item.dataset.rule = insight.rule;
      item.dataset.severity = insight.severity;
      const badge = document.createElement("span");
      badge.className = "badge " + (BADGES[insight.severity] || "text-bg-secondary");
      badge.textContent = insight.severity;
      const message = document.createElement("span");
      message.className = "flex-grow-1";
      message.textContent = insight.message;
      item.append(badge, message);
      if (insight.step !== null && insight.step !== undefined) {
        const step = document.createElement("span");
        step.className = "text-body-secondary text-nowrap";
        step.textContent = `step ${insight.step}`;
        item.append(step);
      }
      list.append(item);
    }
    setInsightCount(insights.length);
  }

  // --- charts --------------------------------------------------------------------------------------
  function patternsOf(holder) {
    if (!holder._patterns) {
      let patterns = [];
      try {
        patterns = JSON.parse(holder.dataset.patterns || "[]");
      } catch (error) {
        patterns = [];
      }
      holder._patterns = patterns.map((pattern) => new RegExp("^" + pattern.split("*").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*") + "$"));
    }
    return holder._patterns;
  }

  function newTrace(holder, key, index) {
    const palette = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d"];
    const color = palette[index % palette.length];
    const name = holder.dataset.strip && key.startsWith(holder.dataset.strip) ? key.slice(holder.dataset.strip.length) : key;
    return { type: "scatter", mode: "lines+markers", name, meta: key, x: [], y: [], line: { color, width: 2 }, marker: { color, size: 4 } };
  }

  function usable(holder, value) {
    if (typeof value !== "number" || !isFinite(value)) return null;
    if (holder.dataset.logY !== undefined && value <= 0) return null; // a log axis cannot show it
    return value;
  }

  function extendChart(holder, key, points) {
    const chart = holder.querySelector(".studio-chart");
    if (!chart) return;
    if (chart.data && chart.data.length !== undefined && chart.dataset.rendered === "true") {
      let index = chart.data.findIndex((trace) => trace.meta === key);
      if (index < 0) {
        window.Plotly.addTraces(chart, newTrace(holder, key, chart.data.length));
        index = chart.data.length - 1;
      }
      const xs = chart.data[index].x || [];
      const last = xs.length ? xs[xs.length - 1] : -Infinity;
      const fresh = points.filter((point) => point.step > last);
      if (fresh.length) window.Plotly.extendTraces(chart, { x: [fresh.map((p) => p.step)], y: [fresh.map((p) => usable(holder, p.value))] }, [index]);
      return;
    }
    // Not drawn yet (the tab is hidden): grow the figure charts.js will draw when the tab is shown.
    const source = document.getElementById(chart.dataset.figure);
    if (!source) return;
    let figure;
    try {
      figure = JSON.parse(source.textContent);
    } catch (error) {
      return;
    }
    figure.data = figure.data || [];
    let trace = figure.data.find((item) => item.meta === key);
    if (!trace) {
      trace = newTrace(holder, key, figure.data.length);
      figure.data.push(trace);
    }
    const last = trace.x.length ? trace.x[trace.x.length - 1] : -Infinity;
    for (const point of points) {
      if (point.step <= last) continue;
      trace.x.push(point.step);
      trace.y.push(usable(holder, point.value));
    }
    source.textContent = JSON.stringify(figure);
  }

  function onMetrics(payload) {
    const byKey = {};
    for (const point of payload.points || []) (byKey[point.key] = byKey[point.key] || []).push(point);
    const holders = body.querySelectorAll("[data-debugger-chart]");
    for (const [key, points] of Object.entries(byKey)) {
      points.sort((a, b) => a.step - b.step);
      for (const holder of holders) {
        if (patternsOf(holder).some((pattern) => pattern.test(key))) extendChart(holder, key, points);
      }
    }
  }

  // --- confusion matrix ----------------------------------------------------------------------------
  function slider() {
    return document.getElementById("confusion-matrix-step");
  }

  function stepsOf(input) {
    try {
      return JSON.parse(input.dataset.steps || "[]");
    } catch (error) {
      return [];
    }
  }

  async function showConfusion(step) {
    const input = slider();
    const holder = document.getElementById("confusion-matrix");
    if (!input || !holder) return;
    document.getElementById("confusion-matrix-epoch").textContent = String(step);
    const url = `${input.dataset.url}?step=${encodeURIComponent(step)}`;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      const html = await response.text();
      if (Number(slider().value) !== stepsOf(input).indexOf(step)) return; // the slider moved on
      holder.innerHTML = html;
    } catch (error) {
      holder.textContent = "The confusion matrix could not be loaded.";
    }
    if (window.StudioCharts) window.StudioCharts.render(holder);
  }

  function bindSlider() {
    const input = slider();
    if (!input) return;
    input.addEventListener("input", () => {
      const steps = stepsOf(input);
      const step = steps[Number(input.value)];
      if (step !== undefined) showConfusion(step);
    });
  }

  function onArtifact(payload) {
    const match = CONFUSION_PATH.exec(payload.path || "");
    const input = slider();
    if (!match || !input) return;
    const step = Number(match[1]);
    const steps = stepsOf(input);
    if (steps.includes(step)) return;
    const following = !steps.length || Number(input.value) === steps.length - 1;
    steps.push(step);
    steps.sort((a, b) => a - b);
    input.dataset.steps = JSON.stringify(steps);
    input.max = String(steps.length - 1);
    document.getElementById("confusion-matrix-controls").classList.remove("d-none");
    if (following) {
      input.value = String(steps.length - 1);
      showConfusion(steps[steps.length - 1]);
    }
  }

  // --- events and loading --------------------------------------------------------------------------
  function handle(data) {
    const payload = data.payload || {};
    if (Number(payload.run_id) !== runId) return;
    if (data.kind === "run_metrics") onMetrics(payload);
    else if (data.kind === "run_artifact") onArtifact(payload);
    else if (data.kind === "run_insights") renderInsights(payload.insights || []);
  }

  document.addEventListener("studio:event", (event) => {
    const data = event.detail || {};
    if (!["run_metrics", "run_artifact", "run_insights"].includes(data.kind)) return;
    if (loaded) handle(data);
    else early.push(data);
  });

  async function load() {
    try {
      const response = await fetch(body.dataset.url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error(`The server answered ${response.status}.`);
      body.innerHTML = await response.text();
    } catch (error) {
      body.textContent = `The debugger could not be loaded: ${error.message}`;
      body.dataset.state = "error";
      return;
    }
    const content = document.getElementById("debugger-content");
    setInsightCount(Number(content ? content.dataset.insightCount : 0));
    bindSlider();
    loaded = true;
    for (const data of early.splice(0)) handle(data);
    body.dataset.state = "ready";
    if (window.StudioCharts) window.StudioCharts.render(body);
  }

  showFromHash();
  load();
})();

// The notebooks page: start/stop a server through the API, follow its start, frame its lab when running.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("notebooks-data").textContent);
  const stateBadge = document.getElementById("server-state");
  const startButton = document.getElementById("server-start");
  const stopButton = document.getElementById("server-stop");
  const progress = document.getElementById("server-progress");
  const progressBar = document.getElementById("server-progress-bar");
  const message = document.getElementById("server-message");
  const errorBox = document.getElementById("server-error");
  const empty = document.getElementById("lab-empty");
  const frame = document.getElementById("lab-frame");
  const wantShared = data.selected === "shared";
  const TYPICAL_START_S = 5;
  let server = null;
  let polling = null;

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((item) => item.startsWith("csrftoken="));
    if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (_error) {
      return "";
    }
  }

  async function call(method, url, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["X-CSRFToken"] = csrfToken();
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const payload = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = payload.error || {};
      throw new Error(error.message || `The server answered ${response.status}.`);
    }
    return payload;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function fitFrame() {
    // The lab gets the rest of the window below the studio's bar (no inline styles under our CSP).
    const top = frame.getBoundingClientRect().top + window.scrollY;
    frame.style.height = Math.max(400, window.innerHeight - top - 24) + "px";
  }
  window.addEventListener("resize", fitFrame);

  function render() {
    const state = server ? server.state : "stopped";
    stateBadge.textContent = state;
    stateBadge.className = "badge " + ({ running: "text-bg-success", starting: "text-bg-warning", failed: "text-bg-danger" }[state] || "text-bg-secondary");
    const live = state === "running" || state === "starting";
    startButton.hidden = live;
    stopButton.hidden = !live;
    progress.hidden = state !== "starting";
    if (state === "starting") {
      const elapsed = (Date.now() - Date.parse(server.started_at)) / 1000;
      const percent = Math.min(95, 5 + (90 * elapsed) / TYPICAL_START_S);
      progressBar.style.width = percent.toFixed(0) + "%";
      message.textContent = server.message || "Starting…";
    }
    if (state === "failed" || (state === "stopped" && server && server.message && server.message !== "Stopped.")) {
      showError(server.message);
    }
    if (state === "running") {
      const labUrl = server.lab_url;
      if (frame.getAttribute("src") !== labUrl) frame.setAttribute("src", labUrl);
      frame.hidden = false;
      empty.hidden = true;
      fitFrame();
    } else {
      frame.removeAttribute("src");
      frame.hidden = true;
      empty.hidden = false;
    }
  }

  function follow() {
    if (polling) return;
    polling = setInterval(async () => {
      try {
        server = await call("GET", `${data.servers_url}/${server.id}`);
        render();
        if (server.state !== "starting") {
          clearInterval(polling);
          polling = null;
        }
      } catch (error) {
        showError(error.message);
      }
    }, 500);
  }

  async function load() {
    const body = await call("GET", data.servers_url);
    server = body.results.find((item) => item.is_shared === wantShared) || null;
    render();
    if (server && server.state === "starting") follow();
  }

  startButton.addEventListener("click", async () => {
    showError("");
    startButton.disabled = true;
    try {
      server = await call("POST", data.servers_url, { is_shared: wantShared });
      render();
      if (server.state === "starting") follow();
    } catch (error) {
      showError(error.message);
    } finally {
      startButton.disabled = false;
    }
  });

  stopButton.addEventListener("click", async () => {
    showError("");
    stopButton.disabled = true;
    // Unload the lab first so that its websockets close before the server goes away.
    frame.removeAttribute("src");
    frame.hidden = true;
    empty.hidden = false;
    try {
      server = await call("POST", `${data.servers_url}/${server.id}/stop`);
      render();
    } catch (error) {
      showError(error.message);
    } finally {
      stopButton.disabled = false;
    }
  });

  load().catch((error) => showError(error.message));
})();

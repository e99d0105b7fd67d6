// Live project events over the project websocket: keeps the activity feed current without reload and
// re-broadcasts every event as a `studio:event` DOM event for other widgets on the page.
(function () {
  "use strict";
  const feed = document.getElementById("activity-feed");
  const state = document.getElementById("live-state");
  const projectId = feed ? feed.dataset.projectId : document.body.dataset.projectId;
  if (!projectId) return;

  const template = document.getElementById("activity-item-template");
  let retryMs = 1000;

  function setState(name, label) {
    if (!state) return;
    state.dataset.state = name;
    state.textContent = label;
  }

  function addActivity(event) {
    if (!feed || !template) return;
    const empty = feed.querySelector("[data-empty]");
    if (empty) empty.remove();
    const item = template.content.firstElementChild.cloneNode(true);
    item.querySelector('[data-field="actor"]').textContent = event.actor;
    item.querySelector('[data-field="summary"]').textContent = event.action + (event.target ? " · " + event.target : "");
    item.querySelector('[data-field="time"]').textContent = event.created_at.slice(0, 19).replace("T", " ");
    feed.prepend(item);
    while (feed.children.length > 50) feed.lastElementChild.remove();
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}/ws/projects/${projectId}/`);
    socket.addEventListener("open", () => { retryMs = 1000; setState("live", "live"); });
    socket.addEventListener("message", (message) => {
      const data = JSON.parse(message.data);
      if (data.kind === "activity") addActivity(data.payload);
      document.dispatchEvent(new CustomEvent("studio:event", { detail: data }));
    });
    socket.addEventListener("close", (closed) => {
      if (closed.code === 4403) { setState("denied", "not allowed"); return; }
      setState("offline", "reconnecting…");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    });
  }
  connect();
})();

// A version page: the data grid (server-side paging, sorting, filter expression), the thumbnail grid of
// image datasets, and the live profile progress (the Profile tab is reloaded when the job ends).
(function () {
  "use strict";
  const D = window.StudioDatasets;
  const root = document.getElementById("version-page");
  if (!root || !D) return;
  const versionId = Number(root.dataset.versionId);
  const schema = JSON.parse(document.getElementById("version-schema").textContent || "[]");

  function el(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  /** The rows API's answer as {columns, types, rows (arrays), total}. */
  function normalize(data) {
    let columns = data.columns || [];
    let types = data.types || [];
    if (columns.length && typeof columns[0] === "object") {
      types = columns.map((column) => column.type);
      columns = columns.map((column) => column.name);
    }
    let rows = data.rows || [];
    if (rows.length && !Array.isArray(rows[0])) rows = rows.map((row) => columns.map((name) => row[name]));
    const total = [data.total, data.total_rows, data.row_count, data.count].find((value) => typeof value === "number");
    return { columns, types, rows, total: total === undefined ? null : total };
  }

  function cell(value) {
    const td = el("td");
    if (value === null || value === undefined) {
      td.append(el("span", "text-body-secondary fst-italic", "null"));
    } else {
      const text = D.formatValue(value);
      td.textContent = text.length > 120 ? text.slice(0, 119) + "…" : text;
      if (text.length > 120) td.title = text;
      if (typeof value === "number") td.className = "text-end font-monospace";
    }
    return td;
  }

  // --- data grid ---------------------------------------------------------------------------------
  const grid = {
    table: document.getElementById("grid-table"),
    expressionInput: document.getElementById("grid-expression"),
    error: document.getElementById("grid-error"),
    status: document.getElementById("grid-status"),
    prev: document.getElementById("grid-prev"),
    next: document.getElementById("grid-next"),
    pageSize: document.getElementById("grid-page-size"),
    offset: 0,
    sort: null, // {column, direction}
    expression: "",
    request: 0,
    total: null,
    shown: 0,
  };

  function typeOf(name, fallback) {
    const column = schema.find((item) => item.name === name);
    return column ? column.type : fallback || "";
  }

  function renderGrid(result) {
    const head = grid.table.tHead;
    const body = grid.table.tBodies[0];
    head.replaceChildren();
    body.replaceChildren();
    const headRow = el("tr");
    result.columns.forEach((name, index) => {
      const th = el("th", "text-nowrap");
      th.scope = "col";
      const button = el("button", "btn btn-link btn-sm p-0 fw-semibold text-decoration-none studio-sort");
      button.type = "button";
      button.dataset.column = name;
      button.append(document.createTextNode(name + " "));
      const sorted = grid.sort && grid.sort.column === name;
      const icon = el("i", `bi ${sorted ? (grid.sort.direction === "asc" ? "bi-sort-up" : "bi-sort-down") : "bi-arrow-down-up text-body-tertiary"}`);
      button.append(icon);
      button.setAttribute("aria-label", `Sort by ${name}`);
      th.setAttribute("aria-sort", sorted ? (grid.sort.direction === "asc" ? "ascending" : "descending") : "none");
      th.append(button, el("div", "small fw-normal text-body-secondary", typeOf(name, result.types[index])));
      headRow.append(th);
    });
    head.append(headRow);
    for (const row of result.rows) {
      const tr = el("tr");
      row.forEach((value) => tr.append(cell(value)));
      body.append(tr);
    }
    if (!result.rows.length) {
      const tr = el("tr");
      const td = el("td", "text-body-secondary", grid.expression ? "No row matches the filter." : "No rows.");
      td.colSpan = Math.max(1, result.columns.length);
      tr.append(td);
      body.append(tr);
    }
    grid.total = result.total;
    grid.shown = result.rows.length;
    const first = result.rows.length ? grid.offset + 1 : 0;
    const last = grid.offset + result.rows.length;
    grid.status.textContent = `Rows ${first}–${last}` + (result.total !== null ? ` of ${result.total}` : "");
    grid.prev.disabled = grid.offset === 0;
    const limit = Number(grid.pageSize.value);
    grid.next.disabled = result.total !== null ? last >= result.total : result.rows.length < limit;
  }

  async function loadGrid() {
    if (!grid.table) return;
    const request = ++grid.request;
    const params = new URLSearchParams({ offset: grid.offset, limit: grid.pageSize.value });
    if (grid.sort) params.set("sort", `${grid.sort.column}:${grid.sort.direction}`);
    if (grid.expression) params.set("expression", grid.expression);
    grid.status.textContent = "Loading…";
    grid.table.dataset.state = "loading"; // what the grid shows, for tests: loading | ready | error
    try {
      const data = await D.api("GET", `${root.dataset.rowsUrl}?${params}`);
      if (request !== grid.request) return;
      grid.error.textContent = "";
      grid.expressionInput.classList.remove("is-invalid");
      renderGrid(normalize(data));
      grid.table.dataset.state = "ready";
    } catch (error) {
      if (request !== grid.request) return;
      grid.table.dataset.state = "error";
      grid.error.textContent = error.message;
      grid.expressionInput.classList.toggle("is-invalid", Boolean(grid.expression));
      grid.status.textContent = "";
    }
  }

  if (grid.table) {
    document.getElementById("grid-controls").addEventListener("submit", (event) => {
      event.preventDefault();
      grid.expression = grid.expressionInput.value.trim();
      grid.offset = 0;
      loadGrid();
    });
    document.getElementById("grid-clear").addEventListener("click", () => {
      grid.expressionInput.value = "";
      grid.expression = "";
      grid.offset = 0;
      loadGrid();
    });
    grid.pageSize.addEventListener("change", () => {
      grid.offset = 0;
      loadGrid();
    });
    grid.prev.addEventListener("click", () => {
      grid.offset = Math.max(0, grid.offset - Number(grid.pageSize.value));
      loadGrid();
    });
    grid.next.addEventListener("click", () => {
      grid.offset += Number(grid.pageSize.value);
      loadGrid();
    });
    grid.table.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-column]");
      if (!button) return;
      const column = button.dataset.column;
      if (!grid.sort || grid.sort.column !== column) grid.sort = { column, direction: "asc" };
      else if (grid.sort.direction === "asc") grid.sort = { column, direction: "desc" };
      else grid.sort = null;
      grid.offset = 0;
      loadGrid();
    });
    loadGrid();
  }

  // --- image datasets: thumbnails ------------------------------------------------------------------
  const imageGrid = document.getElementById("image-grid");
  if (imageGrid) {
    const imageColumn = (schema.find((column) => column.type === "image") || { name: "image" }).name;
    const labelColumn = (schema.find((column) => column.name === "label") || schema.find((column) => column.type === "categorical") || {}).name;
    const labelSelect = document.getElementById("image-label");
    const status = document.getElementById("image-status");
    const prev = document.getElementById("image-prev");
    const next = document.getElementById("image-next");
    const pageSize = 24;
    let offset = 0;
    let request = 0;

    function fileUrl(path) {
      const encoded = String(path).split("/").map(encodeURIComponent).join("/");
      return root.dataset.filesUrl.replace(/PATH$/, encoded) + "?thumbnail=1";
    }

    async function loadImages() {
      const current = ++request;
      const params = new URLSearchParams({ offset, limit: pageSize });
      if (labelSelect.value && labelColumn) params.set("expression", `col(${JSON.stringify(labelColumn)}) == ${JSON.stringify(labelSelect.value)}`);
      status.textContent = "Loading…";
      try {
        const result = normalize(await D.api("GET", `${root.dataset.rowsUrl}?${params}`));
        if (current !== request) return;
        const imageIndex = result.columns.indexOf(imageColumn);
        const labelIndex = labelColumn ? result.columns.indexOf(labelColumn) : -1;
        imageGrid.replaceChildren();
        for (const row of result.rows) {
          const path = row[imageIndex];
          const figure = el("figure", "studio-thumb mb-0");
          if (path) {
            const image = el("img", "rounded border");
            image.loading = "lazy";
            image.alt = path;
            image.src = fileUrl(path);
            figure.append(image);
          }
          figure.append(el("figcaption", "small text-truncate", labelIndex >= 0 ? String(row[labelIndex] ?? "") : String(path || "")));
          figure.title = String(path || "");
          imageGrid.append(figure);
        }
        const last = offset + result.rows.length;
        status.textContent = `Images ${result.rows.length ? offset + 1 : 0}–${last}` + (result.total !== null ? ` of ${result.total}` : "");
        prev.disabled = offset === 0;
        next.disabled = result.total !== null ? last >= result.total : result.rows.length < pageSize;
      } catch (error) {
        if (current === request) status.textContent = error.message;
      }
    }
    labelSelect.addEventListener("change", () => {
      offset = 0;
      loadImages();
    });
    prev.addEventListener("click", () => {
      offset = Math.max(0, offset - pageSize);
      loadImages();
    });
    next.addEventListener("click", () => {
      offset += pageSize;
      loadImages();
    });
    loadImages();
  }

  // --- profile: live progress, then the tab reloads -----------------------------------------------------
  const pane = document.getElementById("profile-pane");
  let watching = false;

  async function reloadProfile() {
    try {
      const response = await fetch(root.dataset.profileFragmentUrl, { credentials: "same-origin" });
      if (!response.ok) return;
      pane.innerHTML = await response.text();
    } catch (error) {
      return;
    }
    const spinner = document.querySelector("#profile-tab .spinner-border");
    if (spinner) spinner.remove();
    pane.querySelectorAll("[data-progress]").forEach((element) => D.setProgress(element, parseFloat(element.dataset.progress)));
    if (window.StudioCharts) window.StudioCharts.render(pane);
    watchProfile();
  }

  function watchProfile() {
    const running = document.getElementById("profile-running");
    if (!running || watching) return;
    watching = true;
    const bar = document.getElementById("profile-progress");
    const message = document.getElementById("profile-message");
    let finished = false;
    let timer = null;
    function finish() {
      if (finished) return;
      finished = true;
      watching = false;
      clearInterval(timer);
      document.removeEventListener("studio:event", onEvent);
      reloadProfile();
    }
    function onEvent(event) {
      const data = event.detail || {};
      if (data.kind !== "dataset_profile" || !data.payload || Number(data.payload.version_id) !== versionId) return;
      const payload = data.payload;
      if (payload.status === "done" || payload.status === "failed") {
        D.setProgress(bar, payload.status === "done" ? 1 : 0);
        finish();
        return;
      }
      if (typeof payload.progress === "number") D.setProgress(bar, payload.progress);
      if (payload.message) message.textContent = payload.message;
      running.querySelector("[data-progress-label]").textContent = `${Math.round((payload.progress || 0) * 100)}%`;
    }
    document.addEventListener("studio:event", onEvent);
    // The websocket may connect after a quick profile ended: ask the API too.
    function check() {
      D.api("GET", root.dataset.profileUrl).then((data) => {
        if (data.status === "done" || data.status === "failed" || data.status === "none") finish();
      }, () => {});
    }
    timer = setInterval(check, 2500);
    setTimeout(check, 500);
  }
  watchProfile();
})();

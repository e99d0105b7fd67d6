// The recipe builder: ordered steps from a palette, each with a small form; a live preview of the first
// rows after the selected step (POST recipes/preview, debounced), errors shown on the step they name;
// save (POST/PUT recipes) and apply (a job whose progress is shown, with a link to the new version).
(function () {
  "use strict";
  const D = window.StudioDatasets;
  const root = document.getElementById("recipe-builder");
  if (!root || !D) return;
  const data = JSON.parse(document.getElementById("builder-data").textContent);
  const joinChoices = JSON.parse(document.getElementById("join-choices").textContent || "[]");
  const urls = { jobUrl: root.dataset.jobUrl, versionUrl: root.dataset.versionUrl };

  // The palette: each step type, its label, and the fields of its form (`key` is the API parameter;
  // the parameters are those of datasets/recipes.py, which refuses unknown ones).
  const CAST_TARGETS = ["numeric", "integer", "text", "categorical", "boolean", "datetime"].map((name) => [name, name]);
  const STEPS = {
    select: { label: "Select columns", fields: [{ key: "columns", label: "Columns to keep", kind: "columns" }] },
    drop: { label: "Drop columns", fields: [{ key: "columns", label: "Columns", kind: "columns" }] },
    rename: { label: "Rename columns", fields: [{ key: "mapping", label: "New names", kind: "mapping" }] },
    cast: {
      label: "Cast type",
      fields: [
        { key: "column", label: "Column", kind: "column" },
        { key: "to", label: "New type", kind: "choice", options: CAST_TARGETS, default: "numeric" },
      ],
    },
    filter: { label: "Filter rows", fields: [{ key: "expression", label: "Keep rows where", kind: "expression", placeholder: 'amount > 100 and city != "Nice"' }] },
    fill_missing: {
      label: "Fill missing values",
      fields: [
        { key: "columns", label: "Columns (none: every numeric column)", kind: "columns", optional: true },
        { key: "strategy", label: "Fill with", kind: "choice", options: [["mean", "mean"], ["median", "median"], ["mode", "mode (most frequent)"], ["constant", "a constant"]], default: "mean" },
        { key: "value", label: "Constant", kind: "scalar", when: (step) => step.strategy === "constant" },
      ],
    },
    drop_duplicates: { label: "Drop duplicate rows", fields: [{ key: "columns", label: "Compare columns (none: all)", kind: "columns", optional: true }] },
    one_hot: {
      label: "One-hot encode",
      fields: [
        { key: "column", label: "Column", kind: "column" },
        { key: "max_categories", label: "At most this many categories", kind: "number", step: "1", placeholder: "50", optional: true },
        { key: "prefix", label: "Prefix of the new columns", kind: "text", placeholder: "<column>_", optional: true },
      ],
    },
    ordinal: {
      label: "Ordinal encode",
      fields: [
        { key: "column", label: "Column", kind: "column" },
        { key: "order", label: "Order (comma-separated; empty: sorted values)", kind: "list", placeholder: "low, medium, high", optional: true },
      ],
    },
    scale: {
      label: "Scale",
      fields: [
        { key: "columns", label: "Columns", kind: "columns" },
        { key: "method", label: "Method", kind: "choice", options: [["standard", "standard (z-score)"], ["minmax", "min–max to [0, 1]"]], default: "standard" },
      ],
    },
    derive: {
      label: "Derive a column",
      fields: [
        { key: "name", label: "New column", kind: "text", placeholder: "amount_k" },
        { key: "expression", label: "Expression", kind: "expression", placeholder: "amount / 1000" },
      ],
    },
    join: {
      label: "Join another version",
      fields: [
        { key: "version_id", label: "Version", kind: "version" },
        { key: "on", label: "Join on (columns in both)", kind: "columns" },
        { key: "how", label: "Join type", kind: "choice", options: [["inner", "inner"], ["left", "left"], ["right", "right"], ["outer", "full outer"]], default: "inner" },
      ],
    },
    split: {
      label: "Train/validation/test split",
      fields: [
        { key: "ratios", label: "Fractions", kind: "ratios", default: { train: 0.7, validation: 0.15, test: 0.15 } },
        { key: "seed", label: "Seed", kind: "number", step: "1", default: 42 },
        { key: "stratify", label: "Stratify by (optional)", kind: "column", optional: true },
        { key: "column", label: "Split column name", kind: "text", placeholder: "split", optional: true },
      ],
    },
  };

  const PREVIEW_ROWS = 20;
  // A step just added and not yet filled in shows what it needs as a hint, not as an error.
  const touched = new WeakSet();
  const state = {
    // Saved steps carry what they were fitted to ("fitted"); the preview fits them again to this version.
    steps: data.recipe ? data.recipe.steps.map(({ fitted, ...step }) => step) : [],
    selected: -1,
    // columnsAfter[k]: the columns after the first k steps ([{name, type}]); [0] is the source schema.
    columnsAfter: [data.schema.map((column) => ({ name: column.name, type: column.type }))],
    rowsAfter: {},
    errors: {},
    recipeId: data.recipe ? data.recipe.id : null,
    savedSteps: null,
    generation: 0,
  };
  state.selected = state.steps.length - 1;
  if (data.recipe) state.savedSteps = JSON.stringify(state.steps);
  state.steps.forEach((step) => touched.add(step));

  const list = document.getElementById("recipe-steps");
  const previewTable = document.getElementById("preview-table");
  const previewTitle = document.getElementById("preview-title");
  const previewShape = document.getElementById("preview-shape");
  const previewError = document.getElementById("preview-error");
  const spinner = document.getElementById("preview-spinner");

  function el(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  /** A DuckDB type of the preview as the column type the schema would call it (datasets/duck.py). */
  function studioType(duckType) {
    const name = String(duckType || "").toUpperCase();
    if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL)/.test(name)) return "numeric";
    if (name === "BOOLEAN") return "boolean";
    if (/^(DATE|TIMESTAMP)/.test(name)) return "datetime";
    return name ? "text" : "";
  }

  function columnsFor(index) {
    for (let k = index; k >= 0; k -= 1) if (state.columnsAfter[k]) return state.columnsAfter[k];
    return [];
  }

  // --- step forms ----------------------------------------------------------------------------------

  function setParam(index, key, value) {
    const step = state.steps[index];
    touched.add(step);
    const empty = value === "" || value === null || value === undefined || (Array.isArray(value) && !value.length) || (typeof value === "number" && Number.isNaN(value));
    if (empty) delete step[key];
    else step[key] = value;
    changed(index);
  }

  function columnOptions(select, columns, selected, placeholder) {
    const chosen = new Set([].concat(selected || []));
    select.replaceChildren();
    if (placeholder !== undefined) select.append(new Option(placeholder, ""));
    const names = columns.map((column) => column.name);
    for (const column of columns) {
      const option = new Option(column.type ? `${column.name} · ${column.type}` : column.name, column.name);
      option.selected = chosen.has(column.name);
      select.append(option);
    }
    // A chosen column the previous steps no longer produce stays visible, so the error makes sense.
    for (const name of chosen) {
      if (name && !names.includes(name)) {
        const option = new Option(`${name} (missing)`, name);
        option.selected = true;
        select.append(option);
      }
    }
  }

  function fieldControl(index, field) {
    const step = state.steps[index];
    const id = `step-${index}-${field.key}`;
    const wrap = el("div", "mb-2");
    wrap.dataset.field = field.key;
    const label = el("label", "form-label small mb-1", field.label);
    label.htmlFor = id;
    wrap.append(label);
    const columns = columnsFor(index);
    let control;
    if (field.kind === "columns") {
      control = el("select", "form-select form-select-sm");
      control.multiple = true;
      control.size = Math.min(6, Math.max(3, columns.length));
      columnOptions(control, columns, step[field.key]);
      control.addEventListener("change", () => setParam(index, field.key, Array.from(control.selectedOptions).map((option) => option.value)));
      wrap.append(control, el("div", "form-text mt-0", "Ctrl/⌘-click to choose several."));
    } else if (field.kind === "column") {
      control = el("select", "form-select form-select-sm");
      columnOptions(control, columns, step[field.key], field.optional ? "— none —" : "— choose —");
      control.addEventListener("change", () => setParam(index, field.key, control.value));
    } else if (field.kind === "choice") {
      control = el("select", "form-select form-select-sm");
      for (const [value, text] of field.options) control.append(new Option(text, value, false, step[field.key] === value));
      control.addEventListener("change", () => {
        const step = state.steps[index];
        step[field.key] = control.value;
        // Parameters of fields this choice hides are dropped: the API refuses them (fill value).
        for (const other of STEPS[step.type].fields) if (other.when && !other.when(step)) delete step[other.key];
        setParam(index, field.key, control.value);
        renderStepBody(index);
      });
    } else if (field.kind === "version") {
      control = el("select", "form-select form-select-sm");
      control.append(new Option("— choose —", ""));
      for (const choice of joinChoices) control.append(new Option(choice.label, String(choice.id), false, Number(step[field.key]) === choice.id));
      control.addEventListener("change", () => setParam(index, field.key, control.value ? Number(control.value) : ""));
    } else if (field.kind === "mapping") {
      return mappingControl(index, field, wrap, columns);
    } else if (field.kind === "ratios") {
      return ratiosControl(index, field, wrap);
    } else {
      control = el("input", "form-control form-control-sm" + (field.kind === "expression" ? " font-monospace" : ""));
      control.autocomplete = "off";
      if (field.kind === "number") {
        control.type = "number";
        control.step = field.step || "any";
      }
      if (field.placeholder) control.placeholder = field.placeholder;
      const current = step[field.key];
      control.value = current === undefined || current === null ? "" : Array.isArray(current) ? current.join(", ") : String(current);
      control.addEventListener("input", () => setParam(index, field.key, parseInput(field.kind, control.value)));
    }
    control.id = id;
    control.dataset.kind = field.kind;
    wrap.prepend(label);
    wrap.insertBefore(control, label.nextSibling);
    return wrap;
  }

  /** A typed value from a text box: numbers for number fields, lists split at commas, scalars guessed. */
  function parseInput(kind, raw) {
    const text = raw.trim();
    if (kind === "number") return text === "" ? "" : Number(text);
    if (kind === "list") {
      const items = text ? text.split(",").map((item) => item.trim()).filter(Boolean) : [];
      return items.length && items.every((item) => item !== "" && !Number.isNaN(Number(item))) ? items.map(Number) : items;
    }
    if (kind === "scalar") {
      if (text === "") return "";
      if (text === "true" || text === "false") return text === "true";
      return !Number.isNaN(Number(text)) ? Number(text) : raw;
    }
    return raw;
  }

  /** Split: one fraction per part (train, validation, test); a part left at 0 is left out. */
  function ratiosControl(index, field, wrap) {
    const step = state.steps[index];
    const ratios = Object.assign({}, step[field.key] || {});
    const row = el("div", "row g-1");
    for (const part of ["train", "validation", "test"]) {
      const column = el("div", "col");
      const id = `step-${index}-${field.key}-${part}`;
      const label = el("label", "form-label small mb-0 text-body-secondary", part[0].toUpperCase() + part.slice(1));
      label.htmlFor = id;
      const input = el("input", "form-control form-control-sm");
      input.type = "number";
      input.step = "0.05";
      input.min = "0";
      input.max = "1";
      input.id = id;
      input.value = ratios[part] === undefined ? "0" : String(ratios[part]);
      input.dataset.part = part;
      input.addEventListener("input", () => {
        const value = {};
        row.querySelectorAll("input[data-part]").forEach((box) => {
          const fraction = Number(box.value);
          if (box.value.trim() !== "" && fraction > 0) value[box.dataset.part] = fraction;
        });
        setParam(index, field.key, Object.keys(value).length ? value : "");
      });
      column.append(label, input);
      row.append(column);
    }
    wrap.append(row);
    return wrap;
  }

  /** Rename: one row per renamed column (column → new name), and a button for one more. */
  function mappingControl(index, field, wrap, columns) {
    const step = state.steps[index];
    const pairs = Object.entries(step[field.key] || {});
    if (!pairs.length) pairs.push(["", ""]);
    const rows = el("div", "d-flex flex-column gap-1");
    function commit() {
      const mapping = {};
      rows.querySelectorAll("[data-pair]").forEach((row) => {
        const from = row.querySelector("select").value;
        const to = row.querySelector("input").value;
        if (from) mapping[from] = to;
      });
      setParam(index, field.key, Object.keys(mapping).length ? mapping : "");
    }
    pairs.forEach(([from, to], pairIndex) => {
      const row = el("div", "input-group input-group-sm");
      row.dataset.pair = String(pairIndex);
      const select = el("select", "form-select");
      select.id = pairIndex === 0 ? `step-${index}-${field.key}` : `step-${index}-${field.key}-${pairIndex}`;
      select.setAttribute("aria-label", `Column to rename${pairIndex ? " " + (pairIndex + 1) : ""}`);
      columnOptions(select, columns, from, "— column —");
      const input = el("input", "form-control");
      input.value = to;
      input.placeholder = "new name";
      input.setAttribute("aria-label", `New name${pairIndex ? " " + (pairIndex + 1) : ""}`);
      select.addEventListener("change", commit);
      input.addEventListener("input", commit);
      row.append(select, el("span", "input-group-text", "→"), input);
      rows.append(row);
    });
    const more = el("button", "btn btn-link btn-sm p-0 mt-1", "+ another column");
    more.type = "button";
    more.addEventListener("click", () => {
      const mapping = Object.assign({}, step[field.key] || {});
      mapping[""] = "";
      step[field.key] = mapping;
      renderStepBody(index);
    });
    wrap.querySelector("label").htmlFor = `step-${index}-${field.key}`;
    wrap.append(rows, more);
    return wrap;
  }

  function renderStepBody(index) {
    const item = list.querySelector(`[data-step-index="${index}"]`);
    if (!item) return;
    const body = item.querySelector("[data-step-body]");
    const step = state.steps[index];
    const spec = STEPS[step.type];
    body.replaceChildren();
    if (!spec) {
      body.append(el("pre", "small mb-0", JSON.stringify(step)));
      return;
    }
    for (const field of spec.fields) {
      if (field.when && !field.when(step)) continue;
      body.append(fieldControl(index, field));
    }
    item.dataset.columns = columnsFor(index).map((column) => column.name).join("\u0000");
  }

  function iconButton(icon, label, action, disabled) {
    const button = el("button", "btn btn-sm btn-outline-secondary");
    button.type = "button";
    button.dataset.action = action;
    button.setAttribute("aria-label", label);
    button.title = label;
    button.disabled = Boolean(disabled);
    button.append(el("i", `bi ${icon}`));
    return button;
  }

  function renderSteps() {
    list.querySelectorAll("[data-step-index]:not(#source-step)").forEach((item) => item.remove());
    state.steps.forEach((step, index) => {
      const spec = STEPS[step.type] || { label: step.type };
      const item = el("div", "list-group-item studio-step");
      item.dataset.stepIndex = String(index);
      item.dataset.stepType = step.type;
      const header = el("div", "d-flex align-items-center gap-1 mb-2");
      const title = el("button", "btn btn-link btn-sm p-0 me-auto fw-semibold text-decoration-none text-start studio-step-title");
      title.type = "button";
      title.dataset.action = "select";
      title.textContent = `${index + 1}. ${spec.label}`;
      const tools = el("div", "btn-group");
      tools.append(
        iconButton("bi-arrow-up", `Move step ${index + 1} up`, "up", index === 0),
        iconButton("bi-arrow-down", `Move step ${index + 1} down`, "down", index === state.steps.length - 1),
        iconButton("bi-trash", `Remove step ${index + 1}`, "remove"),
      );
      header.append(title, tools);
      const body = el("div");
      body.dataset.stepBody = "";
      const error = el("div", "alert alert-danger small py-1 px-2 mb-0 mt-1 d-none");
      error.dataset.stepError = "";
      error.setAttribute("role", "alert");
      item.append(header, body, error);
      list.append(item);
      renderStepBody(index);
    });
    renderSelection();
    renderErrors();
  }

  function renderSelection() {
    list.querySelectorAll("[data-step-index]").forEach((item) => {
      const active = Number(item.dataset.stepIndex) === state.selected;
      item.classList.toggle("studio-step-selected", active);
      item.setAttribute("aria-current", active ? "step" : "false");
    });
    const spec = state.selected >= 0 ? STEPS[state.steps[state.selected].type] : null;
    previewTitle.textContent = state.selected < 0 ? "of the source" : `after step ${state.selected + 1}${spec ? " · " + spec.label : ""}`;
  }

  function renderErrors() {
    list.querySelectorAll("[data-step-index]:not(#source-step)").forEach((item) => {
      const index = Number(item.dataset.stepIndex);
      const message = state.errors[index];
      const isHint = Boolean(message) && !touched.has(state.steps[index]);
      const box = item.querySelector("[data-step-error]");
      box.textContent = message || "";
      box.classList.toggle("d-none", !message);
      box.classList.toggle("alert-danger", !isHint);
      box.classList.toggle("alert-light", isHint);
      item.classList.toggle("studio-step-invalid", Boolean(message) && !isHint);
    });
  }

  /** Column pickers follow the columns the previous steps produce (known once previewed). */
  function refreshPickers() {
    state.steps.forEach((step, index) => {
      const item = list.querySelector(`[data-step-index="${index}"]`);
      if (!item) return;
      const signature = columnsFor(index).map((column) => column.name).join("\u0000");
      if (item.dataset.columns === signature) return;
      if (item.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
      renderStepBody(index);
    });
  }

  // --- the live preview ----------------------------------------------------------------------------

  let timer = null;
  function changed(index) {
    for (let k = index + 1; k < state.columnsAfter.length; k += 1) state.columnsAfter[k] = undefined;
    for (const key of Object.keys(state.rowsAfter)) if (Number(key) > index) delete state.rowsAfter[key];
    state.errors = {};
    clearTimeout(timer);
    timer = setTimeout(refresh, 350);
  }

  function preview(count, limit) {
    return D.api("POST", root.dataset.previewUrl, {
      version_id: data.versionId,
      steps: state.steps.slice(0, count),
      upto: count,
      limit,
    });
  }

  /** The first required field of `step` that is still empty, or null. */
  function missingField(step) {
    const spec = STEPS[step.type];
    if (!spec) return null;
    for (const field of spec.fields) {
      if (field.optional || (field.when && !field.when(step))) continue;
      const value = step[field.key];
      const empty = value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length);
      if (empty || (field.kind === "mapping" && !Object.keys(value).some(Boolean))) return field;
    }
    return null;
  }

  function stepOfError(error, count) {
    const step = error.detail && typeof error.detail.step === "number" ? error.detail.step : null;
    return step !== null && step < count ? step : Math.max(0, count - 1);
  }

  /** Walk the steps up to the selected one: learn each step's columns, show the selected step's rows. */
  async function refresh() {
    const generation = ++state.generation;
    const target = state.selected + 1; // rows after this many steps
    spinner.classList.remove("d-none");
    previewTable.dataset.state = "loading";
    let failure = null;
    try {
      const last = Math.max(target, state.steps.length);
      for (let count = 0; count <= last; count += 1) {
        const wantRows = count === target;
        if (state.columnsAfter[count] && (!wantRows || state.rowsAfter[count])) continue;
        if (count > state.steps.length) break;
        const missing = count > 0 ? missingField(state.steps[count - 1]) : null;
        if (missing) {
          // A step not filled in yet is not sent: the API would only answer 4xx (404 for a join).
          const message = `Fill in “${missing.label}”.`;
          state.errors[count - 1] = message;
          failure = { error: new Error(message), step: count - 1 };
          break;
        }
        let result;
        try {
          result = await preview(count, wantRows ? PREVIEW_ROWS : 1);
        } catch (error) {
          if (generation !== state.generation) return;
          if (count === 0) throw error;
          state.errors[stepOfError(error, count)] = error.message;
          failure = { error, step: stepOfError(error, count) };
          break;
        }
        if (generation !== state.generation) return;
        state.columnsAfter[count] = result.columns.map((name, index) => {
          const type = studioType((result.types || [])[index]);
          const source = data.schema.find((column) => column.name === name);
          // Text in DuckDB is categorical, text or an image path to us: keep what the schema said.
          return { name, type: source && type === "text" && ["categorical", "image"].includes(source.type) ? source.type : type };
        });
        if (wantRows) state.rowsAfter[count] = result;
      }
    } catch (error) {
      failure = { error, step: null };
    } finally {
      if (generation === state.generation) spinner.classList.add("d-none");
    }
    if (generation !== state.generation) return;
    renderErrors();
    refreshPickers();
    const rows = state.rowsAfter[target];
    // The table says what it shows, for people (the title) and for tests (data-after-steps, data-state).
    previewTable.dataset.afterSteps = String(target);
    if (rows) {
      previewError.classList.add("d-none");
      renderTable(rows);
      previewTable.dataset.state = "ready";
    } else if (failure) {
      previewTable.dataset.state = "error";
      const named = /^step \d/i.test(failure.error.message);
      const where = !named && failure.step !== null && failure.step < target ? `Step ${failure.step + 1}: ` : "";
      previewError.textContent = where + failure.error.message;
      previewError.classList.remove("d-none");
      previewTable.tHead.replaceChildren();
      previewTable.tBodies[0].replaceChildren();
      previewShape.textContent = "";
    }
  }

  function renderTable(result) {
    const head = previewTable.tHead;
    const body = previewTable.tBodies[0];
    head.replaceChildren();
    body.replaceChildren();
    const headRow = el("tr");
    result.columns.forEach((name, index) => {
      const th = el("th", "text-nowrap", name);
      th.scope = "col";
      const duckType = (result.types || [])[index] || "";
      const source = data.schema.find((column) => column.name === name);
      const type = studioType(duckType);
      const typeLabel = el("div", "small fw-normal text-body-secondary", source && type === "text" ? source.type : type);
      typeLabel.title = duckType;
      th.append(typeLabel);
      headRow.append(th);
    });
    head.append(headRow);
    for (const row of result.rows) {
      const tr = el("tr");
      row.forEach((value) => {
        const td = el("td");
        if (value === null || value === undefined) td.append(el("span", "text-body-secondary fst-italic", "null"));
        else {
          const text = D.formatValue(value);
          td.textContent = text.length > 80 ? text.slice(0, 79) + "…" : text;
          if (typeof value === "number") td.className = "text-end font-monospace";
        }
        tr.append(td);
      });
      body.append(tr);
    }
    if (!result.rows.length) {
      const tr = el("tr");
      const td = el("td", "text-body-secondary", "No rows after this step.");
      td.colSpan = Math.max(1, result.columns.length);
      tr.append(td);
      body.append(tr);
    }
    previewShape.textContent = `${result.columns.length} columns · first ${result.rows.length} rows`;
  }

  // --- steps: add, select, move, remove ------------------------------------------------------------

  document.getElementById("add-step-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const type = document.getElementById("step-type").value;
    const step = { type };
    for (const field of STEPS[type].fields) if (field.default !== undefined) step[field.key] = JSON.parse(JSON.stringify(field.default));
    const index = state.selected + 1; // after the selected step (the end, usually)
    state.steps.splice(index, 0, step);
    state.selected = index;
    renderSteps();
    changed(index);
    const first = list.querySelector(`[data-step-index="${index}"] select, [data-step-index="${index}"] input`);
    if (first) first.focus();
  });

  list.addEventListener("click", (event) => {
    const item = event.target.closest("[data-step-index]");
    if (!item) return;
    const index = Number(item.dataset.stepIndex);
    const button = event.target.closest("button[data-action]");
    const action = button && item.id !== "source-step" ? button.dataset.action : null;
    const onControl = event.target.closest("input, select, textarea, label, option, button");
    if (action === "select" || item.id === "source-step" || (!action && !onControl)) {
      if (state.selected === index) return;
      state.selected = index;
      renderSelection();
      clearTimeout(timer);
      refresh();
    } else if (action === "up" || action === "down") {
      const other = action === "up" ? index - 1 : index + 1;
      [state.steps[index], state.steps[other]] = [state.steps[other], state.steps[index]];
      if (state.selected === index) state.selected = other;
      else if (state.selected === other) state.selected = index;
      renderSteps();
      changed(Math.min(index, other));
    } else if (action === "remove") {
      state.steps.splice(index, 1);
      if (state.selected >= index) state.selected -= 1;
      renderSteps();
      changed(index);
    }
  });

  // --- save and apply ----------------------------------------------------------------------------------

  const builderError = document.getElementById("builder-error");
  function showError(message) {
    if (!builderError) return;
    builderError.textContent = message || "";
    builderError.classList.toggle("d-none", !message);
  }

  function showStepError(error) {
    if (error.detail && typeof error.detail.step === "number") {
      state.errors[error.detail.step] = error.message;
      renderErrors();
    }
  }

  const saveForm = document.getElementById("save-form");
  if (saveForm) {
    const status = document.getElementById("save-status");
    saveForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      status.textContent = "";
      const body = {
        name: document.getElementById("recipe-name").value.trim(),
        description: document.getElementById("recipe-description").value,
        version_id: data.versionId,
        steps: state.steps,
      };
      if (!body.name) {
        showError("name: give the recipe a name.");
        return;
      }
      try {
        const recipe = state.recipeId
          ? await D.api("PUT", D.fromTemplate(root.dataset.recipeUrl, state.recipeId), body)
          : await D.api("POST", root.dataset.recipesUrl, body);
        state.recipeId = recipe.id;
        state.savedSteps = JSON.stringify(state.steps);
        document.getElementById("recipe-title").textContent = recipe.name;
        status.className = "small ms-2 text-success";
        status.textContent = `Saved recipe ${recipe.name}.`;
        const query = new URLSearchParams({ recipe: recipe.id, version: data.versionId });
        window.history.replaceState(null, "", `${root.dataset.builderUrl}?${query}`);
      } catch (error) {
        showStepError(error);
        showError(error.message);
      }
    });
  }

  const applyForm = document.getElementById("apply-form");
  if (applyForm) {
    const button = document.getElementById("apply-recipe");
    applyForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      const body = { version_id: data.versionId, dataset_name: document.getElementById("apply-dataset-name").value.trim() };
      // The saved recipe, unchanged: apply it by id so the new version names its recipe.
      if (state.recipeId && state.savedSteps === JSON.stringify(state.steps)) body.recipe_id = state.recipeId;
      else body.steps = state.steps;
      button.disabled = true;
      try {
        const job = await D.api("POST", root.dataset.applyUrl, body);
        D.showJob(document.getElementById("apply-jobs"), job, urls);
      } catch (error) {
        showStepError(error);
        showError(error.message);
      } finally {
        button.disabled = false;
      }
    });
  }

  renderSteps();
  refresh();
})();

// Runs list: tick runs to compare. The selection lives in sessionStorage (per project), so it survives
// searching, ordering and paging; the Compare button opens training:compare with ?runs=<ids> once 2 or
// more runs are ticked, and no more than the page's maximum (10) can be ticked.
(function () {
  "use strict";
  const root = document.getElementById("runs-page");
  const box = document.getElementById("compare-selection");
  if (!root || !box) return;
  const storageKey = "studio:compare-runs:" + root.dataset.studioProject;
  const maxRuns = Number(box.dataset.maxRuns) || 10;
  const button = document.getElementById("compare-runs");
  const count = document.getElementById("compare-count");
  const clear = document.getElementById("compare-clear");
  const checkboxes = Array.from(document.querySelectorAll("input.run-select"));

  function load() {
    try {
      const ids = JSON.parse(window.sessionStorage.getItem(storageKey) || "[]");
      return Array.isArray(ids) ? ids.map(String).filter((id) => /^\d+$/.test(id)).slice(0, maxRuns) : [];
    } catch (error) {
      return [];
    }
  }

  let selected = load();

  function save() {
    try {
      window.sessionStorage.setItem(storageKey, JSON.stringify(selected));
    } catch (error) {
      // Storage refused (private mode, quota): the selection still works on this page.
    }
  }

  function update() {
    const isFull = selected.length >= maxRuns;
    for (const checkbox of checkboxes) {
      checkbox.checked = selected.includes(checkbox.value);
      checkbox.disabled = isFull && !checkbox.checked;
    }
    button.disabled = selected.length < 2;
    clear.classList.toggle("d-none", selected.length === 0);
    if (selected.length === 0) count.textContent = `Tick 2 to ${maxRuns} runs to compare them`;
    else if (isFull) count.textContent = `${selected.length} selected (the most that can be compared)`;
    else count.textContent = `${selected.length} selected`;
  }

  for (const checkbox of checkboxes) {
    checkbox.addEventListener("change", () => {
      if (checkbox.checked && !selected.includes(checkbox.value) && selected.length < maxRuns) {
        selected.push(checkbox.value);
      } else if (!checkbox.checked) {
        selected = selected.filter((id) => id !== checkbox.value);
      }
      save();
      update();
    });
  }
  clear.addEventListener("click", () => {
    selected = [];
    save();
    update();
  });
  button.addEventListener("click", () => {
    if (selected.length < 2) return;
    window.location.assign(`${box.dataset.compareUrl}?runs=${selected.join(",")}`);
  });
  update();
})();

// The "New study" form: rows of the search-space editor are added from a <template>, and the name
// field suggests the chosen trainer's hyperparameters (from the json_script the page carries).
(function () {
  "use strict";
  const form = document.getElementById("study-form");
  if (!form) return;
  const rows = document.getElementById("study-space-rows");
  const template = document.getElementById("study-space-row-template");
  const names = document.getElementById("study-hyperparameter-names");
  const trainerSelect = document.getElementById("study-trainer");
  const trainers = JSON.parse(document.getElementById("study-trainers").textContent);

  function suggestNames() {
    const trainer = trainers.find((item) => item.name === trainerSelect.value);
    names.replaceChildren();
    if (!trainer) return;
    for (const parameter of trainer.hyperparameters) {
      const option = document.createElement("option");
      option.value = parameter.name;
      const range = parameter.choices ? parameter.choices.join(", ") : `${parameter.min ?? ""}..${parameter.max ?? ""}`;
      option.label = `${parameter.type} ${range}`;
      names.appendChild(option);
    }
  }

  document.getElementById("study-space-add").addEventListener("click", () => {
    const used = Array.from(rows.querySelectorAll("input[name$='-name']")).map((input) => Number(input.name.split("-")[1]));
    const index = used.length ? Math.max(...used) + 1 : 0;
    const html = template.innerHTML.replaceAll("__index__", String(index));
    rows.insertAdjacentHTML("beforeend", html);
    rows.lastElementChild.querySelector("input").focus();
  });
  const scriptField = document.getElementById("study-script-field");
  function showScript() {
    scriptField.classList.toggle("d-none", trainerSelect.value !== "");
  }
  trainerSelect.addEventListener("change", () => { suggestNames(); showScript(); });
  suggestNames();
  showScript();
})();

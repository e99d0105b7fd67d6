// The New training form: choosing another dataset version or trainer rebuilds the form on the server
// (target choices and hyperparameter fields follow them) and swaps it in place, keeping what was typed.
// One listener on the document: it is there before and after every swap, so no change is missed.
(function () {
  "use strict";
  const FIELDS = new Set(["train-version", "train-trainer"]);
  document.addEventListener("change", function (event) {
    const select = event.target;
    if (!(select instanceof HTMLSelectElement) || !FIELDS.has(select.id) || !select.form) return;
    const form = select.form;
    const params = new URLSearchParams(new FormData(form));
    params.delete("csrfmiddlewaretoken");
    window.htmx.ajax("GET", form.dataset.refreshUrl + "?" + params.toString(), {
      target: "#trainer-form",
      swap: "outerHTML",
    });
  });
})();

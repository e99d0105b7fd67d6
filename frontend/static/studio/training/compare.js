// The compare page's metric picker: "All metrics" shows every overlaid chart; one metric shows its
// chart alone and switches the parallel-coordinates chart to it. Charts shown for the first time are
// drawn then (charts.js draws only visible ones: plotly measures its container when it draws).
(function () {
  "use strict";
  const picker = document.getElementById("compare-metric");
  if (!picker) return;
  const curves = Array.from(document.querySelectorAll("#compare-curves [data-metric-key]"));
  const parcoords = Array.from(document.querySelectorAll("#compare-parcoords [data-metric-key]"));

  function show(elements, isShown) {
    for (const element of elements) {
      element.classList.toggle("d-none", !isShown(element));
      if (!element.classList.contains("d-none") && window.StudioCharts) window.StudioCharts.render(element);
    }
  }

  picker.addEventListener("change", () => {
    const key = picker.value;
    show(curves, (element) => !key || element.dataset.metricKey === key);
    const fallback = parcoords.length ? parcoords[0].dataset.metricKey : "";
    show(parcoords, (element) => element.dataset.metricKey === (key || fallback));
  });
})();

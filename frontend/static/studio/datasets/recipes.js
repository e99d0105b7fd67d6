// The recipes list: the recent recipe jobs follow their progress live.
(function () {
  "use strict";
  const root = document.getElementById("recipes-page");
  if (!root || !window.StudioDatasets) return;
  window.StudioDatasets.bindJobs(document.getElementById("job-list"), { jobUrl: root.dataset.jobUrl, versionUrl: root.dataset.versionUrl });
})();

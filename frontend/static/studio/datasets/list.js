// The datasets list: upload a file with a real progress bar (XHR, the file as the raw body), import from
// a URL, then follow the conversion job live and link to the new version.
(function () {
  "use strict";
  const D = window.StudioDatasets;
  const root = document.getElementById("datasets-page");
  if (!root || !D) return;
  const urls = { jobUrl: root.dataset.jobUrl, versionUrl: root.dataset.versionUrl };
  const jobList = document.getElementById("job-list");
  D.bindJobs(jobList, urls);

  function showError(element, message) {
    element.textContent = message;
    element.classList.toggle("d-none", !message);
  }

  // --- upload ------------------------------------------------------------------------------------
  const form = document.getElementById("upload-form");
  if (form) {
    const fileInput = document.getElementById("upload-file");
    const nameInput = document.getElementById("upload-name");
    const progress = document.getElementById("upload-progress");
    const status = document.getElementById("upload-status");
    const error = document.getElementById("upload-error");
    const button = document.getElementById("upload-button");

    fileInput.addEventListener("change", () => {
      const file = fileInput.files[0];
      if (file && !nameInput.value.trim()) nameInput.value = file.name.replace(/\.[^.]+$/, "").slice(0, 100);
    });

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      showError(error, "");
      const file = fileInput.files[0];
      if (!file) {
        showError(error, "Choose a file to upload.");
        return;
      }
      const name = nameInput.value.trim() || file.name.replace(/\.[^.]+$/, "");
      const query = new URLSearchParams({ name, filename: file.name });
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${root.dataset.uploadUrl}?${query}`);
      xhr.setRequestHeader("X-CSRFToken", D.csrfToken());
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("Accept", "application/json");
      progress.classList.remove("d-none");
      progress.dataset.minSeen = "";
      D.setProgress(progress, 0);
      button.disabled = true;
      status.textContent = `Uploading ${file.name} (${D.formatBytes(file.size)})…`;

      xhr.upload.addEventListener("progress", (progressEvent) => {
        if (!progressEvent.lengthComputable) return;
        const fraction = progressEvent.loaded / progressEvent.total;
        D.setProgress(progress, fraction);
        const percent = Math.round(fraction * 100);
        if (progress.dataset.minSeen === "" || percent < Number(progress.dataset.minSeen)) progress.dataset.minSeen = String(percent);
      });
      xhr.addEventListener("load", () => {
        button.disabled = false;
        if (xhr.status === 202 || xhr.status === 200 || xhr.status === 201) {
          D.setProgress(progress, 1);
          status.textContent = `Uploaded ${file.name}; converting it…`;
          const job = JSON.parse(xhr.responseText);
          D.showJob(jobList, job, urls, (state) => {
            if (state.status === "done") status.textContent = `${file.name} is converted: open the new version under Recent jobs.`;
            if (state.status === "failed") {
              status.textContent = "";
              showError(error, `The conversion failed: ${state.error || "no reason was given."}`);
            }
          });
          form.reset();
        } else {
          status.textContent = "";
          showError(error, D.errorFrom(xhr.status, xhr.responseText).message);
        }
      });
      xhr.addEventListener("error", () => {
        button.disabled = false;
        status.textContent = "";
        showError(error, "The upload failed: the connection to the server was lost.");
      });
      xhr.addEventListener("abort", () => {
        button.disabled = false;
        status.textContent = "Upload cancelled.";
      });
      xhr.send(file);
    });
  }

  // --- import from a URL ---------------------------------------------------------------------------
  const importForm = document.getElementById("import-form");
  if (importForm) {
    const error = document.getElementById("import-error");
    const button = document.getElementById("import-button");
    importForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError(error, "");
      const url = document.getElementById("import-url").value.trim();
      const name = document.getElementById("import-name").value.trim();
      if (!url || !name) {
        showError(error, !url ? "url: give the address of the file." : "name: give the dataset a name.");
        return;
      }
      button.disabled = true;
      try {
        const job = await D.api("POST", root.dataset.importUrl, { url, name });
        D.showJob(jobList, job, urls);
        importForm.reset();
      } catch (failure) {
        showError(error, failure.message);
      } finally {
        button.disabled = false;
      }
    });
  }
})();

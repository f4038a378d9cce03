// Uploads chosen or dropped files one request per file, so that each has its own progress
// bar and its own answer: added, already present, refused with the catalog's reason, or not
// uploaded at all (a broken connection), with a way to try again. Without JavaScript the
// form posts every file at once and the page that answers lists them the same way.
(function () {
  "use strict";
  const AT_ONCE = 3;
  const LABELS = {
    added: "Added",
    present: "Already in the catalog",
    refused: "Refused",
    failed: "Not uploaded",
  };
  let unfinished = 0;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bind(zone) {
    // The script may be linked twice (a page and a partial): each zone is bound once.
    if (zone.dataset.bound) return;
    zone.dataset.bound = "yes";
    const form = zone.querySelector("form");
    const input = form.querySelector("input[type=file]");
    const list = zone.querySelector(".upload-list");
    const summary = zone.querySelector(".upload-summary");
    const counts = { added: 0, present: 0, refused: 0, failed: 0 };
    const waiting = [];
    let running = 0;

    zone.classList.add("enhanced");
    form.querySelector(".dropzone-submit").hidden = true;
    zone.querySelectorAll(".dropzone-drop").forEach(function (hint) { hint.hidden = false; });

    function summarise() {
      if (running || waiting.length) return;
      const parts = [];
      Object.keys(LABELS).forEach(function (status) {
        if (counts[status]) parts.push(counts[status] + " " + LABELS[status].toLowerCase());
      });
      summary.textContent = parts.join(" · ") + ". ";
      if (counts.added || counts.present) {
        const link = element("a", "", "See them in the gallery");
        link.href = "/";
        summary.append(link);
      }
      summary.hidden = false;
    }

    function settle(job, status, message, url) {
      job.item.dataset.status = status;
      job.state.textContent = LABELS[status] || status;
      job.detail.replaceChildren();
      if (url) {
        const link = element("a", "upload-link", "View it");
        link.href = url;
        job.detail.append(link);
      }
      if (status === "refused" || status === "failed") {
        job.detail.append(element("span", "upload-message", message));
      }
      if (status === "failed") {
        const retry = element("button", "upload-retry", "Try again");
        retry.type = "button";
        retry.addEventListener("click", function () { enqueue(job); });
        job.detail.append(retry);
      }
      counts[status] = (counts[status] || 0) + 1;
      job.settled = status;
    }

    function send(job) {
      running += 1;
      job.item.dataset.status = "uploading";
      job.state.textContent = "Uploading";
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("Accept", "application/json");
      request.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) job.progress.value = event.loaded / event.total;
      });
      request.upload.addEventListener("load", function () {
        job.progress.value = 1;
        job.state.textContent = "Checking";
      });
      request.addEventListener("load", function () {
        let answer = null;
        try {
          answer = JSON.parse(request.responseText);
        } catch (error) {
          answer = null;
        }
        if (answer && LABELS[answer.status]) {
          job.progress.value = 1;
          settle(job, answer.status, answer.message, answer.url);
        } else {
          settle(job, "failed", "Darkroom answered " + request.status + " " +
            request.statusText + " instead of a report on this file.");
        }
      });
      request.addEventListener("error", function () {
        settle(job, "failed", "The connection broke off before Darkroom answered: " +
          "the file was not uploaded.");
      });
      request.addEventListener("abort", function () {
        settle(job, "failed", "The upload was stopped: the file was not uploaded.");
      });
      request.addEventListener("loadend", function () {
        running -= 1;
        unfinished -= 1;
        pump();
        summarise();
      });
      const body = new FormData();
      body.append("file", job.file, job.file.name);
      request.send(body);
    }

    function pump() {
      while (running < AT_ONCE && waiting.length) send(waiting.shift());
    }

    function enqueue(job) {
      if (job.settled) counts[job.settled] -= 1;
      job.settled = null;
      job.item.dataset.status = "waiting";
      job.state.textContent = "Waiting";
      job.progress.value = 0;
      job.detail.replaceChildren();
      summary.hidden = true;
      unfinished += 1;
      waiting.push(job);
      pump();
    }

    function add(files) {
      Array.prototype.forEach.call(files, function (file) {
        const item = element("li", "upload-item");
        if (file.type.indexOf("image/") === 0) {
          const preview = element("img", "upload-preview");
          preview.alt = "";
          preview.src = URL.createObjectURL(file);
          preview.addEventListener("load", function () { URL.revokeObjectURL(preview.src); });
          preview.addEventListener("error", function () { preview.remove(); });
          item.append(preview);
        }
        const progress = element("progress", "upload-progress");
        progress.max = 1;
        progress.value = 0;
        progress.setAttribute("aria-label", "Upload of " + file.name);
        const job = {
          file: file,
          item: item,
          progress: progress,
          state: element("span", "upload-status"),
          detail: element("span", "upload-detail"),
        };
        item.append(element("span", "upload-name", file.name), progress, job.state, job.detail);
        list.append(item);
        enqueue(job);
      });
    }

    input.addEventListener("change", function () {
      add(input.files);
      input.value = "";
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      add(input.files);
      input.value = "";
    });
    zone.addEventListener("dragover", function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", function (event) {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      event.stopPropagation();
      zone.classList.remove("dragging");
      add(event.dataTransfer.files);
    });
    return add;
  }

  const zones = document.querySelectorAll(".dropzone");
  const adders = Array.prototype.map.call(zones, bind).filter(Boolean);
  if (!adders.length) return;
  // A file dropped beside the zone would replace the page with the file: it goes to the zone.
  document.addEventListener("dragover", function (event) { event.preventDefault(); });
  document.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) adders[0](event.dataTransfer.files);
  });
  window.addEventListener("beforeunload", function (event) {
    if (unfinished > 0) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();

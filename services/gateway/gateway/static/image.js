// The image page, enhanced: only the chosen operation's parameters (and of those, only the
// ones that apply) are shown, sliders move in step with their number boxes, moving a control
// previews the result at a reduced size, a range compares before and after, and the pipeline
// and curl command copy to the clipboard. Without JavaScript the form, the server-side links
// and the server-rendered result do the same work, one submit at a time.
(function () {
  "use strict";

  // The characters that structure a pipeline; the server refuses values holding one.
  const RESERVED = /[|,:=]/;
  const PREVIEW_DELAY_MS = 150;

  const form = document.getElementById("process-form");
  const select = document.getElementById("op-select");
  const panes = document.getElementById("panes");

  // --- which parameters are shown ---------------------------------------------------------

  function fieldValue(fieldset, name) {
    // A checkbox follows a hidden "false" of the same name; as on the server, the last wins.
    let value = "";
    const selector = "[name='p." + fieldset.dataset.op + "." + name + "']";
    fieldset.querySelectorAll(selector).forEach(function (input) {
      if (input.type !== "checkbox" || input.checked) value = input.value;
    });
    return value;
  }

  function showApplicable(fieldset) {
    fieldset.querySelectorAll(".field[data-applies-when]").forEach(function (field) {
      const conditions = JSON.parse(field.dataset.appliesWhen);
      const applies = Object.keys(conditions).every(function (name) {
        return conditions[name].indexOf(fieldValue(fieldset, name)) !== -1;
      });
      field.hidden = !applies;
      field.querySelectorAll("input, select").forEach(function (input) {
        input.disabled = !applies;
      });
    });
  }

  function showSelected() {
    document.querySelectorAll(".op-params").forEach(function (fieldset) {
      const active = fieldset.dataset.op === select.value;
      fieldset.hidden = !active;
      fieldset.disabled = !active;
      if (active) showApplicable(fieldset);
    });
  }

  // --- sliders beside number boxes ---------------------------------------------------------

  function pairSliders() {
    document.querySelectorAll("input.slider[data-for]").forEach(function (slider) {
      const box = document.getElementById(slider.dataset.for);
      if (!box) return;
      slider.hidden = false;
      slider.addEventListener("input", function () {
        box.value = slider.value;
      });
      box.addEventListener("input", function () {
        if (box.value !== "" && box.validity.valid) slider.value = box.value;
      });
    });
  }

  // --- the live preview --------------------------------------------------------------------

  let timer = null;
  let inFlight = null;
  let objectUrl = null;

  function previewStep() {
    const op = select.value;
    const fieldset = form.querySelector(".op-params[data-op='" + op + "']");
    const data = new FormData(form); // leaves out disabled fields and unchecked boxes
    const pairs = [];
    const seen = new Set();
    const prefix = "p." + op + ".";
    fieldset.querySelectorAll("[name]").forEach(function (input) {
      if (seen.has(input.name) || input.name.indexOf(prefix) !== 0) return;
      seen.add(input.name);
      const values = data.getAll(input.name);
      const value = values.length ? String(values[values.length - 1]).trim() : "";
      if (!value) return;
      const field = input.name.slice(prefix.length);
      if (RESERVED.test(value)) {
        throw new Error(op + "." + field + ": the value may not contain any of | , : =");
      }
      pairs.push(field + "=" + value);
    });
    return pairs.length ? op + ":" + pairs.join(",") : op;
  }

  function previewPipeline() {
    // What the Apply button makes: the form's step in place of the last one.
    const applied = form.querySelector("input[name=ops]").value;
    const steps = applied.split("|").map(function (step) { return step.trim(); })
      .filter(Boolean);
    return steps.slice(0, -1).concat([previewStep()]).join("|");
  }

  function query(params) {
    const search = new URLSearchParams();
    Object.keys(params).forEach(function (key) {
      if (params[key]) search.set(key, params[key]);
    });
    return search.toString();
  }

  function say(parts, failed) {
    const status = document.getElementById("preview-status");
    status.replaceChildren.apply(status, parts);
    status.classList.toggle("error-message", Boolean(failed));
  }

  function errorMessage(html, status) {
    const page = new DOMParser().parseFromString(html, "text/html");
    const message = page.querySelector(".error-message");
    return message ? message.textContent.trim() : "The preview failed (" + status + ").";
  }

  function previewImage() {
    let image = document.getElementById("result-image") ||
      document.getElementById("preview-image");
    if (!image) {
      image = document.createElement("img");
      image.id = "preview-image";
      document.getElementById("preview-status").before(image);
    }
    return image;
  }

  function show(blob, ops, shownPipeline) {
    const url = URL.createObjectURL(blob);
    const image = previewImage();
    image.removeAttribute("srcset");
    image.removeAttribute("sizes");
    image.src = url;
    image.alt = panes.dataset.name + " previewed with " + ops;
    const after = document.getElementById("compare-after");
    if (after) after.src = url;
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = url;

    const hint = document.getElementById("result-hint");
    if (hint) hint.hidden = true;
    const levels = document.getElementById("result-levels");
    const histogram = document.getElementById("result-histogram");
    if (levels && histogram) {
      histogram.src = panes.dataset.histogramUrl + "?" + query({ops: shownPipeline});
      levels.hidden = false;
    }

    const format = document.getElementById("format-select").value;
    const full = document.createElement("a");
    full.href = panes.dataset.renderUrl + "?" + query({ops: ops, format: format});
    full.id = "preview-full";
    full.textContent = "Full size";
    const link = document.getElementById("result-link");
    if (link) link.href = full.href;
    const code = document.createElement("code");
    code.textContent = ops;
    say(["Preview of ", code, " · ", full, " · Apply to keep it."], false);
  }

  function preview() {
    timer = null;
    let ops;
    try {
      ops = previewPipeline();
    } catch (error) {
      say([error.message], true);
      return;
    }
    // A newer preview makes the one still in flight useless: stop it.
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    const format = document.getElementById("format-select").value;
    const url = panes.dataset.previewUrl + "?" + query({ops: ops, format: format});
    say(["Rendering a preview…"], false);
    fetch(url, {signal: controller.signal})
      .then(function (response) {
        if (!response.ok) {
          return response.text().then(function (html) {
            throw new Error(errorMessage(html, response.status));
          });
        }
        const shown = response.headers.get("X-Pipeline") || ops;
        return response.blob().then(function (blob) {
          if (inFlight === controller) show(blob, ops, shown);
        });
      })
      .catch(function (error) {
        if (error.name !== "AbortError" && inFlight === controller) say([error.message], true);
      })
      .finally(function () {
        if (inFlight === controller) inFlight = null;
      });
  }

  function schedulePreview() {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(preview, PREVIEW_DELAY_MS);
  }

  // --- before and after ---------------------------------------------------------------------

  function compare() {
    const figure = document.getElementById("compare");
    const range = document.getElementById("compare-range");
    if (!figure || !range) return;
    figure.hidden = false;
    function split() {
      figure.style.setProperty("--split", range.value + "%");
    }
    range.addEventListener("input", split);
    split();
  }

  // --- copy buttons ----------------------------------------------------------------------------

  function copyButtons() {
    document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const label = button.textContent;
      button.hidden = false;
      button.addEventListener("click", function () {
        const text = source.textContent.trim();
        const done = function (word) {
          button.textContent = word;
          setTimeout(function () { button.textContent = label; }, 1500);
        };
        if (navigator.clipboard) {
          navigator.clipboard.writeText(text).then(
            function () { done("Copied"); },
            function () { selectText(source); done("Press Ctrl+C"); }
          );
        } else {
          // Without a secure context there is no clipboard API: select it for the visitor.
          selectText(source);
          done("Press Ctrl+C");
        }
      });
    });
  }

  function selectText(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // --- wiring --------------------------------------------------------------------------------

  if (form && select) {
    document.querySelectorAll(".op-params").forEach(function (fieldset) {
      fieldset.addEventListener("change", function () { showApplicable(fieldset); });
    });
    select.addEventListener("change", showSelected);
    showSelected();
    pairSliders();
    if (panes) {
      form.addEventListener("input", schedulePreview);
      form.addEventListener("change", schedulePreview);
      const hint = document.getElementById("preview-hint");
      if (hint) hint.hidden = false;
    }
  }
  compare();
  copyButtons();
})();

// The gallery's query form: the URL holds the whole query, so it stays short and shareable,
// and the form always shows the query of the page on screen.
(function () {
  const form = document.getElementById("query-form");
  if (!form) return;

  // Empty fields mean "no filter": leave them out of the URL instead of sending name=&…
  form.addEventListener("submit", function () {
    form.querySelectorAll("input, select").forEach(function (field) {
      if (field.name && field.value === "") field.disabled = true;
    });
  });

  // A page restored by the back button (from the back/forward cache) keeps what was typed
  // before leaving it; put back the query its results were made for.
  window.addEventListener("pageshow", function (event) {
    form.querySelectorAll("input, select").forEach(function (field) {
      field.disabled = false;
    });
    if (event.persisted) form.reset();
  });
})();

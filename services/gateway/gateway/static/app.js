// Show only the selected operation's parameters, and within it only the parameters that
// apply to its other choices (a Butterworth cut-off only with method=butterworth). Without
// JavaScript every field stays visible and the server drops the ones that do not apply.
(function () {
  const select = document.getElementById("op-select");
  if (!select) return;
  const fieldsets = document.querySelectorAll(".op-params");

  function valueOf(fieldset, name) {
    const input = fieldset.querySelector("[name='p." + fieldset.dataset.op + "." + name + "']");
    return input ? input.value : "";
  }

  function showApplicable(fieldset) {
    fieldset.querySelectorAll(".field[data-applies-when]").forEach(function (field) {
      const conditions = JSON.parse(field.dataset.appliesWhen);
      const applies = Object.keys(conditions).every(function (name) {
        return conditions[name].indexOf(valueOf(fieldset, name)) !== -1;
      });
      field.hidden = !applies;
      field.querySelectorAll("input, select").forEach(function (input) {
        input.disabled = !applies;
      });
    });
  }

  function show() {
    fieldsets.forEach(function (fieldset) {
      const active = fieldset.dataset.op === select.value;
      fieldset.hidden = !active;
      fieldset.disabled = !active;
      if (active) showApplicable(fieldset);
    });
  }

  fieldsets.forEach(function (fieldset) {
    fieldset.addEventListener("change", function () { showApplicable(fieldset); });
  });
  select.addEventListener("change", show);
  show();
})();

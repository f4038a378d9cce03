// Show only the selected operation's parameters; without JavaScript every fieldset stays
// visible and the server reads the selected operation's fields only.
(function () {
  const select = document.getElementById("op-select");
  if (!select) return;
  const fieldsets = document.querySelectorAll(".op-params");
  function show() {
    fieldsets.forEach(function (fieldset) {
      const active = fieldset.dataset.op === select.value;
      fieldset.hidden = !active;
      fieldset.disabled = !active;
    });
  }
  select.addEventListener("change", show);
  show();
})();

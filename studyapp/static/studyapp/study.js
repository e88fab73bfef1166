// Enhancements only: the pages work without this file.
// Keys A, B and E answer; the browser-side response time is sent along; a second submit is ignored.
(function () {
  "use strict";
  var form = document.querySelector("[data-answer-form]");
  if (!form) { return; }
  var started = performance.now();
  var sent = false;
  var clientMs = form.querySelector("[data-client-ms]");
  form.addEventListener("submit", function (event) {
    if (sent) { event.preventDefault(); return; }
    sent = true;
    clientMs.value = String(Math.round(performance.now() - started));
  });
  var buttons = {};
  form.querySelectorAll("button[data-key]").forEach(function (button) {
    buttons[button.getAttribute("data-key")] = button;
  });
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) { return; }
    var button = buttons[(event.key || "").toLowerCase()];
    if (!button) { return; }
    event.preventDefault();
    if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
  });
})();

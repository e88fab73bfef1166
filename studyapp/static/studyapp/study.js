// Enhancements only: the pages work without this file.
// Keys A, B and E answer; the browser-side response time is sent along; a second submit is ignored.
// An answer is sent with fetch() and the next question page comes back in the same response
// (X-Study-Next: inline), so the page is swapped in place instead of a redirect and a second request.
// Whatever goes wrong on that path falls back to the plain form submission, which the server
// treats as a repeat when the first one did arrive.
(function () {
  "use strict";
  var form = null;
  var buttons = {};
  var started = 0;
  var sent = false;

  function bind() {
    form = document.querySelector("[data-answer-form]");
    buttons = {};
    sent = false;
    started = performance.now();
    if (!form) { return; }
    form.addEventListener("submit", onSubmit);
    form.querySelectorAll("button[data-key]").forEach(function (button) {
      buttons[button.getAttribute("data-key")] = button;
    });
  }

  function onSubmit(event) {
    if (sent) { event.preventDefault(); return; }
    sent = true;
    form.querySelector("[data-client-ms]").value = String(Math.round(performance.now() - started));
    var submitter = event.submitter;
    if (!submitter || !window.fetch || !window.DOMParser || !window.URLSearchParams) { return; }
    event.preventDefault();
    var data = new URLSearchParams(new FormData(form));
    data.append(submitter.name, submitter.value);
    fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin", cache: "no-store",
      headers: {"X-Study-Next": "inline"}
    }).then(function (response) {
      if (!response.ok) { throw new Error("answer not taken: " + response.status); }
      var url = response.headers.get("X-Study-Page") || response.url;
      return response.text().then(function (html) { show(html, url); });
    }).catch(function () { submitPlainly(submitter); });
  }

  function submitPlainly(submitter) {
    var choice = document.createElement("input");
    choice.type = "hidden";
    choice.name = submitter.name;
    choice.value = submitter.value;
    form.appendChild(choice);
    form.submit();
  }

  function show(html, url) {
    var next = new DOMParser().parseFromString(html, "text/html");
    var main = next.querySelector("main");
    if (!next.querySelector("[data-answer-form]") || !main) { window.location.replace(url); return; }
    document.title = next.title;
    document.querySelectorAll("link[rel=prefetch]").forEach(function (link) { link.remove(); });
    next.querySelectorAll("link[rel=prefetch]").forEach(function (link) {
      document.head.appendChild(document.importNode(link, true));
    });
    document.querySelector("main").replaceWith(document.importNode(main, true));
    window.history.replaceState(null, "", url);
    window.scrollTo(0, 0);
    bind();
  }

  document.addEventListener("keydown", function (event) {
    if (!form || event.altKey || event.ctrlKey || event.metaKey || event.repeat) { return; }
    var button = buttons[(event.key || "").toLowerCase()];
    if (!button) { return; }
    event.preventDefault();
    if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
  });
  bind();
})();

// mamori console: progressive enhancements only. Every page works without
// this script; it adds copy buttons and confirmations. No inline handlers
// (the CSP forbids them): behaviour hangs off data- attributes.
(function () {
  "use strict";

  // <button data-copy="#id"> copies the text of the element #id.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var el = document.querySelector(btn.getAttribute("data-copy"));
    if (!el || !navigator.clipboard) return;
    var text = el.value !== undefined && el.tagName === "INPUT" ? el.value : el.textContent;
    navigator.clipboard.writeText(text.trim()).then(function () {
      var old = btn.textContent;
      btn.textContent = "Copied";
      setTimeout(function () { btn.textContent = old; }, 1500);
    });
  });

  // <form data-confirm="question"> asks before submitting.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });

  // <select data-autosubmit> and <input type=checkbox data-autosubmit> submit their form on change.
  document.addEventListener("change", function (ev) {
    if (ev.target.hasAttribute && ev.target.hasAttribute("data-autosubmit") && ev.target.form) {
      ev.target.form.requestSubmit();
    }
  });
})();

// Live status: every element marked data-live is refreshed from the same page every
// two seconds until the server renders it without the mark (nothing left pending).
(function () {
  "use strict";
  function refresh() {
    var live = document.querySelectorAll("[data-live][id]");
    if (!live.length) { return; }
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        live.forEach(function (old) {
          var now = fresh.getElementById(old.id);
          if (!now) { return; }
          old.innerHTML = now.innerHTML;
          if (!now.hasAttribute("data-live")) { old.removeAttribute("data-live"); }
        });
      })
      .catch(function () {})
      .then(function () { window.setTimeout(refresh, 2000); });
  }
  window.setTimeout(refresh, 2000);
})();

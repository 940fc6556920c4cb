// Refreshes a region of the page in place, every data-refresh seconds, from the same
// address: the rest of the page, the keyboard focus and the scroll position stay put.
// A button (data-refresh-toggle) pauses and resumes it (WCAG 2.2.2), and updates stop
// while the tab is hidden. Without JavaScript the page is simply not refreshed.
(function () {
  "use strict";
  document.querySelectorAll("[data-refresh]").forEach(function (region) {
    var seconds = Math.max(2, parseInt(region.getAttribute("data-refresh"), 10) || 15);
    var toggle = document.getElementById(region.getAttribute("data-refresh-toggle") || "");
    var paused = false;
    var busy = false;
    function refresh() {
      if (paused || busy || document.hidden) return;
      busy = true;
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
          if (fresh) region.innerHTML = fresh.innerHTML;
          document.dispatchEvent(new CustomEvent("region-refreshed", { detail: region }));
        })
        .catch(function () { /* the next tick tries again */ })
        .then(function () { busy = false; });
    }
    if (toggle) {
      toggle.addEventListener("click", function () {
        paused = !paused;
        toggle.setAttribute("aria-pressed", paused ? "true" : "false");
        toggle.textContent = toggle.getAttribute(paused ? "data-resume-label" : "data-pause-label");
        if (!paused) refresh();
      });
    }
    setInterval(refresh, seconds * 1000);
  });
})();

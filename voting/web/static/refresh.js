// Refreshes regions of the page in place, every data-refresh seconds, from the same
// address: the rest of the page, the keyboard focus and the scroll position stay put.
// Regions that share a pause button (data-refresh-toggle) are one group: one request
// a tick updates them all (the live page's summary and its figures). The button pauses
// and resumes the group (WCAG 2.2.2), and updates stop while the tab is hidden.
// Without JavaScript the page is simply not refreshed.
(function () {
  "use strict";
  var groups = {};
  document.querySelectorAll("[data-refresh]").forEach(function (region) {
    var key = region.getAttribute("data-refresh-toggle") || region.id;
    var group = groups[key] || (groups[key] = { regions: [], seconds: 3600, toggle: key });
    group.regions.push(region);
    group.seconds = Math.min(group.seconds, Math.max(2, parseInt(region.getAttribute("data-refresh"), 10) || 15));
  });
  Object.keys(groups).forEach(function (key) {
    var group = groups[key];
    var toggle = document.getElementById(group.toggle);
    var paused = false;
    var busy = false;
    function refresh() {
      if (paused || busy || document.hidden) return;
      busy = true;
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) return;
          var page = new DOMParser().parseFromString(html, "text/html");
          group.regions.forEach(function (region) {
            var fresh = page.getElementById(region.id);
            if (fresh) region.innerHTML = fresh.innerHTML;
            document.dispatchEvent(new CustomEvent("region-refreshed", { detail: region }));
          });
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
    setInterval(refresh, group.seconds * 1000);
  });
})();

// Adds the visitor's own local time beside each Geneva time, and runs the countdown.
(function () {
  "use strict";
  function fmt(d) {
    return new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
      dateStyle: "long", timeStyle: "short"
    }).format(d);
  }
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) return;
    var span = document.createElement("span");
    span.className = "local-time";
    span.textContent = " · " + fmt(d) + " (" + Intl.DateTimeFormat().resolvedOptions().timeZone + ")";
    el.after(span);
  });
  document.querySelectorAll("[data-countdown]").forEach(function (el) {
    var end = new Date(el.getAttribute("data-countdown"));
    function tick() {
      var s = Math.max(0, Math.floor((end - Date.now()) / 1000));
      var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
      el.textContent = d + " d " + h + " h " + m + " min " + (s % 60) + " s";
    }
    tick(); setInterval(tick, 1000);
  });
})();

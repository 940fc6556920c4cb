// Adds the visitor's own local time beside each Geneva time, and runs the countdown.
// Every text comes from the browser's Intl in the page's language: nothing to translate.
(function () {
  "use strict";
  var lang = document.documentElement.lang || undefined;
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  function fmt(d) {
    return new Intl.DateTimeFormat(lang, {
      dateStyle: "long", timeStyle: "short", hourCycle: "h23"
    }).format(d);
  }
  function addLocalTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      if (el.nextElementSibling && el.nextElementSibling.classList.contains("local-time")) return;
      var d = new Date(el.getAttribute("datetime"));
      // A visitor in Geneva's own zone already reads the Geneva time.
      if (isNaN(d) || zone === "Europe/Zurich") return;
      var span = document.createElement("span");
      span.className = "local-time";
      // The zone is named (Europe/Paris): the reader knows which clock this is.
      span.textContent = " · " + fmt(d) + " (" + zone + ")";
      el.after(span);
    });
  }
  function unit(value, name) {
    try {
      return new Intl.NumberFormat(lang, { style: "unit", unit: name, unitDisplay: "short" }).format(value);
    } catch (e) {
      return value + " " + name;
    }
  }
  addLocalTimes(document);
  document.addEventListener("region-refreshed", function (event) { addLocalTimes(event.detail); });
  document.querySelectorAll("[data-countdown]").forEach(function (el) {
    var end = new Date(el.getAttribute("data-countdown"));
    function tick() {
      var s = Math.max(0, Math.floor((end - Date.now()) / 1000));
      var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
      el.textContent = [unit(d, "day"), unit(h, "hour"), unit(m, "minute"), unit(s % 60, "second")].join(" ");
    }
    tick(); setInterval(tick, 1000);
  });
})();

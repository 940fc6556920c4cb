// The ballot's and the sign-in's small part of the fraud layer (voting/antifraud):
// reports navigator.webdriver (a browser driven by automation says so) in the forms'
// hidden "webdriver" field, and sets up the ALTCHA widget when the page shows one: its
// proof-of-work worker (served from this site, for the Content-Security-Policy) and its
// strings in the page's language, from our own translations (the JSON block
// #altcha-strings).
(function () {
  "use strict";
  var driven = navigator.webdriver === true ? "1" : "";
  var fields = document.querySelectorAll('input[name="webdriver"]');
  for (var i = 0; i < fields.length; i++) {
    fields[i].value = driven;
  }
  var holder = document.getElementById("altcha-strings");
  var altcha = globalThis.$altcha;
  if (!holder || !altcha) {
    return;
  }
  var setup = JSON.parse(holder.textContent);
  altcha.algorithms.set("SHA-256", function () {
    return new Worker("/static/altcha/sha-worker.js");
  });
  altcha.i18n.set(setup.language, setup.strings);
  // The widget's checkbox says how the calculation goes only visually: a polite live
  // region says it to screen readers too.
  var status = document.getElementById("challenge-status");
  var said = {
    verifying: setup.strings.verifying,
    verified: setup.strings.verified,
    error: setup.strings.error,
    expired: setup.strings.expired,
  };
  var widgets = document.querySelectorAll("altcha-widget");
  for (var j = 0; j < widgets.length; j++) {
    widgets[j].setAttribute("language", setup.language);
    widgets[j].addEventListener("statechange", function (event) {
      var state = event.detail && event.detail.state;
      if (status && said[state]) {
        status.textContent = said[state];
      }
    });
  }
})();

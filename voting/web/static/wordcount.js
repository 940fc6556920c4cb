// A live word count under a textarea that states its limits in HTML
// (data-words-min, data-words-max) and the sentences to show in the page's language
// (data-words-under, -within, -over, with {n}, {min}, {max}). Words are counted as the
// server counts them (voting/nominations/fields.py, WORD): "e-government", "don't" and
// "2,000" are one word each. Without JavaScript the hint above the field says the same.
(function () {
  "use strict";
  var WORD = /[\p{L}\p{N}_]+(?:['\u2019\-.,][\p{L}\p{N}_]+)*/gu;
  function count(text) {
    var found = text.match(WORD);
    return found ? found.length : 0;
  }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) {
      return key in values ? values[key] : "";
    });
  }
  document.querySelectorAll("textarea[data-words-max]").forEach(function (area) {
    var out = document.getElementById(area.id + "-count");
    if (!out) return;
    var min = parseInt(area.dataset.wordsMin || "0", 10);
    var max = parseInt(area.dataset.wordsMax, 10);
    var format = new Intl.NumberFormat(document.documentElement.lang || undefined);
    function update() {
      var n = count(area.value);
      var state = n < min ? "under" : n > max ? "over" : "within";
      out.textContent = fill(area.dataset["words" + state.charAt(0).toUpperCase() + state.slice(1)], {
        n: format.format(n), min: format.format(min), max: format.format(max)
      });
      out.dataset.state = state;
    }
    area.addEventListener("input", update);
    out.hidden = false;
    update();
  });
})();

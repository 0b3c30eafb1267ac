// Sending progress: refresh the counts from /admin/editions/progress.json every 5 seconds.
// Optional: without JavaScript the page refreshes itself (<noscript> meta refresh).
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box || !window.fetch) { return; }
  var source = box.getAttribute("data-source");
  function show(data) {
    Object.keys(data).forEach(function (week) {
      var section = box.querySelector('[data-week="' + week + '"]');
      if (!section) { return; }
      var states = data[week].states;
      Object.keys(states).forEach(function (name) {
        var cell = section.querySelector('[data-state="' + name + '"]');
        if (cell) { cell.textContent = String(states[name]); }
      });
      var total = section.querySelector('[data-state="total"]');
      if (total) { total.textContent = String(data[week].total); }
    });
  }
  function poll() {
    fetch(source, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { show(data); } })
      .catch(function () {})
      .then(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 5000);
}());

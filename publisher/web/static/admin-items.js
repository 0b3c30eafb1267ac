// Region suggestions while the editor types (the form works without this script: its
// "Suggest regions" button asks the server the same question). Same origin, no inline code.
(function () {
  "use strict";
  var form = document.getElementById("item-form");
  var box = document.getElementById("suggestions");
  if (!form || !box || !window.fetch || !window.FormData) {
    return;
  }
  var title = form.elements.namedItem("title");
  var summary = form.elements.namedItem("summary");
  var touched = false;
  var timer = null;
  var asked = "";

  form.addEventListener("change", function (event) {
    if (event.target && event.target.name === "regions") {
      touched = true;
    }
  });

  function show(data) {
    var names = data.regions.map(function (r) { return r.name; });
    box.textContent = "";
    var line = document.createElement("p");
    var label = data.default_only ? box.dataset.none : box.dataset.label;
    line.textContent = (label || "") + " " + names.join(", ");
    box.appendChild(line);
    if (touched || data.default_only) {
      return;
    }
    data.regions.forEach(function (r) {
      var input = document.getElementById("item-" + r.slug);
      if (input) {
        input.checked = true;
        var group = input.closest("details");
        while (group) {
          group.open = true;
          group = group.parentElement && group.parentElement.closest("details");
        }
      }
    });
  }

  function ask() {
    var text = title.value + "\n" + summary.value;
    if (!title.value.trim() || text === asked) {
      return;
    }
    asked = text;
    fetch("/admin/items/suggest", {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (answer) {
      return answer.ok ? answer.json() : null;
    }).then(function (data) {
      if (data) {
        show(data);
      }
    }).catch(function () { /* suggestions are a convenience; the button still works */ });
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, 600);
  }
  title.addEventListener("input", later);
  summary.addEventListener("input", later);
}());

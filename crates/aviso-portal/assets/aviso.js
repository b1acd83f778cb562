// Aviso's pages work without this script; it adds group checkboxes in the
// product tree, shows only the chosen auth/retry fields, and feeds the
// admin live view. Served by Aviso itself (no CDN).
(function () {
  "use strict";

  // Product tree: a group checkbox ticks or clears every product under it
  // and shows whether all, some or none of them are ticked.
  function groupBoxes(fs) {
    return fs.querySelectorAll('input[name="event_types"]');
  }
  function refreshGroups(root) {
    root.querySelectorAll("fieldset.group").forEach(function (fs) {
      var toggle = fs.querySelector(":scope > legend .group-toggle");
      var boxes = Array.prototype.slice.call(groupBoxes(fs));
      var on = boxes.filter(function (b) { return b.checked; }).length;
      toggle.checked = boxes.length > 0 && on === boxes.length;
      toggle.indeterminate = on > 0 && on < boxes.length;
    });
  }
  document.querySelectorAll(".tree").forEach(function (tree) {
    tree.addEventListener("change", function (e) {
      var t = e.target;
      if (t.classList.contains("group-toggle")) {
        var fs = t.closest("fieldset.group");
        groupBoxes(fs).forEach(function (b) { b.checked = t.checked; });
      }
      refreshGroups(tree);
    });
    refreshGroups(tree);
  });

  // Radio choices with sub-fields (auth kind, retry mode).
  function showChosen(form, name) {
    var chosen = form.querySelector('input[name="' + name + '"]:checked');
    var value = chosen ? chosen.value : "";
    form.querySelectorAll('input[name="' + name + '"]').forEach(function (r) {
      var scope = r.closest("fieldset");
      scope.querySelectorAll(".sub[data-when]").forEach(function (sub) {
        var mine = scope.querySelector('input[name="' + name + '"][value="' + sub.dataset.when + '"]');
        if (mine) { sub.hidden = sub.dataset.when !== value; }
      });
    });
  }
  document.querySelectorAll("form.endpoint").forEach(function (form) {
    ["auth", "retry"].forEach(function (name) {
      showChosen(form, name);
      form.addEventListener("change", function (e) {
        if (e.target.name === name) { showChosen(form, name); }
      });
    });
  });

  // Admin live view: polls the JSON, shows rates between two polls.
  var live = document.querySelector("[data-live-source]");
  if (live) {
    var source = live.dataset.liveSource;
    var last = null;
    var set = function (id, v) {
      var el = document.getElementById(id);
      if (el) { el.textContent = v; }
    };
    var rate = function (now, before, key, secs) {
      if (!before || secs <= 0) { return "…"; }
      return (Math.max(0, now[key] - before[key]) / secs).toFixed(1);
    };
    var poll = function () {
      fetch(source, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (d) {
        var m = d.metrics;
        document.getElementById("metrics-note").hidden = !!m;
        if (m) {
          var t = Date.parse(d.at) / 1000;
          var secs = last ? t - last.t : 0;
          set("publish_rate", rate(m, last && last.m, "events_published", secs));
          set("delivery_rate", rate(m, last && last.m, "deliveries_succeeded", secs));
          set("failure_rate", rate(m, last && last.m, "deliveries_failed", secs));
          ["in_flight", "queue_ready", "queue_lanes", "queue_scheduled", "circuits_open"].forEach(function (k) {
            set(k, String(m[k]));
          });
          last = { t: t, m: m };
        }
        var body = document.getElementById("failing");
        body.textContent = "";
        d.failing.forEach(function (f) {
          var tr = document.createElement("tr");
          [f.tenant + " (" + f.tenant_id + ")", f.url, String(f.failed), f.disabled_reason || (f.enabled ? "" : "off")]
            .forEach(function (text) {
              var td = document.createElement("td");
              td.textContent = text;
              tr.appendChild(td);
            });
          body.appendChild(tr);
        });
        document.getElementById("none-failing").hidden = d.failing.length > 0;
      }).catch(function () {}).then(function () { setTimeout(poll, 2000); });
    };
    poll();
  }
})();

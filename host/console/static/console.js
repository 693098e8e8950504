// The approver console's only script (served by Arbiter; the page allows no other):
// counts down the time left on each approval, and keeps the pending list current
// from the server-sent events at /console/events without reloading.
"use strict";
(function () {
  function left(ms) {
    if (ms <= 0) return "expired";
    var s = Math.floor(ms / 1000);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    s = s % 60;
    return (h ? h + " h " : "") + (h || m ? m + " min " : "") + s + " s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-expires]").forEach(function (t) {
      var text = left(Number(t.getAttribute("data-expires")) / 1000 - now);
      if (t.textContent !== text) t.textContent = text;
    });
  }
  tick();
  setInterval(tick, 1000);

  var list = document.getElementById("pending");
  if (!list || !window.EventSource) return;
  var live = document.getElementById("live");
  var empty = document.getElementById("empty");
  var events = new EventSource(list.getAttribute("data-events"));
  events.addEventListener("open", function () { list.setAttribute("data-live", "on"); });
  events.addEventListener("error", function () { list.setAttribute("data-live", "off"); });
  events.addEventListener("approval", function (e) {
    var d = JSON.parse(e.data);
    var old = document.getElementById("a-" + d.id);
    if (d.html) {
      var t = document.createElement("template");
      t.innerHTML = d.html;
      var card = t.content.firstElementChild;
      if (old) {
        old.replaceWith(card);
      } else {
        list.insertBefore(card, list.firstChild);
        if (live) live.textContent = "A new action is waiting for approval.";
      }
    } else if (old) {
      old.remove();
      if (live) live.textContent = "An approval was " + d.state + ".";
    }
    if (empty) empty.hidden = list.children.length > 0;
    tick();
  });
  events.addEventListener("reload", function () { location.reload(); });
  events.addEventListener("signed-out", function () {
    events.close();
    location.assign("/console/sign-in");
  });
})();

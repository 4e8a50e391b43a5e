// pairgate's operator page: keeps the open view current. The server sends
// an event for every change in the change log (/events, server-sent events;
// a reconnect resumes from the last event id); on one, this fetches the view
// again and swaps in its live sections. Without this script the page works
// the same with a reload.
(function () {
  'use strict';
  var url = document.body.dataset.refresh;
  var live = document.getElementById('live');
  if (!url || !window.EventSource || !window.fetch) return;

  var timer = null, busy = false, again = false;

  // A section the operator is using (typing in it, or a confirmation
  // opened) is left alone until they are done, so a refresh never changes
  // what is under their finger.
  function inUse(el) {
    var a = document.activeElement;
    return (a && el.contains(a) && a.matches('input, select, textarea, summary')) || el.querySelector('details[open]');
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' } }).then(function (res) {
      if (res.redirected && new URL(res.url).pathname === '/signin') { location.assign('/signin'); return null; }
      return res.ok ? res.text() : null;
    }).then(function (html) {
      if (!html) return;
      var doc = new DOMParser().parseFromString(html, 'text/html');
      var held = false;
      document.querySelectorAll('[data-live]').forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (!fresh) return;
        if (inUse(el)) { held = true; return; }
        el.replaceWith(document.importNode(fresh, true));
      });
      if (held) setTimeout(schedule, 2000);
      document.body.dataset.refreshed = String(Date.now());
    }).catch(function () {
      setTimeout(schedule, 2000);
    }).finally(function () {
      busy = false;
      if (again) { again = false; schedule(); }
    });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 100);
  }

  function status(text, cls) {
    live.hidden = false;
    live.textContent = text;
    live.className = 'live ' + cls;
  }

  var events = new EventSource('/events');
  events.addEventListener('open', function () { status('Live', 'on'); });
  events.addEventListener('error', function () { status('Reconnecting…', 'off'); });
  events.addEventListener('change', schedule);
  events.addEventListener('signedout', function () { events.close(); location.assign('/signin'); });
  // Ages and time left ("3 min ago", "57 min left") move on by themselves.
  setInterval(schedule, 60000);
})();

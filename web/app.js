// The web view of luasoar serve: what the server rendered stays as it is;
// this only keeps it current.  A page whose <main> has data-live is fetched
// again every few seconds (its <main> replaced, unless a form on it is being
// filled in), durations tick while a run or an action runs, and the actions'
// bars are drawn to the run's time.  Everything shown comes from the
// server's HTML, escaped there: nothing here builds markup from data.
"use strict";

function seconds(iso) { const t = Date.parse(iso); return isNaN(t) ? null : t / 1000; }

function shown(d) {
  if (d < 60) return d.toFixed(d < 10 ? 1 : 0) + " s";
  const m = Math.floor(d / 60), s = Math.floor(d % 60);
  if (m < 60) return m + " min " + s + " s";
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
}

function tick() {
  const now = Date.now() / 1000;
  for (const el of document.querySelectorAll(".dur")) {
    const start = seconds(el.dataset.start), end = seconds(el.dataset.end) || now;
    if (start !== null) el.textContent = shown(Math.max(0, end - start));
  }
  const bars = document.querySelectorAll(".timeline .bar");
  let first = null, last = null;
  for (const b of bars) {
    const s = seconds(b.dataset.start), e = seconds(b.dataset.end) || now;
    if (s === null) continue;
    first = first === null ? s : Math.min(first, s);
    last = last === null ? e : Math.max(last, e);
  }
  const span = Math.max(0.001, (last || 0) - (first || 0));
  for (const b of bars) {
    const s = seconds(b.dataset.start), e = seconds(b.dataset.end) || now;
    if (s === null) continue;
    b.style.left = (100 * (s - first) / span) * 0.6 + "%";
    b.style.width = Math.max(0.3, (100 * (e - s) / span) * 0.6) + "%";
    b.title = shown(e - s);
  }
}

async function refresh() {
  const main = document.getElementById("main");
  if (!main || !main.dataset.live) return;
  const busy = document.activeElement && main.contains(document.activeElement) &&
    ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (!busy) {
    try {
      const r = await fetch(location.href, {credentials: "same-origin", cache: "no-store"});
      if (r.ok && r.url === location.href) {
        const doc = new DOMParser().parseFromString(await r.text(), "text/html");
        const fresh = doc.getElementById("main");
        const open = [...main.querySelectorAll("details[open] summary")].map(s => s.textContent);
        if (fresh) main.replaceChildren(...fresh.childNodes);
        for (const s of main.querySelectorAll("details summary"))
          if (open.includes(s.textContent)) s.parentElement.open = true;
        tick();
      }
    } catch (e) { /* the server is away: the next try is in a moment */ }
  }
  setTimeout(refresh, Number(main.dataset.live) || 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 1000);
  const main = document.getElementById("main");
  if (main && main.dataset.live) setTimeout(refresh, Number(main.dataset.live) || 2000);
});

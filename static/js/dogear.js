// Dogear's own script: small enhancements on top of server-rendered pages and htmx.
// Everything here is optional; the pages work without it.
"use strict";

document.documentElement.classList.add("js");

// "/" focuses the search box, unless the reader is typing somewhere already.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
  const box = document.querySelector("[data-shortcut='/']");
  if (box) {
    event.preventDefault();
    box.focus();
    box.select();
  }
});

// A range input shows its value live in its <output>, marked as not saved yet until
// the server's answer replaces the row with what it saved.
document.addEventListener("input", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "range" || !input.dataset.output) return;
  const output = document.getElementById(input.dataset.output);
  if (!output) return;
  const unsaved = output.dataset.saved !== undefined && output.dataset.saved !== input.value;
  output.textContent = unsaved ? `${input.value} % (not saved yet)` : `${input.value} %`;
  output.classList.toggle("unsaved", unsaved);
});

// A flash belongs to the page it was shown on: going to another page with htmx
// (a tab, a filter, a search: anything that pushes a new URL) clears it.
document.addEventListener("htmx:pushedIntoHistory", () => {
  const flashes = document.getElementById("flashes");
  if (flashes) flashes.replaceChildren();
});

// When a request fails without a response to swap (network down, server gone),
// say so in the flash region instead of failing silently.
document.addEventListener("htmx:sendError", () => {
  const flashes = document.getElementById("flashes");
  if (!flashes) return;
  const message = document.createElement("p");
  message.className = "flash flash-error";
  message.setAttribute("role", "alert");
  message.textContent = "Dogear could not be reached. Check your connection and try again.";
  flashes.replaceChildren(message);
});

// A list row's "More" panel loads its controls the first time it opens (by the
// reader, or reopened after a swap below); without JavaScript it holds a link to them.
document.addEventListener(
  "toggle",
  (event) => {
    const details = event.target;
    if (!(details instanceof HTMLDetailsElement) || !details.open) return;
    const panel = details.querySelector(":scope > [data-more-src]");
    if (!panel) return;
    const url = panel.dataset.moreSrc;
    delete panel.dataset.moreSrc;
    htmx.ajax("GET", url, { target: panel, swap: "innerHTML" });
  },
  true, // toggle doesn't bubble
);

// A disclosure (<details>) the reader opened stays open when htmx replaces it with
// the server's new rendering of the same thing (same id).
let openDetails = [];
document.addEventListener("htmx:beforeSwap", () => {
  openDetails = Array.from(document.querySelectorAll("details[open][id]"), (el) => el.id);
});
document.addEventListener("htmx:afterSwap", () => {
  for (const id of openDetails) {
    const details = document.getElementById(id);
    if (details instanceof HTMLDetailsElement) details.open = true;
  }
  openDetails = [];
});

// Keep keyboard focus after a swap: when the focused control was replaced, focus the
// same control in the new content (by id); else the region's preferred control
// (data-focus-fallback), its first control, or the region itself when it is a note.
let focusedId = null;
let focusedRegionIds = [];
document.addEventListener("htmx:beforeSwap", () => {
  const active = document.activeElement;
  if (!(active instanceof HTMLElement) || active === document.body) return;
  focusedId = active.id || null;
  // Every enclosing region with an id, nearest first: the nearest may not survive
  // the swap (a row's disclosure when the row became a note), an outer one will.
  focusedRegionIds = [];
  for (let el = active.parentElement; el; el = el.parentElement) {
    if (el.id) focusedRegionIds.push(el.id);
  }
});
document.addEventListener("htmx:afterSettle", () => {
  if (document.activeElement && document.activeElement !== document.body) return;
  const same = focusedId && document.getElementById(focusedId);
  const region = focusedRegionIds.map((id) => document.getElementById(id)).find(Boolean);
  let target = same || null;
  if (!target && region) {
    target = region.querySelector("[data-focus-fallback]") ||
      region.querySelector("a, button, input, select, textarea") ||
      (region.hasAttribute("tabindex") ? region : null);
  }
  if (target instanceof HTMLElement) target.focus();
});

// Installable app: register the service worker (static/js/sw.js, served from the root
// as named in base.html). Only where browsers support it (HTTPS or localhost); it never
// caches pages, so without it nothing but the offline page is lost.
if ("serviceWorker" in navigator) {
  const meta = document.querySelector("meta[name='dogear-service-worker']");
  if (meta && meta.content) {
    window.addEventListener("load", () => {
      navigator.serviceWorker.register(meta.content).catch((error) => {
        console.warn("Dogear: the offline page is unavailable:", error);
      });
    });
  }
}

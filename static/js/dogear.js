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

// A range input shows its value live in its <output>.
document.addEventListener("input", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "range" || !input.dataset.output) return;
  const output = document.getElementById(input.dataset.output);
  if (output) output.textContent = `${input.value} %`;
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

// Keep keyboard focus after a swap: when the focused control was replaced, focus the
// same control in the new content (by id); else the region's preferred control
// (data-focus-fallback), its first control, or the region itself when it is a note.
let focusedId = null;
let focusedRegionId = null;
document.addEventListener("htmx:beforeSwap", () => {
  const active = document.activeElement;
  if (!(active instanceof HTMLElement) || active === document.body) return;
  focusedId = active.id || null;
  const region = active.parentElement && active.parentElement.closest("[id]");
  focusedRegionId = region ? region.id : null;
});
document.addEventListener("htmx:afterSettle", () => {
  if (document.activeElement && document.activeElement !== document.body) return;
  const same = focusedId && document.getElementById(focusedId);
  const region = focusedRegionId && document.getElementById(focusedRegionId);
  let target = same || null;
  if (!target && region) {
    target = region.querySelector("[data-focus-fallback]") ||
      region.querySelector("a, button, input, select, textarea") ||
      (region.hasAttribute("tabindex") ? region : null);
  }
  if (target instanceof HTMLElement) target.focus();
});

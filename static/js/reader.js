// The reader view (the post page showing an article): keeps the reader's place as they
// scroll, reopens the article where they left off, keyboard shortcuts, and a bar that
// keeps out of the way. Loaded only on the post page. Everything here is optional:
// without it the bar's buttons are plain forms and the reader sets progress by hand.
"use strict";

(() => {
  const END = 1000; // positions are thousandths of the article's length
  const SAVE_EVERY_MS = 3000;
  const LABELS = { saved: "Up next", reading: "Reading", done: "Done", archived: "Archived" };

  /** The Reader of the article on the page (null on a post without one). */
  let reader = null;

  function csrfToken() {
    const field = document.querySelector("#actions input[name='csrf_token']");
    if (field) return field.value;
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch {
      return "";
    }
  }

  function smooth() {
    return window.matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth";
  }

  function formatMinutes(minutes) {
    if (minutes < 60) return `${minutes} min`;
    const rest = minutes % 60;
    return rest ? `${Math.floor(minutes / 60)} h ${rest} min` : `${minutes / 60} h`;
  }

  function bar() {
    return document.querySelector(".reader-bar[data-state]");
  }

  /** A small note at the bottom of the screen; `actions` are [label, onClick] pairs. */
  function toast(text, actions, timeoutMs) {
    const region = document.getElementById("reader-toasts");
    if (!region) return null;
    const note = document.createElement("div");
    note.className = "reader-toast";
    const words = document.createElement("span");
    words.textContent = text;
    note.append(words);
    for (const [label, onClick] of actions) {
      const separator = document.createElement("span");
      separator.setAttribute("aria-hidden", "true");
      separator.textContent = "·";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "reader-toast-action";
      button.textContent = label;
      button.addEventListener("click", () => onClick(note));
      note.append(separator, button);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "reader-toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => note.remove());
    note.append(close);
    region.append(note);
    if (timeoutMs) {
      // Gone after a while, unless the reader is pointing at it or on one of its buttons.
      const expire = () => {
        if (!note.isConnected) return;
        if (note.matches(":hover, :focus-within")) window.setTimeout(expire, 2000);
        else note.remove();
      };
      window.setTimeout(expire, timeoutMs);
    }
    return note;
  }

  class Reader {
    constructor(article) {
      this.article = article;
      this.content = article.querySelector(".reader-content") || article;
      this.chrome = document.querySelector("[data-reader-chrome]");
      const data = article.dataset;
      this.positionUrl = data.positionUrl || null; // only with an entry: nobody else is tracked
      this.progressUrl = data.progressUrl || null;
      this.state = data.state || null;
      this.progress = Number(data.progress || 0);
      this.resume = Number(data.resume || 0);
      this.position = null; // where the reader is now, 0-1000
      this.sent = this.resume; // the last position the server has, or is being sent
      this.lastSentAt = 0;
      this.timer = null;
      this.inFlight = false;
      // Only the reader's own scrolling counts: not a resume, nor an article short
      // enough to show its end without scrolling.
      this.engaged = false;
      this.settledY = window.scrollY;
      this.lastY = window.scrollY;
      // After "Not done yet" at the end, the end is not reported until they leave it.
      this.holdEnd = false;
      this.beforeDone = null; // the progress the reader had before it was marked done
    }

    /** Thousandths of the article whose bottom has passed the viewport's bottom; the end
     * (its last block in view) is 1000. */
    measure() {
      const rect = this.content.getBoundingClientRect();
      if (rect.height <= 0) return null;
      const bottom = window.innerHeight;
      const last = this.content.lastElementChild || this.content;
      if (last.getBoundingClientRect().bottom <= bottom + 1) return END;
      const fraction = (bottom - rect.top) / rect.height;
      return Math.max(0, Math.min(END - 1, Math.round(fraction * END)));
    }

    resumeIfAny() {
      if (!this.positionUrl || window.location.hash || this.state === "done") return;
      if (this.resume <= 0 || this.resume >= END) return;
      const rect = this.content.getBoundingClientRect();
      const top = window.scrollY + rect.top + (this.resume / END) * rect.height - window.innerHeight;
      if (top < window.innerHeight / 2) return; // still on the first screen: nothing to find
      window.scrollTo({ top, behavior: "instant" });
      this.settledY = this.lastY = window.scrollY;
      this.position = this.measure();
      toast(
        "Resumed where you left off",
        [
          [
            "Back to the top",
            (note) => {
              note.remove();
              window.scrollTo({ top: 0, behavior: smooth() });
            },
          ],
        ],
        12000,
      );
    }

    onScroll() {
      const y = window.scrollY;
      if (!this.engaged && Math.abs(y - this.settledY) >= 4) this.engaged = true;
      this.tuckBar(y);
      this.update();
    }

    /** The bar slides away while the reader scrolls down and comes back when they
     * scroll up (or move into it with the keyboard, see reader.css). */
    tuckBar(y) {
      if (!this.chrome) return;
      const delta = y - this.lastY;
      if (Math.abs(delta) < 8) return;
      this.lastY = y;
      const busy = this.chrome.querySelector("details[open]") || this.chrome.contains(document.activeElement);
      const tucked = delta > 0 && y > this.chrome.offsetHeight + 160 && !busy;
      this.chrome.classList.toggle("is-tucked", tucked);
    }

    update() {
      const position = this.measure();
      if (position === null) return;
      this.position = position;
      if (!this.positionUrl || !this.engaged) return;
      if (this.holdEnd) {
        if (position < END) this.holdEnd = false;
        else return;
      }
      this.schedule();
    }

    /** Save at most every few seconds while the position changes; the end at once. */
    schedule() {
      if (this.position === this.sent || this.inFlight) return;
      if (this.position === END && this.timer) {
        window.clearTimeout(this.timer);
        this.timer = null;
      }
      if (this.timer) return;
      const wait = this.position === END ? 0 : this.lastSentAt + SAVE_EVERY_MS - Date.now();
      this.timer = window.setTimeout(() => {
        this.timer = null;
        this.send();
      }, Math.max(0, wait));
    }

    async send() {
      if (!this.positionUrl || this.position === null || this.position === this.sent) return;
      const position = this.position;
      const previous = this.sent;
      this.inFlight = true;
      this.sent = position;
      this.lastSentAt = Date.now();
      try {
        const response = await fetch(this.positionUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
          body: new URLSearchParams({ position: String(position) }),
        });
        const type = response.headers.get("Content-Type") || "";
        if (!response.ok || !type.includes("json")) {
          // Signed out, entry removed, or the form expired: stop, the page still works.
          console.warn(`Dogear: your place was not saved (HTTP ${response.status}).`);
          this.positionUrl = null;
          return;
        }
        this.answered(await response.json());
      } catch (error) {
        this.sent = previous; // offline for a moment: the next scroll tries again
        console.warn("Dogear: your place was not saved:", error);
      } finally {
        this.inFlight = false;
        if (this.positionUrl && this.engaged && this.position !== this.sent) this.schedule();
      }
    }

    /** Send what the server hasn't got yet as the page goes away (a beacon survives the
     * page; its answer is ignored). */
    flush() {
      if (!this.positionUrl || !this.engaged || this.position === null) return;
      if (this.position === this.sent || (this.holdEnd && this.position === END)) return;
      const body = new URLSearchParams({ position: String(this.position), csrf_token: csrfToken() });
      if (navigator.sendBeacon(this.positionUrl, body)) {
        this.sent = this.position;
        window.clearTimeout(this.timer);
        this.timer = null;
      }
    }

    answered(data) {
      const before = this.progress;
      const wasDone = this.state === "done";
      this.show(data.progress, data.state);
      if (data.state === "done" && !wasDone) {
        this.beforeDone = before;
        this.announceDone();
        document.body.dispatchEvent(new CustomEvent("list-changed"));
      }
    }

    /** Progress and state in the bar, from the server's answer (never a guess, so it
     * never shows less than the reader has read). */
    show(progress, state) {
      this.progress = progress;
      this.state = state;
      const element = bar();
      if (!element) return;
      element.dataset.progress = String(progress);
      element.dataset.state = state;
      const meter = element.querySelector("[data-reader-progress]");
      if (meter) {
        meter.value = progress;
        meter.textContent = `${progress} %`;
      }
      const percent = element.querySelector("[data-reader-percent]");
      const quiet = state === "done" || (state === "saved" && !progress);
      if (percent) percent.textContent = quiet ? "" : `${progress} %`;
      const badge = element.querySelector("[data-reader-state]");
      if (badge && LABELS[state]) {
        badge.textContent = LABELS[state];
        badge.className = `state-badge state-${state}`;
      }
      const left = element.querySelector("[data-reader-left]");
      if (left && left.dataset.minutes) {
        const minutes = Math.ceil((Number(left.dataset.minutes) * (100 - progress)) / 100);
        left.textContent = `${formatMinutes(minutes)} left`;
      }
      const slider = element.querySelector("input[type='range'][name='progress']");
      if (slider && document.activeElement !== slider) {
        slider.value = String(progress);
        const output = slider.dataset.output && document.getElementById(slider.dataset.output);
        if (output) output.textContent = `${progress} %`;
      }
    }

    /** The bar was swapped after a list change: take its state as the truth. */
    sync() {
      const element = bar();
      if (!element) return;
      this.state = element.dataset.state;
      this.progress = Number(element.dataset.progress || 0);
    }

    announceDone() {
      for (const old of document.querySelectorAll(".reader-toast[data-done]")) old.remove();
      const note = toast("Marked as done", [["Not done yet", (n) => this.undo(n)]], 15000);
      if (note) note.dataset.done = "";
    }

    /** "Not done yet": back to the progress the reader had before it was marked done. */
    undo(note) {
      if (!this.progressUrl) return;
      const step = this.undoProgress();
      this.holdEnd = this.position === END;
      const done = () => {
        if (note) note.remove();
        toast(`Back to reading, at ${step} %`, [], 5000);
      };
      if (window.htmx) {
        // Through htmx, so the answer's flash and list counters land where they belong
        // and its HX-Trigger (list-changed) refreshes the bar.
        window.htmx
          .ajax("POST", this.progressUrl, { source: document.body, swap: "none", values: { step } })
          .then(done);
        return;
      }
      fetch(this.progressUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
        body: new URLSearchParams({ step: String(step) }),
      }).then((response) => {
        if (!response.ok) return;
        this.show(step, "reading");
        document.body.dispatchEvent(new CustomEvent("list-changed"));
        done();
      });
    }

    undoProgress() {
      const before = this.beforeDone ?? Math.floor(Math.min(this.position ?? 0, END - 1) / 10);
      return Math.max(1, Math.min(99, before));
    }
  }

  function start() {
    const article = document.querySelector("[data-reader]");
    if (!article) {
      reader = null;
      return;
    }
    if (reader && reader.article === article) return;
    reader = new Reader(article);
    if ("scrollRestoration" in window.history) window.history.scrollRestoration = "manual";
    // After layout: the stylesheet is in, so the article has its real height.
    window.requestAnimationFrame(() => {
      if (reader && reader.article === article) {
        reader.resumeIfAny();
        reader.position = reader.measure();
      }
    });
  }

  // --- events --------------------------------------------------------------------------

  let frame = 0;
  window.addEventListener(
    "scroll",
    () => {
      if (frame || !reader) return;
      frame = window.requestAnimationFrame(() => {
        frame = 0;
        if (reader) reader.onScroll();
      });
    },
    { passive: true },
  );
  window.addEventListener("resize", () => reader && reader.update(), { passive: true });
  // Leaving: a link, a reload or closing the tab (beforeunload, while the page is still
  // whole: a beacon sent from pagehide in a page the service worker controls is lost in
  // Chromium), switching tabs or apps (visibilitychange), and anything else (pagehide).
  window.addEventListener("beforeunload", () => reader && reader.flush());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden" && reader) reader.flush();
  });
  window.addEventListener("pagehide", () => reader && reader.flush());

  // The article arrives by a swap when it was being fetched as the page opened.
  document.addEventListener("htmx:load", start);
  document.addEventListener("htmx:afterSettle", () => reader && reader.sync());

  // The bar's Done (button or `d`): the same undo as when the end of the article is read.
  document.addEventListener("htmx:afterRequest", (event) => {
    const element = event.detail.elt;
    if (!reader || !event.detail.successful || !(element instanceof Element)) return;
    if (element.matches("[data-reader-done]")) {
      reader.beforeDone = reader.progress;
      reader.state = "done";
      reader.announceDone();
    } else if (element.matches("[data-reader-undone]")) {
      reader.holdEnd = reader.position === END;
      for (const old of document.querySelectorAll(".reader-toast[data-done]")) old.remove();
    }
  });
  // The bar's "Not done yet" sends the progress the reader had, when this page knows it.
  document.addEventListener("htmx:configRequest", (event) => {
    const element = event.detail.elt;
    if (!reader || !(element instanceof Element) || !element.matches("[data-reader-undone]")) return;
    if (reader.beforeDone !== null) event.detail.parameters.step = String(reader.undoProgress());
  });

  function openKeys() {
    const dialog = document.getElementById("reader-keys");
    if (dialog instanceof HTMLDialogElement && !dialog.open) dialog.showModal();
  }

  function closeMenus(except) {
    for (const menu of document.querySelectorAll("details.reader-more[open]")) {
      if (menu !== except) menu.open = false;
    }
  }

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    if (target.closest("[data-reader-keys]")) {
      closeMenus(null);
      openKeys();
      return;
    }
    // A click on the dialog's backdrop closes it.
    if (target instanceof HTMLDialogElement && target.id === "reader-keys") target.close();
    closeMenus(target.closest("details.reader-more"));
  });

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") {
      const menu = document.querySelector("details.reader-more[open]");
      if (menu) {
        menu.open = false;
        menu.querySelector("summary").focus();
        event.preventDefault();
      }
      return;
    }
    if (!reader || document.querySelector("dialog[open]")) return;
    const target = event.target;
    if (
      target instanceof HTMLElement &&
      (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))
    ) {
      return;
    }
    const step = Math.max(40, Math.round(window.innerHeight * 0.2));
    switch (event.key) {
      case "j":
      case "ArrowDown":
        window.scrollBy({ top: step, behavior: smooth() });
        break;
      case "k":
      case "ArrowUp":
        window.scrollBy({ top: -step, behavior: smooth() });
        break;
      case "d": {
        const done = document.querySelector("[data-reader-done]");
        if (!done) return;
        done.click();
        break;
      }
      case "o": {
        const url = reader.article.dataset.original;
        if (!url) return;
        window.open(url, "_blank", "noopener,noreferrer");
        break;
      }
      case "?":
        openKeys();
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

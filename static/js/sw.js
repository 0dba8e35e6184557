// Dogear's service worker, served from the site's root as /sw.js (see app/pwa.py).
//
// It makes Dogear installable and shows a plain "you're offline" page when a page
// can't be reached. It never stores pages: they carry a reader's list and form tokens,
// and a shared or signed-out device must not show them from a cache. It keeps only our
// static files and the offline page, neither of which holds anything about a reader.
"use strict";

const CACHE = "dogear-static-v1";
// Relative to this script, so a Dogear mounted under a path prefix works too.
const OFFLINE_URL = new URL("offline", self.location).href;
const STATIC_URLS = [
  "static/css/dogear.css",
  "static/vendor/htmx.min.js",
  "static/js/dogear.js",
  "static/img/dogear.svg",
].map((path) => new URL(path, self.location).href);

self.addEventListener("install", (event) => {
  // Fetched without cookies: what goes into the cache can't depend on who is signed in.
  const requests = [...STATIC_URLS, OFFLINE_URL].map(
    (url) => new Request(url, { credentials: "omit" }),
  );
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(requests))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(
        keys.filter((key) => key.startsWith("dogear-") && key !== CACHE)
          .map((key) => caches.delete(key)),
      ))
      .then(() => self.clients.claim()),
  );
});

function fromCache(url) {
  return caches.match(url).then((cached) => cached || Response.error());
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;

  if (request.mode === "navigate") {
    // Pages: always the network, never stored. Only when it can't be reached at all
    // (not on an error status) does the reader get the offline page instead.
    event.respondWith(fetch(request).catch(() => fromCache(OFFLINE_URL)));
    return;
  }

  if (STATIC_URLS.includes(request.url)) {
    // Our static files: the network first, so a new version shows at once, and the
    // copy kept for the offline page when the network fails.
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) {
            const copy = response.clone();
            event.waitUntil(caches.open(CACHE).then((cache) => cache.put(request.url, copy)));
          }
          return response;
        })
        .catch(() => fromCache(request.url)),
    );
  }
  // Everything else (htmx requests, the manifest, icons) goes to the network untouched.
});

// Keeps a server-rendered dashboard page live: polls the JSON endpoint
// named by <main data-source> and updates the elements whose data-*
// attributes name a field. Values are only ever written with textContent
// or as attributes, never parsed as HTML: payloads may contain markup.
"use strict";

(function () {
  const root = document.querySelector("main[data-source]");
  const live = document.getElementById("live");

  // "18:40:01.123" today, "3 Dec 18:40:01.123" on other days, local time.
  function when(iso) {
    if (!iso) return "";
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return iso;
    const time =
      moment.toLocaleTimeString([], {
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        hour12: false,
      }) +
      "." +
      String(moment.getMilliseconds()).padStart(3, "0");
    if (moment.toDateString() === new Date().toDateString()) return time;
    return moment.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + time;
  }

  function setTime(el, iso) {
    el.setAttribute("datetime", iso || "");
    el.textContent = when(iso);
    if (iso) el.title = iso;
  }

  // Elements of `node` that belong to it rather than to a nested row.
  function own(node, selector) {
    const found = node.matches(selector) ? [node] : [];
    for (const el of node.querySelectorAll(selector)) {
      if (el.parentElement.closest("[data-row], [data-object]") === node) found.push(el);
    }
    return found;
  }

  function fill(node, item) {
    for (const el of own(node, "[data-field]")) {
      const value = item[el.dataset.field];
      const text = value === null || value === undefined ? "" : String(value);
      if (el.textContent !== text) el.textContent = text;
    }
    for (const el of own(node, "[data-time]")) setTime(el, item[el.dataset.time]);
    for (const el of own(node, "[data-state-field]")) {
      el.dataset.state = item[el.dataset.stateField] || "";
    }
    for (const el of own(node, "[data-show]")) el.hidden = !item[el.dataset.show];
    for (const el of own(node, "[data-href]")) {
      const href = item[el.dataset.href];
      // Only paths of this dashboard become links.
      if (typeof href === "string" && href.startsWith("/")) el.setAttribute("href", href);
    }
    for (const el of own(node, "[data-bar]")) {
      el.style.left = Number(item.bar_left || 0) + "%";
      el.style.width = Number(item.bar_width || 0) + "%";
    }
    for (const el of own(node, "[data-list]")) {
      const items = item[el.dataset.list];
      if (Array.isArray(items)) sync(el, items);
    }
  }

  // Make the rows of `list` match `items`, in order, reusing rows by key.
  function sync(list, items) {
    const template = list.querySelector(":scope > template");
    const rows = new Map();
    for (const row of list.querySelectorAll(":scope > [data-row]")) {
      rows.set(row.dataset.key, row);
    }
    let previous = template;
    for (const item of items) {
      const key = String(item.id);
      let row = rows.get(key);
      rows.delete(key);
      if (!row) {
        row = template.content.firstElementChild.cloneNode(true);
        row.dataset.key = key;
      }
      fill(row, item);
      if (previous.nextElementSibling !== row) previous.after(row);
      previous = row;
    }
    for (const stale of rows.values()) stale.remove();
  }

  function apply(body) {
    for (const [key, value] of Object.entries(body)) {
      if (Array.isArray(value)) {
        for (const list of document.querySelectorAll(`[data-list="${key}"]`)) {
          if (!list.parentElement.closest("[data-row]")) sync(list, value);
        }
        for (const note of document.querySelectorAll(`[data-empty-for="${key}"]`)) {
          note.hidden = value.length > 0;
        }
      } else if (value && typeof value === "object") {
        for (const region of document.querySelectorAll(`[data-object="${key}"]`)) {
          fill(region, value);
        }
      }
    }
  }

  function showLive(state) {
    if (!live) return;
    live.hidden = false;
    live.dataset.state = state;
    live.textContent = { live: "live", done: "finished", offline: "offline" }[state];
  }

  async function poll() {
    const source = root.dataset.source;
    const interval = Number(root.dataset.interval) || 1500;
    let ended = false;
    while (!ended) {
      if (!document.hidden) {
        try {
          const answer = await fetch(source, { headers: { accept: "application/json" } });
          if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
          const body = await answer.json();
          apply(body);
          // A finished run changes no more: one last update, then stop.
          ended = Boolean(body.run && body.run.ended);
          showLive(ended ? "done" : "live");
        } catch (problem) {
          showLive("offline");
        }
      }
      if (!ended) await new Promise((done) => setTimeout(done, interval));
    }
  }

  for (const el of document.querySelectorAll("time[datetime]")) {
    setTime(el, el.getAttribute("datetime"));
  }
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    form.addEventListener("change", () => form.requestSubmit());
  }
  if (root) poll();
})();

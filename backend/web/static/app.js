// The page: a form that submits a document, a panel that follows one job,
// and the list of this user's jobs. Everything that came from the server or
// from a document is written with textContent, never parsed as markup.

import * as api from "./api.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const FINAL_EVENTS = new Set(["completed", "failed", "cancelled"]);
const RECONNECT_MS = 1000;

const $ = (id) => document.getElementById(id);

// The job on show, and the controller that stops following it.
let following = null;
let olderCursor = null;
// A job submitted from this page is scrolled to once it shows, so that on a
// phone, where the panel may be off screen, its progress is what one sees.
let justSubmitted = null;

function show(element, visible) {
  element.hidden = !visible;
}

function setText(element, text) {
  element.textContent = text;
  show(element, Boolean(text));
}

// The job in the URL, so that a reload or a shared link finds it again.
function jobIdFromHash() {
  const match = /^#job=([A-Za-z0-9]+)$/.exec(location.hash);
  return match ? match[1] : null;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

// ---- the form ----

function chosenSource() {
  return document.querySelector('input[name="source"]:checked').value;
}

function showSource() {
  const source = chosenSource();
  for (const field of document.querySelectorAll("[data-source]")) {
    show(field, field.dataset.source === source);
  }
}

function commonFields() {
  const fields = { max_sentences: Number($("max-sentences").value || 5) };
  const title = $("title").value.trim();
  if (title) fields.title = title;
  const format = $("format").value;
  if (format !== "auto") fields.format = format;
  return fields;
}

async function submit(event) {
  event.preventDefault();
  setText($("form-error"), "");
  const source = chosenSource();
  const fields = commonFields();
  let sending;
  if (source === "text") {
    const text = $("text").value;
    if (!text.trim()) return setText($("form-error"), "Paste the text to summarise first.");
    sending = api.submitJson({ text, ...fields });
  } else if (source === "file") {
    const file = $("file").files[0];
    if (!file) return setText($("form-error"), "Choose a file to summarise first.");
    // Without a title of its own, the job is known by its file's name.
    sending = api.submitFile(file, { title: file.name, ...fields });
  } else {
    const url = $("url").value.trim();
    if (!url) return setText($("form-error"), "Give the URL of the document first.");
    sending = api.submitJson({ url, ...fields });
  }
  const button = $("submit");
  button.disabled = true;
  try {
    const accepted = await sending;
    // The document is with the job now; an empty form cannot send it twice.
    for (const id of ["text", "file", "url", "title"]) $(id).value = "";
    justSubmitted = accepted.id;
    location.hash = `job=${accepted.id}`;
    loadHistory();
  } catch (error) {
    setText($("form-error"), error.message);
  } finally {
    button.disabled = false;
  }
}

// ---- one job ----

function renderJob(job) {
  show($("job"), true);
  $("job-title").textContent = job.title || "Untitled document";
  $("job-id").textContent = job.id;
  const badge = $("job-status");
  badge.textContent = job.status;
  badge.className = `badge status-${job.status}`;

  const { done, total, step } = job.progress;
  const bar = $("job-bar");
  bar.setAttribute("aria-valuemax", String(total));
  bar.setAttribute("aria-valuenow", String(done));
  const share = job.status === "succeeded" ? 1 : total > 0 ? done / total : 0;
  $("job-fill").style.width = `${Math.round(share * 100)}%`;
  $("job-fill").className = `fill status-${job.status}`;
  const counted = total > 0 ? ` (${done}/${total})` : "";
  $("job-step").textContent = TERMINAL.has(job.status)
    ? `${job.status}${counted}`
    : `${step ? `step ${step}` : job.status}${counted}`;

  setText($("job-error"), job.error || "");
  const cancel = $("cancel");
  show(cancel, !TERMINAL.has(job.status));
  cancel.disabled = false;

  const list = $("summary");
  list.replaceChildren(
    ...(job.sentences || []).map((sentence) => {
      const item = document.createElement("li");
      item.textContent = sentence;
      return item;
    }),
  );
  show($("summary-heading"), list.childElementCount > 0);
  markCurrentInHistory(job.id);
}

// Follow a job until it ends: the stream first, and if the stream breaks
// (a restarted server, a dropped connection) the job is read again and the
// stream reopened, so the page never stays on a stale state.
async function follow(id) {
  if (following) following.abort();
  const stop = new AbortController();
  following = stop;
  const { signal } = stop;
  setText($("job-notice"), "");
  // Another job's state must not stay on show while this one loads.
  if ($("job-id").textContent !== id) showPlaceholder(id, "Loading…", "");
  let job;
  for (;;) {
    try {
      job = await api.getJob(id, signal);
      renderJob(job);
      setText($("job-notice"), "");
      if (justSubmitted === id) {
        justSubmitted = null;
        $("job").scrollIntoView({ block: "start" });
      }
      if (TERMINAL.has(job.status)) break;
      for await (const { event, data } of api.jobEvents(id, signal)) {
        job = JSON.parse(data);
        renderJob(job);
        if (FINAL_EVENTS.has(event)) break;
      }
      if (TERMINAL.has(job.status)) break;
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof api.ApiError && error.status >= 400 && error.status < 500) {
        showMissing(id, error.message);
        return;
      }
      setText($("job-notice"), `${error.message} Trying again…`);
    }
    if (signal.aborted) return;
    await sleep(RECONNECT_MS, signal);
    if (signal.aborted) return;
  }
  if (!signal.aborted) loadHistory();
}

function showMissing(id, message) {
  showPlaceholder(id, "Job not available", message);
}

function showPlaceholder(id, title, message) {
  show($("job"), true);
  $("job-title").textContent = title;
  $("job-id").textContent = id;
  $("job-status").textContent = "";
  $("job-status").className = "badge";
  $("job-bar").setAttribute("aria-valuemax", "0");
  $("job-bar").setAttribute("aria-valuenow", "0");
  $("job-fill").style.width = "0%";
  $("job-step").textContent = "";
  show($("cancel"), false);
  $("summary").replaceChildren();
  show($("summary-heading"), false);
  setText($("job-error"), message);
}

async function cancel() {
  const id = jobIdFromHash();
  if (!id) return;
  const button = $("cancel");
  button.disabled = true;
  try {
    renderJob(await api.cancelJob(id));
  } catch (error) {
    setText($("job-notice"), error.message);
    button.disabled = false;
  }
}

function onHash() {
  const id = jobIdFromHash();
  if (id) {
    follow(id);
  } else {
    if (following) following.abort();
    following = null;
    show($("job"), false);
  }
}

// ---- the list of jobs ----

function historyItem(job) {
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.href = `#job=${job.id}`;
  link.className = "job-link";
  link.dataset.id = job.id;

  const title = document.createElement("span");
  title.className = "job-name";
  title.textContent = job.title || "Untitled document";
  const badge = document.createElement("span");
  badge.className = `badge status-${job.status}`;
  badge.textContent = job.status;
  const when = document.createElement("time");
  when.dateTime = job.created_at;
  when.textContent = new Date(job.created_at).toLocaleString();

  link.append(title, badge, when);
  item.append(link);
  return item;
}

function markCurrentInHistory(id) {
  for (const link of document.querySelectorAll(".job-link")) {
    if (link.dataset.id === id) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  }
}

async function loadHistory(cursor = null) {
  const note = $("history-note");
  try {
    const page = await api.listJobs(cursor);
    const items = page.items.map(historyItem);
    if (cursor) $("jobs").append(...items);
    else $("jobs").replaceChildren(...items);
    olderCursor = page.next_cursor;
    show($("more"), Boolean(olderCursor));
    setText(note, $("jobs").childElementCount ? "" : "No summaries yet.");
    markCurrentInHistory(jobIdFromHash());
  } catch (error) {
    setText(note, `The list is not available: ${error.message}`);
  }
}

function showWho() {
  const user = api.userId();
  // The generated id is long; its start tells two browsers apart.
  setText($("who"), `Working as ${user.slice(0, 12)}`);
  $("who").title = user;
}

function start() {
  for (const radio of document.querySelectorAll('input[name="source"]')) {
    radio.addEventListener("change", showSource);
  }
  showSource();
  $("submit-form").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancel);
  $("refresh").addEventListener("click", () => loadHistory());
  $("more").addEventListener("click", () => loadHistory(olderCursor));
  window.addEventListener("hashchange", onHash);
  showWho();
  onHash();
  loadHistory();
}

start();

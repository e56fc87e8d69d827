// The Digest API as the page uses it: a bearer token, JSON calls, and the
// job's event stream read with fetch() so that the token travels in a
// header rather than in a URL that proxies and histories keep.

const TOKEN_KEY = "digest.token";
const USER_KEY = "digest.user";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The user id this browser works as; made once, so that a reload (or a
// token that expired) keeps the same jobs.
export function userId() {
  let user = localStorage.getItem(USER_KEY);
  if (!user) {
    user = `web-${crypto.randomUUID()}`;
    localStorage.setItem(USER_KEY, user);
  }
  return user;
}

let tokenRequest = null;
// Set once the backend has no token route (a profile without dev tokens),
// so that every call does not ask again.
let noDevTokens = false;

function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
  tokenRequest = null;
}

// The stored token, or a new one from the dev profile's token route. A
// backend without that route gets no token: if it wants one, its 401
// says so and the page shows that message.
async function bearer() {
  const stored = localStorage.getItem(TOKEN_KEY);
  if (stored) return stored;
  if (noDevTokens) return null;
  if (!tokenRequest) {
    tokenRequest = fetchDevToken().finally(() => {
      tokenRequest = null;
    });
  }
  return tokenRequest;
}

async function fetchDevToken() {
  let answer;
  try {
    answer = await fetch("/api/dev/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sub: userId() }),
    });
  } catch {
    throw unreachable();
  }
  const body = answer.ok ? await answer.json() : null;
  if (!body || typeof body.token !== "string") {
    noDevTokens = true;
    return null;
  }
  localStorage.setItem(TOKEN_KEY, body.token);
  return body.token;
}

function unreachable() {
  return new ApiError(0, "unreachable", "The server did not answer. Is Digest running?");
}

async function errorFrom(answer) {
  let code = "http_error";
  let message = `The server answered ${answer.status} ${answer.statusText}.`;
  try {
    const body = await answer.json();
    if (body && body.error && typeof body.error.message === "string") {
      code = String(body.error.code || code);
      message = body.error.message;
    }
  } catch {
    // Not JSON (a proxy's page, say): the status line is all there is.
  }
  return new ApiError(answer.status, code, message);
}

// One call with the bearer token; a 401 on a stored token means it expired
// or the server's key changed, so it is dropped and fetched once more.
async function send(method, path, { json, form, signal, accept } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const token = await bearer();
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (accept) headers.Accept = accept;
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    let answer;
    try {
      answer = await fetch(path, { method, headers, body, signal, cache: "no-store" });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw unreachable();
    }
    if (answer.status === 401 && token && attempt === 0) {
      forgetToken();
      continue;
    }
    if (!answer.ok) throw await errorFrom(answer);
    return answer;
  }
}

const jobPath = (id) => `/api/summaries/${encodeURIComponent(id)}`;

export async function submitJson(fields) {
  return (await send("POST", "/api/summaries", { json: fields })).json();
}

export async function submitFile(file, fields) {
  const form = new FormData();
  form.append("file", file, file.name);
  for (const [name, value] of Object.entries(fields)) form.append(name, String(value));
  return (await send("POST", "/api/summaries", { form })).json();
}

export async function getJob(id, signal) {
  return (await send("GET", jobPath(id), { signal })).json();
}

export async function cancelJob(id) {
  return (await send("POST", `${jobPath(id)}/cancel`)).json();
}

export async function listJobs(cursor) {
  const query = new URLSearchParams({ limit: "20" });
  if (cursor) query.set("cursor", cursor);
  return (await send("GET", `/api/summaries?${query}`)).json();
}

// The job's Server-Sent Events as {event, data} objects, until the server
// ends the stream or `signal` aborts it.
export async function* jobEvents(id, signal) {
  const answer = await send("GET", `${jobPath(id)}/events`, {
    signal,
    accept: "text/event-stream",
  });
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      // A CR at the very end may be half of a CRLF whose LF is still on
      // its way; it is normalised once the next chunk shows which it was.
      const cut = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
      buffer = buffer.slice(0, cut).replace(/\r\n?/g, "\n") + buffer.slice(cut);
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) yield event;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : null;
}

// The REST API: JSON in and out, one error type carrying the server's message.

const TOKEN_KEY = "convscope-admin-token";

// An admin token may arrive once in the page address (?token=...), as with Jupyter; it is kept for the tab only.
const fromAddress = new URLSearchParams(location.search).get("token");
if (fromAddress) {
  sessionStorage.setItem(TOKEN_KEY, fromAddress);
  history.replaceState(null, "", location.pathname + location.hash);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function send(path, { method = "GET", body, form, signal, accept } = {}) {
  const init = { method, headers: {}, signal };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (accept) init.headers.accept = accept;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  } else if (form) {
    init.body = form;
  }
  try {
    return await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The server cannot be reached. Is convscope serve running?");
  }
}

async function answerOf(response) {
  if (response.status === 204) return null;
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const data = isJson ? await response.json() : await response.text();
  if (!response.ok) {
    throw new ApiError(response.status, data?.error?.message || `The server answered ${response.status}.`);
  }
  return data;
}

export async function api(path, options = {}) {
  return answerOf(await send(path, options));
}

// Long work answered with progress (the server's NDJSON lines): `onProgress(done, total, message)` as it goes
// (`message` may carry more: a visualization's images so far), then the answer; aborting `signal` stops the
// server's work too (it notices the connection close).
export async function streamed(path, { body, signal, onProgress = () => {} }) {
  const response = await send(path, { method: "POST", body, signal, accept: "application/x-ndjson" });
  if (!(response.headers.get("content-type") || "").includes("ndjson")) return answerOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new ApiError(0, "The server closed the answer before it was complete.");
    buffered += value;
    const lines = buffered.split("\n");
    buffered = lines.pop();
    for (const line of lines.filter(Boolean)) {
      const message = JSON.parse(line);
      if (message.progress) onProgress(message.progress.done, message.progress.total, message.progress);
      else if (message.error) throw new ApiError(message.error.status, message.error.message);
      else return message.result;
    }
  }
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

let openapi = null;

// A request schema from the server's OpenAPI document (fetched once): forms take their defaults, limits and
// choices from it rather than from copies in the JS.
export async function requestSchema(name) {
  openapi ??= api("/api/openapi.json").catch((error) => {
    openapi = null;
    throw error;
  });
  return (await openapi).components.schemas[name];
}

// Give number inputs and selects their schema's default (when still empty), min/max (an exclusive bound as the
// bound itself: the server refuses it, the browser cannot say so) and choices: `inputs` is {field name: element}.
export function applySchema(schema, inputs) {
  for (const [name, input] of Object.entries(inputs)) {
    const property = schema.properties[name];
    if (!property) continue;
    if (property.enum && input.tagName === "SELECT") {
      input.replaceChildren(...property.enum.map((value) => Object.assign(document.createElement("option"),
        { value, textContent: value })));
    }
    if (property.minimum !== undefined) input.min = property.minimum;
    if (property.maximum !== undefined) input.max = property.maximum;
    if (property.exclusiveMinimum !== undefined) input.min = property.exclusiveMinimum; // the server says if equal
    if (property.exclusiveMaximum !== undefined) input.max = property.exclusiveMaximum;
    // a value typed before the schema arrived stays
    const given = property.default !== undefined && property.default !== null;
    if (given && input.value === "") input.value = property.default;
  }
}

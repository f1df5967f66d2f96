// The page's only way to the server: JSON over fetch, errors as ApiError.

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.error = this.body.error || null;
    // The API names the offending field ("passenger.first_name", "seat", ...).
    this.field = this.body.field || null;
    // A 400 lists every invalid field as {field, message}; any other refusal is one problem.
    this.problems = Array.isArray(this.body.errors) && this.body.errors.length
      ? this.body.errors
      : [{ field: this.field, message: this.message }];
  }
}

function messageOf(status, data) {
  if (data && typeof data.message === "string") return data.message;
  // Chalice's own error shape ({"Code", "Message"}), e.g. an unhandled 500.
  if (data && typeof data.Message === "string") {
    return status >= 500 ? `The server failed (HTTP ${status}): ${data.Message}` : data.Message;
  }
  return `The server answered HTTP ${status}`;
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    throw new ApiError(0, { message: `Cannot reach the server (${exc.message})` });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, { ...(data || {}), message: messageOf(response.status, data) });
  }
  return data;
}

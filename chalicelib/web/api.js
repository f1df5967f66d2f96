// The page's only way to the server: JSON over fetch, the customer's token on each call
// while signed in, errors as ApiError.

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

// --- The session: the customer's ID token ------------------------------------------------
// Kept in sessionStorage so a reload keeps the customer signed in and closing the tab
// signs them out. A browser that refuses storage (some private modes throw) still gets a
// session for the life of the page.
const TOKEN_KEY = "saga-air.id-token";
let heldToken = null;
let refused = () => {};

function stored() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return heldToken;
  }
}

function store(token) {
  heldToken = token;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // the in-memory copy is the session
  }
}

export const session = {
  token: () => stored(),
  start: (idToken) => store(idToken),
  end: () => store(null),
  // `handler(apiError)` runs when a route that needs a token answers 401 (none held,
  // expired, or refused): the token is already dropped, the page asks to sign in again.
  onRefused: (handler) => { refused = handler; },
};

// `path` is relative to the page ("flights", "bookings/<id>"), never "/flights": the page
// is served under API Gateway's stage path (https://…/api/) or a proxy's prefix, and a
// root-relative URL would leave it (API Gateway answers 403 there).
// `anonymous`: send no token, and a 401 is this call's own answer (POST /auth/sign-in's
// wrong credentials), not a session that ended.
export async function api(path, { method = "GET", body, anonymous = false } = {}) {
  if (/^(\/|[a-z][a-z0-9+.-]*:)/i.test(path)) throw new Error(`api() takes a path relative to the page, not ${path}`);
  const init = { method, headers: { Accept: "application/json" } };
  const token = anonymous ? null : stored();
  if (token) init.headers.Authorization = `Bearer ${token}`;
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
    const error = new ApiError(response.status, { ...(data || {}), message: messageOf(response.status, data) });
    // Only the token this request carried is dropped: a refusal that arrives after the
    // customer signed in again must not sign the new session out.
    if (response.status === 401 && !anonymous && stored() === token) {
      store(null);
      refused(error);
    }
    throw error;
  }
  return data;
}

// The few API calls the scanner makes, through the gateway of the page's own origin.
// The access token lives in sessionStorage (gone with the tab) and is refreshed once on a
// 401 with the refresh token; a request that cannot reach the server throws NetworkError,
// which the page treats as "offline".

const SESSION_KEY = "sbor.scanner.session";

/** The request did not reach the server (offline, DNS, connection refused, CORS...). */
export class NetworkError extends Error {}

/** The server answered with an error status; problem is its RFC 9457 body (if any). */
export class APIError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.code = (problem && problem.code) || "";
    this.problem = problem || {};
  }
}

export class API {
  constructor(storage = sessionStorage, fetchImpl = (...a) => fetch(...a)) {
    this.storage = storage;
    this.fetch = fetchImpl;
    this.onLoggedOut = () => {};
  }

  get session() {
    try {
      return JSON.parse(this.storage.getItem(SESSION_KEY) || "null");
    } catch {
      return null;
    }
  }

  set session(value) {
    if (value) this.storage.setItem(SESSION_KEY, JSON.stringify(value));
    else this.storage.removeItem(SESSION_KEY);
  }

  get loggedIn() {
    return Boolean(this.session && this.session.access_token);
  }

  async login(email, password) {
    const pair = await this.send("POST", "/api/auth/login", { email, password }, false);
    this.session = { access_token: pair.access_token, refresh_token: pair.refresh_token, email };
    return pair;
  }

  logout() {
    const s = this.session;
    this.session = null;
    if (s && s.refresh_token) {
      // Best effort: the tokens are forgotten here whatever the server says.
      this.send("POST", "/api/auth/logout", { refresh_token: s.refresh_token }, false).catch(() => {});
    }
  }

  async refresh() {
    const s = this.session;
    if (!s || !s.refresh_token) return false;
    if (!this.refreshing) {
      this.refreshing = this.send("POST", "/api/auth/refresh", { refresh_token: s.refresh_token }, false)
        .then((pair) => {
          this.session = { ...s, access_token: pair.access_token, refresh_token: pair.refresh_token };
          return true;
        })
        .catch((err) => {
          if (err instanceof NetworkError) throw err;
          return false;
        })
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }

  /** Sends a request; JSON in, JSON out. Retries once after refreshing an expired token. */
  async send(method, path, body, authorized = true) {
    for (let attempt = 0; ; attempt++) {
      const headers = { Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const s = this.session;
      if (authorized && s) headers.Authorization = `Bearer ${s.access_token}`;
      let resp;
      try {
        resp = await this.fetch(path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          credentials: "omit",
          cache: "no-store",
        });
      } catch (err) {
        throw new NetworkError(String(err && err.message ? err.message : err));
      }
      if (resp.status === 401 && authorized && attempt === 0 && (await this.refresh())) continue;
      let data = null;
      const type = resp.headers.get("Content-Type") || "";
      if (type.includes("json")) {
        try {
          data = await resp.json();
        } catch {
          data = null;
        }
      }
      if (resp.status === 401 && authorized) {
        this.session = null;
        this.onLoggedOut();
      }
      if (!resp.ok) throw new APIError(resp.status, data);
      return data;
    }
  }

  /** Events this user may scan: owned published events merged with staff grants. */
  async scannableEvents() {
    const [own, staff] = await Promise.all([
      this.send("GET", "/api/events?organizer=me&limit=100").catch((err) => {
        if (err instanceof NetworkError) throw err;
        return { items: [] };
      }),
      this.send("GET", "/api/staff/events").catch((err) => {
        if (err instanceof NetworkError) throw err;
        return { items: [] };
      }),
    ]);
    const byID = new Map();
    for (const e of (own && own.items) || []) {
      if (e.status !== "published") continue;
      byID.set(e.id, { id: e.id, title: e.title, starts_at: e.starts_at, role: "owner" });
    }
    for (const e of (staff && staff.items) || []) {
      const prev = byID.get(e.event_id);
      byID.set(e.event_id, { id: e.event_id, title: e.title, starts_at: e.starts_at, role: prev ? prev.role : e.role || "staff" });
    }
    return [...byID.values()].sort((a, b) => String(a.starts_at).localeCompare(String(b.starts_at)));
  }

  scannerKeys(eventId) {
    return this.send("GET", `/api/events/${encodeURIComponent(eventId)}/scanner-keys`);
  }

  revocations(eventId, since) {
    return this.send("GET", `/api/events/${encodeURIComponent(eventId)}/revocations?since=${encodeURIComponent(since || 0)}`);
  }

  validate(code) {
    return this.send("POST", `/api/tickets/${encodeURIComponent(code)}/validate`);
  }

  checkin(code) {
    return this.send("POST", `/api/tickets/${encodeURIComponent(code)}/checkin`);
  }
}

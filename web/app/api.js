// The HTTP API client: JSON in and out, the ID token as a bearer token. A 409 with Retry-After (the
// workflow has not stored its task token yet) is retried quietly; every other error is an ApiError the
// screen turns into words.

const MAX_QUIET_RETRIES = 10;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `request failed (${status})`);
    this.status = status;
    this.body = body || {};
  }
}

/** Seconds to wait from a Retry-After header (a number of seconds or an HTTP date), or null. */
export function retryAfterSeconds(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Api {
  /** `onUnauthorized` runs when the API answers 401 (an expired or revoked token). */
  constructor(baseUrl, token, { onUnauthorized } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body) {
    for (let attempt = 0; ; attempt += 1) {
      const response = await fetch(this.baseUrl + path, {
        method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
      const text = await response.text();
      const data = text ? JSON.parse(text) : null;
      if (response.ok) return data;
      const wait = retryAfterSeconds(response.headers.get("Retry-After"));
      if (response.status === 409 && wait !== null && attempt < MAX_QUIET_RETRIES) {
        await sleep(Math.max(250, wait * 1000));
        continue;
      }
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized();
      throw new ApiError(response.status, data);
    }
  }

  get(path) {
    return this.request("GET", path);
  }
  post(path, body) {
    return this.request("POST", path, body);
  }
  put(path, body) {
    return this.request("PUT", path, body);
  }
  delete(path) {
    return this.request("DELETE", path);
  }
}

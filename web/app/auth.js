// Sign-in: the OAuth 2.0 authorization code flow with PKCE (S256), the same code path against Cognito's
// managed login on AWS and the local identity provider of `make local` (local/web/oauth.py). The ID
// token is kept per screen in localStorage, so a reload (or the phone's browser coming back) keeps the
// customer signed in; it is sent to the API and the push channel, never put in a URL.

const PENDING = "sp.signin.pending";

function tokenKey(screen) {
  return `sp.token.${screen}`;
}

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function challengeFor(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The claims of a JWT (not verified: the API and the push channel verify; this only reads). */
export function claimsOf(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const json = decodeURIComponent(
    Array.from(atob(payload), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
  );
  return JSON.parse(json);
}

/** The groups of a token (Cognito's `cognito:groups`). */
export function groupsOf(token) {
  const groups = claimsOf(token)["cognito:groups"];
  return Array.isArray(groups) ? groups : [];
}

function stillValid(token) {
  try {
    return claimsOf(token).exp * 1000 > Date.now() + 60_000;
  } catch {
    return false;
  }
}

function pageWithout(url, names) {
  const clean = new URL(url);
  for (const name of names) clean.searchParams.delete(name);
  return clean;
}

/**
 * The signed-in user's ID token for this screen. May navigate away (to the sign-in page) and then
 * never resolves; the page comes back with ?code=&state= and this call finishes the exchange.
 */
export async function signIn(config, screen) {
  const here = new URL(location.href);
  const code = here.searchParams.get("code");
  if (code) {
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    if (pending && pending.state === here.searchParams.get("state")) {
      const token = await exchange(config, code, pending);
      localStorage.setItem(tokenKey(screen), token);
      history.replaceState(null, "", pageWithout(here, ["code", "state"]));
      return token;
    }
    history.replaceState(null, "", pageWithout(here, ["code", "state"]));
  }
  const ticket = here.searchParams.get("login"); // a `make link` URL: sign in as the ticket says
  const stored = localStorage.getItem(tokenKey(screen));
  if (!ticket && stored && stillValid(stored)) return stored;
  await redirectToSignIn(config, pageWithout(here, ["login", "code", "state"]), ticket);
  return new Promise(() => {}); // the browser is leaving
}

async function redirectToSignIn(config, returnTo, ticket) {
  const verifier = randomString();
  const state = randomString();
  const redirectUri = returnTo.origin + returnTo.pathname;
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, redirectUri, returnTo: returnTo.href }));
  const params = new URLSearchParams({
    response_type: "code",
    client_id: config.auth.clientId,
    redirect_uri: redirectUri,
    scope: config.auth.scope,
    state,
    code_challenge: await challengeFor(verifier),
    code_challenge_method: "S256",
  });
  if (ticket) params.set("login_hint", ticket);
  location.assign(`${config.auth.authorizeUrl}?${params}`);
}

async function exchange(config, code, pending) {
  const response = await fetch(config.auth.tokenUrl, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.auth.clientId,
      code,
      redirect_uri: pending.redirectUri,
      code_verifier: pending.verifier,
    }),
  });
  if (!response.ok) throw new Error(`sign-in failed (${response.status})`);
  const tokens = await response.json();
  // Restore the query the page had before signing in (e.g. the admission code), minus the OAuth answer.
  const back = new URL(pending.returnTo);
  history.replaceState(null, "", back);
  return tokens.id_token;
}

/** Forget this screen's token and sign in again (after the API said 401). */
export function signOut(config, screen) {
  localStorage.removeItem(tokenKey(screen));
  const params = new URLSearchParams({ client_id: config.auth.clientId, logout_uri: location.href });
  location.assign(`${config.auth.logoutUrl}?${params}`);
}

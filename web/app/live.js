// The live feed (push channel contract v1, docs in the repository): a WebSocket to the runtime
// configuration's pushUrl, authenticated with the ID token as the second subprotocol (never in the URL).
// Every (re)connect first re-reads what the screen shows over HTTP (`resync`), so nothing that happened
// while disconnected is missed; messages older than what the screen has (by version) are ignored.
// Without a pushUrl (a stack that serves no push channel) the screen re-reads over HTTP every
// `pollSeconds` instead: slower, but the screen still never needs a manual refresh.

import { showConnection } from "./ui.js";

const PROTOCOL = "serverlesspresso.v1";
const PING_EVERY_MS = 4 * 60 * 1000; // API Gateway closes idle connections after 10 minutes
const MAX_BACKOFF_MS = 30_000;

/**
 * Start the feed. Callbacks: resync() re-reads over HTTP (may throw: the feed retries), onOrder(order),
 * onShop(shop), onStatus("live" | "connecting" | "offline"). Returns { stop() }.
 */
export function startLiveFeed({ pushUrl, token, resync, onOrder, onShop, onStatus, pollSeconds = 1 }) {
  const orderVersions = new Map();
  let shopVersion = -Infinity;
  let stopped = false;
  let failures = 0;
  let socket = null;
  let timer = null;
  let pinger = null;

  const status = (value) => onStatus && onStatus(value);

  async function resyncReporting() {
    try {
      await resync();
      status("live");
      failures = 0;
      return true;
    } catch {
      status("offline");
      return false;
    }
  }

  function backoffMs() {
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures, 6));
    return base / 2 + Math.random() * (base / 2); // jitter: screens do not reconnect in lockstep
  }

  function handle(message) {
    if (message.type === "order" && message.order) {
      const { orderId, version } = message.order;
      if (typeof version === "number") {
        if (version <= (orderVersions.get(orderId) ?? -Infinity)) return; // redelivered or reordered
        orderVersions.set(orderId, version);
      }
      onOrder(message.order);
    } else if (message.type === "shop" && message.shop) {
      const version = message.shop.version;
      if (typeof version === "number") {
        if (version <= shopVersion) return;
        shopVersion = version;
      }
      onShop(message.shop);
    }
  }

  function connect() {
    if (stopped) return;
    status("connecting");
    try {
      socket = new WebSocket(pushUrl, [PROTOCOL, token]);
    } catch {
      scheduleReconnect();
      return;
    }
    socket.addEventListener("open", async () => {
      pinger = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send('{"action":"ping"}'), PING_EVERY_MS);
      await resyncReporting();
    });
    socket.addEventListener("message", (event) => {
      try {
        handle(JSON.parse(event.data));
      } catch {
        // not a message of this contract: ignore it
      }
    });
    socket.addEventListener("close", () => {
      clearInterval(pinger);
      socket = null;
      if (!stopped) {
        failures += 1;
        status("offline");
        scheduleReconnect();
      }
    });
  }

  function scheduleReconnect() {
    clearTimeout(timer);
    timer = setTimeout(connect, backoffMs());
  }

  async function poll() {
    if (stopped) return;
    const ok = await resyncReporting();
    if (!ok) failures += 1;
    timer = setTimeout(poll, ok ? pollSeconds * 1000 : Math.max(pollSeconds * 1000, backoffMs()));
  }

  // Back online (a phone changing networks): try now rather than when the backoff says.
  function retryNow() {
    if (stopped) return;
    clearTimeout(timer);
    if (!pushUrl) poll();
    else if (!socket) connect();
  }
  window.addEventListener("online", retryNow);

  if (pushUrl) connect();
  else poll();

  return {
    stop() {
      stopped = true;
      window.removeEventListener("online", retryNow);
      clearTimeout(timer);
      clearInterval(pinger);
      if (socket) socket.close();
    },
  };
}

/**
 * The feed as every screen uses it: the runtime configuration's pushUrl (re-reading every second when
 * the stack serves none), the connection badge (#connection) kept in words.
 */
export function startScreenFeed(config, token, { resync, onOrder, onShop }) {
  return startLiveFeed({
    pushUrl: config.pushUrl,
    token,
    resync,
    onOrder,
    onShop,
    onStatus: (status) => showConnection(document.getElementById("connection"), status),
    pollSeconds: 1,
  });
}

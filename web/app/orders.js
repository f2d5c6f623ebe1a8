// What the screens know about orders: one map per screen, fed by HTTP reads and push messages, where a
// stale copy never overwrites a newer one (push messages carry a version, HTTP reads do not: both carry
// updatedAt, which every write of the order moves forward).

export const TERMINAL = new Set(["COMPLETED", "CANCELLED", "TIMED_OUT", "REJECTED"]);
export const IN_PROGRESS = ["WAITING_FOR_BARISTA", "COMPLETING"]; // the barista queue and the display's Preparing

/** True when `candidate` is at least as new as `current`. */
export function isNewer(candidate, current) {
  if (!current) return true;
  if (typeof candidate.version === "number" && typeof current.version === "number") {
    return candidate.version >= current.version;
  }
  return (candidate.updatedAt || "") >= (current.updatedAt || "");
}

export class OrderBook {
  constructor() {
    this.orders = new Map();
  }

  /** Keep `order` unless a newer copy is already known; true if it changed what is known. */
  put(order) {
    const current = this.orders.get(order.orderId);
    if (!isNewer(order, current)) return false;
    this.orders.set(order.orderId, { ...current, ...order });
    return true;
  }

  /** Forget orders of these states that the latest full read did not return (they moved on unseen). */
  replaceStates(states, orders) {
    const seen = new Set(orders.map((order) => order.orderId));
    for (const [orderId, order] of this.orders) {
      if (states.includes(order.state) && !seen.has(orderId)) this.orders.delete(orderId);
    }
    for (const order of orders) this.put(order);
  }

  list(predicate = () => true) {
    return [...this.orders.values()].filter(predicate);
  }
}

/**
 * Re-read what the barista board and the display show into `book`: the queue (waiting, being made) and
 * the latest completed orders. Returns the shop configuration, read alongside.
 */
export async function readBoard(api, book) {
  const [shop, waiting, completing, completed] = await Promise.all([
    api.get("/config"),
    api.get("/orders?state=WAITING_FOR_BARISTA&limit=50"),
    api.get("/orders?state=COMPLETING&limit=50"),
    api.get("/orders?state=COMPLETED&limit=20"),
  ]);
  book.replaceStates(IN_PROGRESS, [...waiting.orders, ...completing.orders]);
  for (const order of completed.orders) book.put(order);
  return shop;
}

/** The order's state in plain words, for the customer (title and detail). */
export function customerWords(order) {
  const number = order.orderNumber ? `Order #${order.orderNumber}` : "Your order";
  switch (order.state) {
    case "PLACED":
    case "WAITING_FOR_CUSTOMER":
      return { title: "Choose your drink", detail: "" };
    case "SUBMITTED":
      return { title: "Sending your order…", detail: "" };
    case "WAITING_FOR_BARISTA":
      return order.baristaId
        ? { title: "Your drink is being made", detail: `${number}: look out for it on the big screen.` }
        : { title: `${number} is waiting for a barista`, detail: "Look out for your number on the big screen." };
    case "COMPLETING":
      return { title: "Your drink is nearly ready", detail: `${number}` };
    case "CANCELLING":
      return { title: "Cancelling…", detail: "" };
    case "COMPLETED":
      return { title: "Ready for collection!", detail: `${number}: pick it up at the counter.` };
    case "CANCELLED":
      return order.endReason === "BaristaCancelled"
        ? { title: "The barista cancelled your order", detail: "Sorry! You can order again." }
        : { title: "You cancelled your order", detail: "" };
    case "TIMED_OUT":
      return order.endReason === "Barista timedout"
        ? { title: "Sorry, the barista missed your order", detail: "It timed out before anyone made it. Please order again." }
        : { title: "You ran out of time", detail: "Your order timed out before you chose a drink." };
    case "REJECTED":
      return order.endReason === "shop capacity"
        ? { title: "The coffee bar is full", detail: "Try again in a minute." }
        : order.endReason === "shop closed"
          ? { title: "The coffee bar is closed", detail: "" }
          : { title: "Your order could not be started", detail: "Please try again." };
    default:
      return { title: order.state, detail: "" };
  }
}

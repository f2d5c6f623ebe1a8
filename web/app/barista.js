// The barista board (a tablet, barista role): waiting, making and ready lanes, live; make, unmake,
// complete and cancel an order; open or close the shop and set its capacity. An order another barista
// is making shows as taken, its buttons disabled, as soon as the claim reaches this board.

import { Api, ApiError } from "./api.js";
import { claimsOf, groupsOf, signIn, signOut } from "./auth.js";
import { startScreenFeed } from "./live.js";
import { OrderBook, readBoard } from "./orders.js";
import { clock, confirmAction, enteredAt, h, loadRuntimeConfig, render, secondsSince } from "./ui.js";

const SCREEN = "barista";

const config = await loadRuntimeConfig();
const token = await signIn(config, SCREEN);
const me = claimsOf(token);
const api = new Api(config.apiUrl, token, { onUnauthorized: () => signOut(config, SCREEN) });
const lanes = document.getElementById("lanes");
const controls = document.getElementById("shop-controls");
const notice = document.getElementById("notice");
document.getElementById("who").textContent = me["cognito:username"] || "";

const book = new OrderBook();
let shop = null;
let shownBoard = null;

if (!groupsOf(token).includes("barista")) {
  render(lanes, h("section", { class: "card center" }, h("h2", {}, "Baristas only"), h("p", {}, "Sign in with a barista account to use the board.")));
  throw new Error("not a barista");
}

// ------------------------------------------------------------------------------------ data
async function resync() {
  shop = await readBoard(api, book);
  update();
}

function lanesOf() {
  const age = (order, state) => secondsSince(enteredAt(order, state));
  const byAge = (state) => (a, b) => age(b, state) - age(a, state);
  const waiting = book.list((o) => o.state === "WAITING_FOR_BARISTA" && !o.baristaId).sort(byAge("WAITING_FOR_BARISTA"));
  const making = book
    .list((o) => (o.state === "WAITING_FOR_BARISTA" && o.baristaId) || o.state === "COMPLETING")
    .sort((a, b) => Number(b.baristaId === me.sub) - Number(a.baristaId === me.sub) || byAge("WAITING_FOR_BARISTA")(a, b));
  const ready = book
    .list((o) => o.state === "COMPLETED" && secondsSince(o.updatedAt) < config.readyLaneSeconds)
    .sort((a, b) => (b.updatedAt > a.updatedAt ? 1 : -1));
  return { waiting, making, ready };
}

// ----------------------------------------------------------------------------------- actions
function say(text) {
  notice.textContent = text;
}

async function act(order, action, done) {
  say("");
  try {
    book.put(await api.post(`/orders/${encodeURIComponent(order.orderId)}/${action}`));
    if (done) say(done);
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) say(`Order #${order.orderNumber} ${error.message.replace(/^order \S+ /, "")}.`);
    else if (error instanceof ApiError && error.status === 410) say(`Order #${order.orderNumber} has already ended.`);
    else say(error.message);
    await resync().catch(() => {});
  }
  update();
}

async function cancel(order) {
  const sure = await confirmAction({
    title: `Cancel order #${order.orderNumber}?`,
    text: `${order.drink}${order.customerName ? ` for ${order.customerName}` : ""}. The customer will be told.`,
    confirmLabel: "Cancel order",
    keepLabel: "Keep it",
  });
  if (sure) await act(order, "cancel", `Order #${order.orderNumber} cancelled.`);
}

async function setShop(changes, done) {
  try {
    shop = await api.put("/config", changes);
    say(done);
  } catch (error) {
    say(error.message);
  }
  update();
}

async function toggleShop() {
  if (shop.isOpen) {
    const sure = await confirmAction({
      title: "Close the shop?",
      text: "No new orders will be taken. Orders in the queue stay.",
      confirmLabel: "Close the shop",
      keepLabel: "Keep it open",
    });
    if (!sure) return;
  }
  await setShop({ isOpen: !shop.isOpen }, shop.isOpen ? "The shop is closed." : "The shop is open.");
}

async function setCapacity(event) {
  event.preventDefault();
  const value = Number(event.target.elements.capacity.value);
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    say("Capacity is a whole number from 1 to 1000.");
    return;
  }
  await setShop({ maxInFlight: value }, `Capacity set to ${value}.`);
}

// ------------------------------------------------------------------------------------- views
function ageClass(seconds) {
  const share = seconds / config.waits.baristaSeconds; // against the barista wait's heartbeat
  return share < 1 / 3 ? "age-fresh" : share < 2 / 3 ? "age-waiting" : "age-late";
}

function card(order, lane) {
  const mine = order.baristaId === me.sub;
  const taken = lane === "making" && !mine;
  const label = `order ${order.orderNumber}`;
  const since = lane === "ready" ? enteredAt(order, "COMPLETED") : enteredAt(order, "WAITING_FOR_BARISTA");
  const buttons = {
    waiting: [
      h("button", { class: "primary", "aria-label": `Make ${label}`, onclick: () => act(order, "make") }, "Make"),
      h("button", { class: "danger", "aria-label": `Cancel ${label}`, onclick: () => cancel(order) }, "Cancel"),
    ],
    making: [
      h("button", { class: "primary", "aria-label": `Complete ${label}`, disabled: taken || order.state === "COMPLETING", onclick: () => act(order, "complete", `Order #${order.orderNumber} is ready.`) }, "Complete"),
      h("button", { class: "secondary", "aria-label": `Unmake ${label}`, disabled: taken || order.state === "COMPLETING", onclick: () => act(order, "unmake") }, "Unmake"),
      h("button", { class: "danger", "aria-label": `Cancel ${label}`, disabled: taken || order.state === "COMPLETING", onclick: () => cancel(order) }, "Cancel"),
    ],
    ready: [],
  }[lane];
  return h(
    "li",
    {},
    h(
      "article",
      { class: `ticket ${lane === "ready" ? "" : ageClass(secondsSince(since))}`, "aria-label": `Order ${order.orderNumber}` },
      h(
        "header",
        {},
        h("h3", {}, `#${order.orderNumber}`),
        h("span", { class: "age", "data-since": since, title: "Waiting for" }, clock(secondsSince(since))),
      ),
      h("p", { class: "drink" }, order.drink),
      order.modifiers && order.modifiers.length ? h("p", { class: "mods" }, order.modifiers.join(", ")) : null,
      order.customerName ? h("p", { class: "customer" }, `for ${order.customerName}`) : null,
      lane === "making" ? h("p", { class: "taken" }, mine ? "You are making this" : "Taken by another barista") : null,
      buttons.length ? h("div", { class: "actions" }, buttons) : null,
    ),
  );
}

function lane(id, title, orders, kind, empty) {
  return h(
    "section",
    { class: `lane lane-${kind}`, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, `${title} `, h("span", { class: "count" }, `(${orders.length})`)),
    orders.length ? h("ol", { class: "tickets" }, orders.map((order) => card(order, kind))) : h("p", { class: "empty" }, empty),
  );
}

// Built once and updated in place, so the button pressed or the field being typed in keeps its focus.
const shopState = h("span", { class: "shop-state" });
const toggleButton = h("button", { onclick: () => toggleShop() });
const capacityInput = h("input", { id: "capacity", name: "capacity", type: "number", min: 1, max: 1000, inputmode: "numeric" });
render(
  controls,
  shopState,
  toggleButton,
  h("form", { class: "capacity-form", onsubmit: setCapacity }, h("label", { for: "capacity" }, "Capacity"), capacityInput, h("button", { type: "submit", class: "secondary" }, "Set")),
);

function showShop() {
  shopState.textContent = `${shop.isOpen ? "Open" : "Closed"} · ${shop.ordersInFlight} of ${shop.maxInFlight} orders in progress`;
  shopState.className = `shop-state ${shop.isOpen ? "open" : "closed"}`;
  toggleButton.textContent = shop.isOpen ? "Close the shop" : "Open the shop";
  toggleButton.className = shop.isOpen ? "secondary" : "primary";
  if (document.activeElement !== capacityInput) capacityInput.value = shop.maxInFlight;
}

function update() {
  if (!shop) return;
  showShop();
  const { waiting, making, ready } = lanesOf();
  const boardKey = JSON.stringify([waiting, making, ready].map((orders) => orders.map((o) => [o.orderId, o.state, o.baristaId])));
  if (boardKey === shownBoard) return;
  shownBoard = boardKey;
  const focused = document.activeElement && document.activeElement.getAttribute("aria-label");
  render(
    lanes,
    lane("waiting", "Waiting", waiting, "waiting", "No orders waiting."),
    lane("making", "Making", making, "making", "Nothing being made."),
    lane("ready", "Ready", ready, "ready", "Nothing ready."),
  );
  if (focused) {
    const again = [...lanes.querySelectorAll("button")].find((button) => button.getAttribute("aria-label") === focused);
    if (again) again.focus();
  }
}

// Ages tick, and ready orders leave the board after a minute, without waiting for a message.
setInterval(() => {
  for (const age of lanes.querySelectorAll(".age")) {
    const seconds = secondsSince(age.dataset.since);
    age.textContent = clock(seconds);
    const ticket = age.closest(".ticket");
    if (!ticket.closest(".lane-ready")) ticket.className = `ticket ${ageClass(seconds)}`;
  }
  update();
}, 1000);

startScreenFeed(config, token, {
  resync,
  onOrder: (order) => {
    book.put(order);
    update();
  },
  onShop: (changes) => {
    shop = { ...shop, ...changes };
    update();
  },
});

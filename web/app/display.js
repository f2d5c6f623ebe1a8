// The display (the coffee bar's big screen, display role, read only): "Preparing" and "Ready" with large
// order numbers, how many orders the shop can still take, the shop closed, and the rotating admission
// QR code that opens the order app with the current code.

import { Api } from "./api.js";
import { signIn, signOut } from "./auth.js";
import { startScreenFeed } from "./live.js";
import { IN_PROGRESS, OrderBook, readBoard } from "./orders.js";
import { clock, enteredAt, h, loadRuntimeConfig, render, secondsSince } from "./ui.js";
import qrcode from "./vendor/qrcode-generator/qrcode.mjs";

const SCREEN = "display";
const MAX_PREPARING = 14;
const READY_SECONDS = 600; // the original display drops a collected order after 10 minutes
const ADMISSION_REFRESH_MS = 10_000; // places left on the code change with every order

const config = await loadRuntimeConfig();
const token = await signIn(config, SCREEN);
const api = new Api(config.apiUrl, token, { onUnauthorized: () => signOut(config, SCREEN) });
const book = new OrderBook();
let shop = null;
let admission = null;
let shownKey = null;
let shownCode = null;

// ------------------------------------------------------------------------------------ data
async function resync() {
  shop = await readBoard(api, book);
  await refreshAdmission();
  update();
}

async function refreshAdmission() {
  try {
    admission = await api.get("/admission");
  } catch {
    admission = null; // not a display or barista account: no QR code, the rest still works
  }
}

// ------------------------------------------------------------------------------------- views
function qrSvg(text) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const count = qr.getModuleCount();
  const margin = 4;
  const size = count + margin * 2;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code: scan it with your phone to order");
  svg.setAttribute("shape-rendering", "crispEdges");
  const background = document.createElementNS(ns, "rect");
  background.setAttribute("width", size);
  background.setAttribute("height", size);
  background.setAttribute("fill", "#fff");
  svg.append(background);
  let path = "";
  for (let row = 0; row < count; row += 1) {
    for (let col = 0; col < count; col += 1) {
      if (qr.isDark(row, col)) path += `M${col + margin} ${row + margin}h1v1h-1z`;
    }
  }
  const modules = document.createElementNS(ns, "path");
  modules.setAttribute("d", path);
  modules.setAttribute("fill", "#000");
  svg.append(modules);
  return svg;
}

function admissionView() {
  if (!shop.isOpen) return [h("p", { class: "closed-note" }, "We are closed."), h("p", {}, "See you next time!")];
  if (!admission) return [h("p", {}, "Open the order app on your phone to order.")];
  const orderUrl = `${location.origin}/?admission=${encodeURIComponent(admission.code)}`;
  const lasts = (Date.parse(admission.expiresAt) - Date.parse(admission.startsAt)) / 1000;
  return [
    h("a", { class: "qr", href: orderUrl, "aria-label": "Order with this code" }, qrSvg(orderUrl)),
    h("label", { for: "code-time", class: "visually-hidden" }, "Time until a new code"),
    h("progress", { id: "code-time", max: lasts, value: Math.max(0, (Date.parse(admission.expiresAt) - Date.now()) / 1000) }),
    h("p", { class: "next-code" }, "New code in ", h("span", { id: "code-left" }, clock((Date.parse(admission.expiresAt) - Date.now()) / 1000))),
    admission.ordersLeft > 0
      ? h("p", { class: "places" }, `${admission.ordersLeft} ${admission.ordersLeft === 1 ? "drink" : "drinks"} left for this code`)
      : h("p", { class: "places" }, "We are making drinks: new orders soon"),
  ];
}

function ticket(order, since) {
  return h(
    "li",
    { class: "ticket" },
    h("span", { class: "number" }, h("span", { class: "visually-hidden" }, "Order "), String(order.orderNumber)),
    h("span", { class: "drink" }, order.drink),
    order.customerName ? h("span", { class: "customer" }, order.customerName) : null,
    since ? h("span", { class: "age", "data-since": since }, clock(secondsSince(since))) : null,
  );
}

function update() {
  if (!shop) return;
  const preparing = book
    .list((o) => IN_PROGRESS.includes(o.state))
    .sort((a, b) => (enteredAt(a, "WAITING_FOR_BARISTA") > enteredAt(b, "WAITING_FOR_BARISTA") ? 1 : -1))
    .slice(0, MAX_PREPARING);
  const ready = book
    .list((o) => o.state === "COMPLETED" && secondsSince(o.updatedAt) < READY_SECONDS)
    .sort((a, b) => (b.updatedAt > a.updatedAt ? 1 : -1));
  const left = Math.max(0, shop.maxInFlight - shop.ordersInFlight);
  document.getElementById("capacity").textContent = !shop.isOpen
    ? "The coffee bar is closed"
    : left === 0
      ? "Full right now: new orders in a minute"
      : `${left} more ${left === 1 ? "order" : "orders"} can be taken`;
  document.body.classList.toggle("closed", !shop.isOpen);
  const key = JSON.stringify([preparing.map((o) => o.orderId), ready.map((o) => o.orderId), shop.isOpen]);
  if (key !== shownKey) {
    shownKey = key;
    render(document.getElementById("preparing"), preparing.map((o) => ticket(o, enteredAt(o, "WAITING_FOR_BARISTA"))));
    render(document.getElementById("ready"), ready.map((o) => ticket(o, null)));
  }
  const codeKey = JSON.stringify([shop.isOpen, admission && admission.code, admission && admission.ordersLeft > 0, admission && admission.ordersLeft]);
  if (codeKey !== shownCode) {
    shownCode = codeKey;
    render(document.getElementById("admission-body"), admissionView());
  }
}

setInterval(() => {
  for (const age of document.querySelectorAll(".age")) age.textContent = clock(secondsSince(age.dataset.since));
  const bar = document.getElementById("code-time");
  if (bar && admission) {
    const left = (Date.parse(admission.expiresAt) - Date.now()) / 1000;
    bar.value = Math.max(0, left);
    document.getElementById("code-left").textContent = clock(left);
  }
  if (admission && Date.parse(admission.expiresAt) <= Date.now()) refreshAdmission().then(update);
  update();
}, 1000);
setInterval(() => refreshAdmission().then(update), ADMISSION_REFRESH_MS);

startScreenFeed(config, token, {
  resync,
  onOrder: (order) => {
    const placed = !book.orders.has(order.orderId);
    book.put(order);
    update();
    // A new order may have used a place on the current code: show what is left at once, not at the
    // next poll (which stays, for codes used by orders this display never hears of).
    if (placed) refreshAdmission().then(update);
  },
  onShop: (changes) => {
    shop = { ...shop, ...changes };
    update();
  },
});

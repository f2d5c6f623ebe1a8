// The order app (a customer's phone): start an order, choose from the menu before the customer wait
// runs out, then follow the order live until it is ready, cancelled or timed out. The order in progress
// survives a reload (its id is kept per user, and the customer's own open orders are read back).

import { Api, ApiError } from "./api.js";
import { claimsOf, signIn, signOut } from "./auth.js";
import { startScreenFeed } from "./live.js";
import { TERMINAL, customerWords } from "./orders.js";
import { clock, confirmAction, drinkText, enteredAt, h, loadRuntimeConfig, render, secondsSince } from "./ui.js";

const SCREEN = "order";
const CHOOSING = new Set(["PLACED", "WAITING_FOR_CUSTOMER"]);
const CANCELLABLE = new Set(["PLACED", "WAITING_FOR_CUSTOMER", "SUBMITTED", "WAITING_FOR_BARISTA"]);
const ADMISSION_KEY = "sp.admission";

const config = await loadRuntimeConfig();
const token = await signIn(config, SCREEN);
const me = claimsOf(token);
const orderKey = `sp.order.${me.sub}`;
const api = new Api(config.apiUrl, token, { onUnauthorized: () => signOut(config, SCREEN) });
const main = document.getElementById("main");
document.getElementById("who").textContent = me["cognito:username"] || me.name || "";

// A scanned QR code opens this page with ?admission=<code>: keep it for this visit's orders.
const here = new URL(location.href);
if (here.searchParams.has("admission")) {
  sessionStorage.setItem(ADMISSION_KEY, here.searchParams.get("admission"));
  here.searchParams.delete("admission");
  history.replaceState(null, "", here);
}

const state = { shop: null, order: null, problem: null, busy: false, choice: { drink: null, modifiers: new Set() } };
let shownKey = null;
let restoreChecked = false;

// ------------------------------------------------------------------------------------ data
async function resync() {
  const shop = await api.get("/config");
  state.shop = shop;
  const orderId = state.order ? state.order.orderId : localStorage.getItem(orderKey);
  if (orderId) {
    try {
      setOrder(await api.get(`/orders/${encodeURIComponent(orderId)}`));
    } catch (error) {
      if (!(error instanceof ApiError) || ![403, 404].includes(error.status)) throw error;
      forgetOrder();
    }
  } else if (!restoreChecked) {
    // First read after loading with nothing stored (storage cleared, another browser): the newest
    // open order of mine, if any. Only then: an order placed elsewhere later is not pulled in.
    restoreChecked = true;
    const mine = await api.get("/orders?limit=5");
    const open = mine.orders.find((order) => !TERMINAL.has(order.state));
    if (open) setOrder(open);
  }
  update();
}

function setOrder(order) {
  if (state.order && state.order.orderId === order.orderId && (state.order.updatedAt || "") > (order.updatedAt || "")) return;
  state.order = order;
  localStorage.setItem(orderKey, order.orderId);
}

function forgetOrder() {
  state.order = null;
  state.choice = { drink: null, modifiers: new Set() };
  localStorage.removeItem(orderKey);
}

// ----------------------------------------------------------------------------------- actions
async function startOrder() {
  state.busy = true;
  state.problem = null;
  update();
  try {
    const code = sessionStorage.getItem(ADMISSION_KEY);
    const order = await api.post("/orders", code ? { admissionCode: code } : {});
    forgetOrder();
    setOrder(order);
  } catch (error) {
    state.problem = problemFor(error);
  } finally {
    state.busy = false;
    update();
  }
}

async function submitDrink(event) {
  event.preventDefault();
  const error = document.getElementById("menu-error");
  if (!state.choice.drink) {
    error.textContent = "Choose a drink first.";
    return;
  }
  const button = event.submitter || event.target.querySelector("button[type=submit]");
  button.disabled = true;
  button.textContent = "Sending…";
  try {
    const body = { drink: state.choice.drink, modifiers: [...state.choice.modifiers] };
    setOrder(await api.put(`/orders/${encodeURIComponent(state.order.orderId)}`, body));
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 410) {
      state.problem = { title: "Too late to order this one", detail: "The time to choose ran out before your order arrived. Please start a new one." };
      forgetOrder();
    } else {
      error.textContent = failure.message;
      button.disabled = false;
      button.textContent = "Place order";
    }
  }
  update();
}

async function cancelOrder() {
  const sure = await confirmAction({
    title: "Cancel your order?",
    text: "You will need to start again to get a drink.",
    confirmLabel: "Cancel my order",
    keepLabel: "Keep my order",
  });
  if (!sure) return;
  try {
    setOrder(await api.delete(`/orders/${encodeURIComponent(state.order.orderId)}`));
  } catch (error) {
    state.notice = error instanceof ApiError && error.status === 409
      ? "A barista has already started making it: it can no longer be cancelled."
      : error.message;
  }
  update();
}

function problemFor(error) {
  if (!(error instanceof ApiError)) return { title: "Something went wrong", detail: error.message };
  const body = error.body;
  if (error.status === 403 && body.reason) {
    const titles = {
      missing: "Scan the QR code to order",
      forged: "This QR code is not valid",
      expired: "This QR code has expired",
      used_up: "This QR code has been used up",
    };
    return { title: titles[body.reason] || "You cannot order yet", detail: body.message };
  }
  if (error.status === 409 && body.maxOpenOrdersPerCustomer) {
    return {
      title: "Too many open orders",
      detail: `You already have ${plural(body.maxOpenOrdersPerCustomer, "open order")}. Wait for one to finish, then order again.`,
    };
  }
  if (error.status === 410) return { title: "This order has ended", detail: body.message };
  return { title: "Your order could not be started", detail: body.message || "Please try again." };
}

// ------------------------------------------------------------------------------------- views
function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function capacityLeft(shop) {
  return Math.max(0, shop.maxInFlight - shop.ordersInFlight);
}

function startView() {
  const shop = state.shop;
  if (!shop.isOpen) {
    return h("section", { class: "card center" }, h("h2", {}, "The coffee bar is closed"), h("p", {}, "Come back when it opens: this page updates by itself."));
  }
  if (capacityLeft(shop) === 0) {
    return h(
      "section",
      { class: "card center" },
      h("h2", {}, "The coffee bar is full"),
      h("p", {}, "Try again in a minute: the baristas are busy."),
      h("button", { class: "secondary", onclick: resyncQuietly }, "Try again"),
    );
  }
  return h(
    "section",
    { class: "card center" },
    h("h2", {}, "Order a coffee"),
    h("p", {}, `Once you start, you have ${clock(config.waits.customerSeconds)} to choose your drink.`),
    h("button", { class: "primary", onclick: startOrder, disabled: state.busy }, state.busy ? "Starting…" : "Start my order"),
  );
}

function menuView() {
  const modifiers = h("div", { id: "modifiers" });
  const drinks = state.shop.menu.map((drink) =>
    h(
      "label",
      { class: "choice" },
      h("input", {
        type: "radio",
        name: "drink",
        value: drink.name,
        checked: state.choice.drink === drink.name,
        onchange: () => {
          state.choice = { drink: drink.name, modifiers: new Set() };
          render(modifiers, modifierFieldset());
          document.getElementById("menu-error").textContent = "";
        },
      }),
      h("span", {}, drink.name),
    ),
  );
  render(modifiers, modifierFieldset());
  return h(
    "section",
    { class: "card", "aria-labelledby": "menu-title" },
    h("h2", { id: "menu-title" }, "Choose your drink"),
    h(
      "div",
      { class: "countdown" },
      h("label", { for: "time-left" }, "Time left to order"),
      h("progress", { id: "time-left", max: config.waits.customerSeconds, value: config.waits.customerSeconds }),
      h("span", { id: "time-left-text", class: "clock" }, "Starting…"), // the ticker below sets the time
    ),
    h(
      "form",
      { id: "menu-form", onsubmit: submitDrink },
      h("fieldset", { class: "drinks" }, h("legend", {}, "Drink"), drinks),
      modifiers,
      h("p", { id: "menu-error", role: "alert", class: "error" }),
      h("button", { type: "submit", class: "primary" }, "Place order"),
    ),
    h("button", { class: "link", onclick: cancelOrder }, "Cancel order"),
  );
}

function modifierFieldset() {
  const drink = state.shop.menu.find((item) => item.name === state.choice.drink);
  if (!drink || !drink.modifiers.length) return null;
  return h(
    "fieldset",
    { class: "modifiers" },
    h("legend", {}, `Extras for your ${drink.name}`),
    drink.modifiers.map((modifier) =>
      h(
        "label",
        { class: "choice" },
        h("input", {
          type: "checkbox",
          name: "modifier",
          value: modifier,
          checked: state.choice.modifiers.has(modifier),
          onchange: (event) => (event.target.checked ? state.choice.modifiers.add(modifier) : state.choice.modifiers.delete(modifier)),
        }),
        h("span", {}, modifier),
      ),
    ),
  );
}

function statusView() {
  const order = state.order;
  const words = customerWords(order);
  const ended = TERMINAL.has(order.state);
  return h(
    "section",
    { class: `card center status state-${order.state.toLowerCase()}`, "aria-labelledby": "status-title" },
    order.orderNumber ? h("p", { class: "big-number" }, h("span", { class: "visually-hidden" }, "Order number "), `#${order.orderNumber}`) : null,
    h("h2", { id: "status-title" }, words.title),
    words.detail ? h("p", {}, words.detail) : null,
    order.drink ? h("p", { class: "drink" }, drinkText(order)) : null,
    state.notice ? h("p", { role: "alert", class: "error" }, state.notice) : null,
    !ended && CANCELLABLE.has(order.state) && !order.baristaId
      ? h("button", { class: "secondary", onclick: cancelOrder }, "Cancel order")
      : null,
    ended ? h("button", { class: "primary", onclick: orderAnother }, "Order another coffee") : null,
  );
}

function problemView() {
  return h(
    "section",
    { class: "card center problem", "aria-labelledby": "problem-title" },
    h("h2", { id: "problem-title" }, state.problem.title),
    state.problem.detail ? h("p", {}, state.problem.detail) : null,
    h("button", { class: "secondary", onclick: () => { state.problem = null; update(); } }, "Back"),
  );
}

function closedWhileChoosingView() {
  return h(
    "section",
    { class: "card center" },
    h("h2", {}, "The coffee bar has just closed"),
    h("p", {}, "Your order was cancelled before it was made. Sorry!"),
    h("button", { class: "primary", onclick: orderAnother }, "Back"),
  );
}

function orderAnother() {
  forgetOrder();
  state.notice = null;
  state.closedWhileChoosing = false;
  update();
}

async function resyncQuietly() {
  try {
    await resync();
  } catch {
    // the feed shows the connection state
  }
}

// ------------------------------------------------------------------------------------ render
function currentView() {
  const { shop, order } = state;
  if (!shop) return ["loading", () => h("p", {}, "Loading…")];
  if (state.problem) return [`problem:${state.problem.title}`, problemView];
  if (state.closedWhileChoosing) return ["closed-while-choosing", closedWhileChoosingView];
  if (order && CHOOSING.has(order.state)) {
    if (!shop.isOpen) {
      closeWhileChoosing(order);
      return ["closed-while-choosing", closedWhileChoosingView];
    }
    return [`menu:${order.orderId}`, menuView];
  }
  if (order) {
    return [`status:${order.orderId}:${order.state}:${order.baristaId || ""}:${order.orderNumber || ""}:${state.notice || ""}`, statusView];
  }
  const left = capacityLeft(shop);
  return [`start:${shop.isOpen}:${left === 0}:${state.busy}`, startView];
}

function closeWhileChoosing(order) {
  state.closedWhileChoosing = true;
  forgetOrder();
  // Release the order (and its capacity slot) now rather than when the customer wait runs out.
  api.delete(`/orders/${encodeURIComponent(order.orderId)}`).catch(() => {});
}

function update() {
  const [key, view] = currentView();
  if (key !== shownKey) {
    shownKey = key;
    render(main, view());
    const heading = main.querySelector("h2");
    if (heading) heading.setAttribute("tabindex", "-1");
  }
}

// The countdown ticks without re-rendering the menu (so a choice or focus is never lost).
setInterval(() => {
  const order = state.order;
  const bar = document.getElementById("time-left");
  if (!order || !bar || !CHOOSING.has(order.state)) return;
  if (order.state === "PLACED") {
    document.getElementById("time-left-text").textContent = "Starting…"; // the wait has not begun yet
    return;
  }
  const left = config.waits.customerSeconds - secondsSince(enteredAt(order, "WAITING_FOR_CUSTOMER"));
  bar.value = Math.max(0, left);
  document.getElementById("time-left-text").textContent = left > 0 ? clock(left) : "Time's up";
}, 250);

startScreenFeed(config, token, {
  resync,
  onOrder: (order) => {
    if (state.order && order.orderId === state.order.orderId) {
      setOrder(order);
      update();
    }
  },
  onShop: (shop) => {
    state.shop = { ...state.shop, ...shop };
    update();
  },
});

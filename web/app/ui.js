// Small DOM helpers shared by the three screens: elements built with text (never HTML from data), a
// confirmation dialog, the connection badge, times.

/** An element: h("button", { class: "primary", onclick }, "Make"). Children are nodes or text. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replace the children of `target` with `children`. */
export function render(target, ...children) {
  target.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}

/**
 * Ask before doing something that cannot be undone. Resolves true when `confirmLabel` was chosen.
 * A native <dialog>: focus moves into it, Escape closes it (as "no").
 */
export function confirmAction({ title, text, confirmLabel, keepLabel }) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      text ? h("p", {}, text) : null,
      h(
        "form",
        { method: "dialog", class: "actions" },
        h("button", { value: "keep", class: "secondary", autofocus: true }, keepLabel),
        h("button", { value: "confirm", class: "danger" }, confirmLabel),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Keep the connection badge (an element with role=status) in plain words. */
export function showConnection(badge, status) {
  const words = { live: "Live", connecting: "Connecting…", offline: "Reconnecting…" };
  badge.textContent = words[status] || status;
  badge.dataset.status = status;
}

/** "m:ss" for a number of seconds (never negative). */
export function clock(seconds) {
  const whole = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

/** Seconds since an ISO timestamp. */
export function secondsSince(iso) {
  return (Date.now() - Date.parse(iso)) / 1000;
}

/** When the order entered `state` (its timeline), else when it was created. */
export function enteredAt(order, state) {
  const entry = (order.timeline || []).find((item) => item.state === state);
  return (entry && entry.at) || order.createdAt;
}

/** Load the runtime configuration served beside the pages (made from the running stack). */
export async function loadRuntimeConfig() {
  const response = await fetch("/runtime-config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`runtime configuration missing (${response.status})`);
  return response.json();
}

/** "Latte, Oat milk, Extra shot". */
export function drinkText(order) {
  return [order.drink, ...(order.modifiers || [])].filter(Boolean).join(", ");
}

// The review screen from the keyboard. Everything here is an accelerator: the
// forms post and redirect without it. Keys act on whatever #review-screen holds
// now, so they keep working after HTMX swaps in the next item.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  if (window.htmx) {
    // A refused submit (409 lease lost, 422 incomplete form) re-renders the
    // screen with its message: swap it in like a success instead of dropping it.
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "409", swap: true },
      { code: "422", swap: true },
      { code: "[45]..", swap: false, error: true },
    ];
  }

  function screen() {
    return document.getElementById("review-screen");
  }

  function isTyping(el) {
    if (!el) return false;
    const tag = el.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable ||
      (tag === "INPUT" && !["radio", "checkbox", "button", "submit"].includes(el.type));
  }

  function fields(root) {
    return Array.from(root.querySelectorAll("fieldset.rubric"));
  }

  function focusField(root, index) {
    const all = fields(root);
    if (!all.length) return;
    const i = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((f, k) => f.classList.toggle("focused", k === i));
    root.dataset.field = String(i);
    const checked = all[i].querySelector("input:checked") || all[i].querySelector("input");
    if (checked) checked.focus({ preventScroll: false });
  }

  function currentField(root) {
    const i = parseInt(root.dataset.field || "0", 10);
    return Number.isNaN(i) ? 0 : i;
  }

  function openPanel(root, id, focusSelector) {
    const panel = root.querySelector("#" + id);
    if (!panel) return null;
    panel.classList.add("open");
    const target = panel.querySelector(focusSelector);
    if (target) {
      target.focus();
      if (target.tagName === "TEXTAREA") {
        target.setSelectionRange(target.value.length, target.value.length);
      }
    }
    return panel;
  }

  function press(root, selector) {
    const button = root.querySelector(selector);
    // click(), not requestSubmit(): htmx reads the decision from the button
    // that was clicked.
    if (button) button.click();
    return Boolean(button);
  }

  function toggleHelp(root) {
    const help = root.querySelector("#keys-help");
    if (help) help.hidden = !help.hidden;
  }

  document.addEventListener("keydown", function (ev) {
    const root = screen();
    if (!root || ev.defaultPrevented) return;
    if (root.querySelector("form.htmx-request")) {
      // A decision is on its way: keys belong to the next item, not this one
      // (a double "a" must not submit twice).
      ev.preventDefault();
      return;
    }
    const active = document.activeElement;

    if (isTyping(active)) {
      if (ev.key === "Escape") {
        active.blur();
        ev.preventDefault();
      } else if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && active.name === "final_text") {
        ev.preventDefault();
        press(root, 'button[data-submit="approve_edit"]');
      } else if (ev.key === "Enter" && active.closest("#reject-panel")) {
        ev.preventDefault();
        press(root, 'button[data-submit="reject"]');
      }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;

    let handled = true;
    switch (ev.key) {
      case "a":
        handled = press(root, 'button[data-key="a"]');
        break;
      case "r":
        handled = Boolean(openPanel(root, "reject-panel", "select"));
        break;
      case "e":
        handled = Boolean(openPanel(root, "edit-panel", "textarea"));
        break;
      case "s":
        handled = press(root, 'button[data-key="s"]');
        break;
      case "n": {
        const note = root.querySelector('textarea[name="note"]');
        if (note) note.focus();
        handled = Boolean(note);
        break;
      }
      case "j":
        focusField(root, currentField(root) + 1);
        break;
      case "k":
        focusField(root, currentField(root) - 1);
        break;
      case "?":
        toggleHelp(root);
        break;
      case "1": case "2": case "3": case "4": case "5": {
        const all = fields(root);
        if (!all.length) { handled = false; break; }
        const i = currentField(root);
        const input = all[i].querySelector('input[value="' + ev.key + '"]');
        if (input) input.checked = true;
        focusField(root, i + 1 < all.length ? i + 1 : i);
        break;
      }
      default:
        handled = false;
    }
    if (handled) ev.preventDefault();
  });

  // Use a reviewer's text as the starting point of the adjudicated answer.
  document.addEventListener("click", function (ev) {
    const button = ev.target.closest("[data-use-text]");
    const root = screen();
    if (!button || !root) return;
    const panel = openPanel(root, "edit-panel", "textarea");
    const area = panel && panel.querySelector("textarea");
    if (area) {
      area.value = button.dataset.useText;
      area.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });

  // Clicking a mouse-only opener ("Reject…", "Edit…") opens its panel.
  document.addEventListener("click", function (ev) {
    const opener = ev.target.closest("[data-open]");
    const root = screen();
    if (!opener || !root) return;
    openPanel(root, opener.dataset.open, opener.dataset.open === "edit-panel" ? "textarea" : "select");
  });

  // Mark the first rubric field as focused when a screen appears, unless keys
  // pressed since the swap already moved on.
  function init() {
    const root = screen();
    if (root && fields(root).length && root.dataset.field === undefined) {
      fields(root)[0].classList.add("focused");
      root.dataset.field = "0";
    }
  }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);
})();

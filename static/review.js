// The review screen from the keyboard. Everything here is an accelerator: the
// forms post and redirect without it. Keys act on whatever #review-screen holds
// now, so they keep working after HTMX swaps in the next item.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // A refused submit (409 lease lost, 422 incomplete form) re-renders the screen
  // with its message: base.html's htmx-config swaps it in like a success.

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
    if (!button) return false;
    // Hold keys from now on, even before htmx has started the request.
    if (button.type === "submit") startBusy();
    // click(), not requestSubmit(): htmx reads the decision from the button
    // that was clicked.
    button.click();
    return true;
  }

  function toggleHelp(root) {
    const help = root.querySelector("#keys-help");
    if (help) help.hidden = !help.hidden;
  }

  // A key that has nothing to act on here says so beside the buttons, instead of
  // being swallowed.
  const NOT_HERE = {
    a: "a (approve) does not apply: this item has no answer to approve yet. Press e to write one, or r to reject.",
    s: "s (skip) does not apply here.",
    r: "r (reject) does not apply here.",
    e: "e (edit) does not apply here.",
    n: "n (note) does not apply here.",
    rubric: "There is no rubric to score here.",
  };

  let hintTimer = null;
  function hint(root, key) {
    const box = root.querySelector("#key-hint");
    if (!box) return false;
    box.textContent = NOT_HERE[key] || "";
    clearTimeout(hintTimer);
    hintTimer = setTimeout(function () { box.textContent = ""; }, 6000);
    return true;
  }

  // A refused decision comes back as the same item with its message beside the
  // control to fix: put the focus there, so Enter acts on what the message names.
  function focusRefusal(root) {
    const error = root.querySelector(".field-error");
    if (!error) return;
    const group = error.closest("section, .panel") || root;
    let target = null;
    if (group.querySelector("fieldset.rubric")) {
      const open = fields(group).find((f) => !f.querySelector("input:checked"));
      const field = open || fields(group)[0];
      focusField(root, fields(root).indexOf(field));
      target = field.querySelector("input");
    } else {
      target = group.querySelector("select, textarea, button");
      if (target) target.focus();
    }
    if (target) {
      error.id = error.id || "screen-error";
      target.setAttribute("aria-describedby", error.id);
    }
    error.scrollIntoView({ block: "center" });
  }

  // --- keys pressed while the next item loads ---------------------------------
  // From the moment a decision (or skip) leaves until the next screen is in
  // place and htmx has wired it up (afterSettle), keys are held here, then
  // replayed on the new screen in order: never dropped, never applied to the
  // item that is going away, and never seen by the old screen's renew trigger.
  // A key that sends the next decision stops the replay; the rest wait again.
  const HELD_LIMIT = 200;
  const NOT_HELD = ["Shift", "Control", "Alt", "Meta", "Tab", "CapsLock"];
  let busy = null; // {screen, item} of the screen being replaced, or null
  let held = [];
  let busyTimer = null;

  function itemOf(root) {
    return root ? root.dataset.item || "" : "";
  }

  function startBusy() {
    if (busy) return;
    const root = screen();
    busy = { screen: root, item: itemOf(root) };
    clearTimeout(busyTimer);
    // A click that sent nothing (no request ever started) must not hold keys forever.
    busyTimer = setTimeout(function () {
      if (busy && busy.screen === screen() && !document.querySelector(".htmx-request")) {
        endBusy("No answer came for the last key; the keys typed since were not applied.");
      }
    }, 4000);
  }

  function endBusy(dropMessage) {
    clearTimeout(busyTimer);
    busy = null;
    if (held.length && dropMessage) {
      announce(held.length + " key" + (held.length === 1 ? "" : "s") + " not applied. " + dropMessage);
    }
    if (dropMessage) held = [];
  }

  function announce(text) {
    const root = screen();
    if (!root) return;
    let box = root.querySelector("#held-keys");
    if (!box) {
      box = document.createElement("p");
      box.id = "held-keys";
      box.className = "banner bad";
      box.setAttribute("role", "alert");
      root.prepend(box);
    }
    box.textContent = text;
  }

  window.addEventListener("keydown", function (ev) {
    if (!busy || NOT_HELD.includes(ev.key)) return;
    ev.preventDefault();
    ev.stopImmediatePropagation();
    if (held.length < HELD_LIMIT) {
      held.push({ key: ev.key, ctrlKey: ev.ctrlKey, metaKey: ev.metaKey, altKey: ev.altKey });
    }
  }, true);

  function replay() {
    const root = screen();
    clearTimeout(busyTimer);
    const from = busy;
    busy = null;
    if (!held.length) return;
    if (!root || !root.querySelector("#review-form")) {
      endBusy("There is no item to apply them to.");
      return;
    }
    if (from && itemOf(root) === from.item) {
      // The decision was refused and the same item is shown again with its
      // message: the keys were meant for the next item, not for this one.
      endBusy("They were typed for the next item, but this one was not saved: see the message.");
      return;
    }
    while (held.length && !busy) {
      handle(held.shift(), null);
    }
  }

  document.addEventListener("htmx:beforeRequest", function (ev) {
    const target = ev.detail.target;
    if (target && target.id === "review-screen") startBusy();
  });

  document.addEventListener("htmx:afterRequest", function (ev) {
    const target = ev.detail.target;
    if (busy && target && target.id === "review-screen" && screen() === busy.screen) {
      // Nothing was swapped in (a server error or no connection): the item
      // shown is still the one the keys were not meant for.
      endBusy("The server did not answer; nothing was saved for them.");
      announce("The last action did not reach the server. Try again.");
    }
  });

  document.addEventListener("htmx:afterSettle", function (ev) {
    if (ev.target && ev.target.id === "review-screen") {
      const before = shownItem;
      init();
      if (itemOf(screen()) !== before) {
        // A new item opens at its top, with its prompt and the "saved" notice in view.
        window.scrollTo(0, 0);
      } else {
        focusRefusal(screen());
      }
      replay();
    }
  });

  // --- the lease renewal ------------------------------------------------------
  // A renewal sent by a screen that has since been replaced must not write
  // into the new one; a renewal that fails for the screen shown says so.
  document.addEventListener("htmx:beforeSwap", function (ev) {
    const elt = ev.detail.elt;
    if (elt && elt.hasAttribute("data-renew") && !document.body.contains(elt)) {
      ev.detail.shouldSwap = false;
    }
  });

  document.addEventListener("htmx:afterRequest", function (ev) {
    const elt = ev.detail.elt;
    if (!elt || !elt.hasAttribute("data-renew") || !document.body.contains(elt)) return;
    if (ev.detail.successful) return;
    const xhr = ev.detail.xhr;
    if (xhr && xhr.status === 409) return; // the lease-lost message was swapped in
    const status = document.getElementById("lease-status");
    if (!status) return;
    status.className = "error";
    status.setAttribute("role", "alert");
    status.textContent = "Could not renew your hold on this item (" +
      (xhr && xhr.status ? "the server answered " + xhr.status : "no connection") +
      "). Save your decision soon; if it is refused, take the next item.";
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.defaultPrevented) return;
    if (handle(ev, document.activeElement)) ev.preventDefault();
  });

  // One key on the current screen: from the keyboard (``active`` is the
  // focused element) or replayed (null: the new screen's focus is used).
  // Returns whether the key was used.
  function handle(ev, active) {
    const root = screen();
    if (!root) return false;
    if (root.querySelector("form.htmx-request")) {
      // A decision is on its way: keys belong to the next item (the capture
      // listener above holds them; this is the fallback).
      return true;
    }
    active = active || document.activeElement;
    const replayed = !(ev instanceof Event);

    if (isTyping(active)) {
      if (ev.key === "Escape") {
        active.blur();
        return true;
      } else if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && active.name === "final_text") {
        press(root, 'button[data-submit="approve_edit"]');
        return true;
      } else if (ev.key === "Enter" && active.closest("#reject-panel")) {
        press(root, 'button[data-submit="reject"]');
        return true;
      } else if (replayed) {
        typeInto(active, ev);
        return true;
      }
      return false;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return false;

    let handled = true;
    switch (ev.key) {
      case "a":
        handled = press(root, 'button[data-key="a"]') || hint(root, "a");
        break;
      case "r":
        handled = Boolean(openPanel(root, "reject-panel", "select")) || hint(root, "r");
        break;
      case "e":
        handled = Boolean(openPanel(root, "edit-panel", "textarea")) || hint(root, "e");
        break;
      case "s":
        handled = press(root, 'button[data-key="s"]') || hint(root, "s");
        break;
      case "n": {
        const note = root.querySelector('textarea[name="note"]');
        if (note) note.focus();
        handled = Boolean(note) || hint(root, "n");
        break;
      }
      case "j":
        if (!fields(root).length) { handled = hint(root, "rubric"); break; }
        focusField(root, currentField(root) + 1);
        break;
      case "k":
        if (!fields(root).length) { handled = hint(root, "rubric"); break; }
        focusField(root, currentField(root) - 1);
        break;
      case "?":
        toggleHelp(root);
        break;
      case "Escape": {
        const help = root.querySelector("#keys-help");
        handled = Boolean(help && !help.hidden);
        if (handled) help.hidden = true;
        break;
      }
      case "1": case "2": case "3": case "4": case "5": {
        const all = fields(root);
        if (!all.length) { handled = hint(root, "rubric"); break; }
        const i = currentField(root);
        const input = all[i].querySelector('input[value="' + ev.key + '"]');
        if (input) input.checked = true;
        focusField(root, i + 1 < all.length ? i + 1 : i);
        break;
      }
      default:
        handled = false;
    }
    return handled;
  }

  // A held key replayed into the field it now lands in, as typing would.
  function typeInto(field, ev) {
    if (field.tagName === "SELECT") {
      const step = ev.key === "ArrowDown" ? 1 : ev.key === "ArrowUp" ? -1 : 0;
      const i = field.selectedIndex + step;
      if (step && i >= 0 && i < field.options.length) field.selectedIndex = i;
      return;
    }
    if (ev.key.length !== 1 || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (typeof field.setRangeText === "function") {
      field.setRangeText(ev.key, field.selectionStart, field.selectionEnd, "end");
      field.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }

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
  let shownItem = "";
  function init() {
    const root = screen();
    shownItem = itemOf(root);
    if (root && fields(root).length && root.dataset.field === undefined) {
      fields(root)[0].classList.add("focused");
      root.dataset.field = "0";
    }
  }
  document.addEventListener("DOMContentLoaded", init);
})();

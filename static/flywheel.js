// Site-wide behaviour, loaded by base.html (the CSP allows no inline script).
// After htmx swaps in new content, keyboard and screen-reader users land on it: focus
// moves to the first element marked data-swap-focus inside what was swapped in.
document.addEventListener("htmx:afterSettle", (event) => {
  const root = event.detail.elt;
  if (!(root instanceof Element)) return;
  const target = root.matches("[data-swap-focus]") ? root : root.querySelector("[data-swap-focus]");
  if (!target || target.contains(document.activeElement)) return;
  if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  target.focus({ preventScroll: true });
});

/**
 * Small DOM helpers shared by the sidebars and dialogs.
 */

/** A new `tag` element with an optional class name and text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** Add `key` to `set` when it is missing, remove it when it is there. */
export function toggleKey(set: Set<string>, key: string): void {
  if (set.has(key)) {
    set.delete(key);
  } else {
    set.add(key);
  }
}

/**
 * Make `head` a keyboard-reachable disclosure button: click, Enter or Space run `toggle`.
 */
export function disclosure(
  head: HTMLElement,
  expanded: boolean,
  toggle: () => void
): void {
  head.tabIndex = 0;
  head.setAttribute('role', 'button');
  head.setAttribute('aria-expanded', String(expanded));
  head.addEventListener('click', toggle);
  head.addEventListener('keydown', event => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      toggle();
    }
  });
}

/** A search field that calls `onInput` on every change. */
export function searchField(
  className: string,
  placeholder: string,
  label: string,
  onInput: () => void
): HTMLInputElement {
  const input = el('input', `jp-mod-styled ${className}`);
  input.type = 'search';
  input.placeholder = placeholder;
  input.setAttribute('aria-label', label);
  input.addEventListener('input', onInput);
  return input;
}

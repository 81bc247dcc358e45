// Tiny DOM builders. Every page is built from these, and text always goes in as text nodes, never
// as HTML, so names and values coming from the API cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** h('button', { class: 'primary', onclick }, 'Save') */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  build(el, {}, children);
  return el;
}

/** 1234.5 → "1,234.5"; null → "—". */
export function formatNumber(v, maxDecimals = 2) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return Number(v).toLocaleString('en-US', { maximumFractionDigits: maxDecimals });
}

/** An error a person can act on: the AWS error type in bold, then the server's message verbatim. */
export function errorBox(err, ...actions) {
  const type = err?.type ?? err?.name ?? 'Error';
  return h('div', { class: 'error', role: 'alert' }, h('strong', { class: 'error-type' }, type), ' ', h('span', { class: 'error-message' }, err?.message ?? String(err)), actions.length ? h('div', { class: 'actions' }, actions) : null);
}

/** A modal yes/no question; resolves true only when the person confirms. */
export function confirmDialog({ title, message, confirmLabel = 'Delete', danger = true }) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm' });
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    dialog.addEventListener('cancel', () => close(false));
    replace(
      dialog,
      h('h2', {}, title),
      h('p', {}, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'button', class: danger ? 'danger' : 'primary', onclick: () => close(true) }, confirmLabel)),
    );
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A tiny DOM builder: the demo is plain TypeScript, no framework. Text is always set as text, never as HTML. */

export type Child = Node | string | number | null | undefined | false | Child[];
type Handler = (event: Event) => void;
export type Props = Record<string, string | number | boolean | Handler | null | undefined>;

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) for (const c of child) append(parent, c);
  else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

function applyProps(el: Element, props: Props | null | undefined): void {
  if (!props) return;
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' && 'value' in el) (el as HTMLInputElement).value = String(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

/** `h('button', {class: 'primary', onclick}, 'Send')` */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  applyProps(el, props);
  append(el, children);
  return el;
}

/** Replaces the children of `el`. */
export function mount(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/**
 * Redraws `container` (whose contents `redraw` replaces) and gives focus back to the element with
 * the same `data-focus` key, caret included, or to the one keyed `focus` when given: a view drawn
 * anew on every change stays usable from the keyboard.
 */
export function redrawKeepingFocus(container: HTMLElement, redraw: () => void, focus?: string): void {
  const active = document.activeElement;
  const had = active instanceof HTMLElement && container.contains(active) ? active : null;
  const caret: [number, number] | null = had instanceof HTMLTextAreaElement ? [had.selectionStart, had.selectionEnd] : null;
  redraw();
  const key = focus ?? had?.dataset.focus;
  const el = key === undefined ? null : container.querySelector<HTMLElement>(`[data-focus="${CSS.escape(key)}"]`);
  if (!el) return;
  el.focus({ preventScroll: true }); // the caller keeps the reader's place
  if (el instanceof HTMLTextAreaElement) {
    const [start, end] = focus === undefined && caret ? caret : [el.value.length, el.value.length];
    el.setSelectionRange(start, end);
  }
}

// Icons: 24x24 stroke paths, drawn for this demo.
const ICONS: Record<string, string[]> = {
  lock: ['M6 11h12v9H6z', 'M8.5 11V8a3.5 3.5 0 0 1 7 0v3'],
  unlock: ['M6 11h12v9H6z', 'M8.5 11V8a3.5 3.5 0 0 1 6.8-1.2'],
  alert: ['M12 4 2.8 20h18.4z', 'M12 10v4.5', 'M12 17.2v.3'],
  shield: ['M12 3 5 6v5c0 4.5 3 8.2 7 10 4-1.8 7-5.5 7-10V6z', 'm9 12 2.2 2.2L15.5 10'],
  history: ['M3.5 12a8.5 8.5 0 1 0 2.5-6', 'M3 4v4h4', 'M12 8v4.5l3 2'],
  plus: ['M12 5v14', 'M5 12h14'],
  userPlus: ['M15 20v-1.5a4 4 0 0 0-4-4H7a4 4 0 0 0-4 4V20', 'M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z', 'M19 8v6', 'M16 11h6'],
  eye: ['M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12z', 'M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6z'],
  devices: ['M3 5h13v9H3z', 'M7 18h5', 'M17 9h4v11h-4z'],
  logout: ['M9 20H5V4h4', 'M16 16l4-4-4-4', 'M20 12H9'],
  send: ['M4 12 20 4l-5 16-3.5-6.5z', 'M11.5 13.5 20 4'],
  x: ['M6 6l12 12', 'M18 6 6 18'],
  back: ['M15 5l-7 7 7 7'],
  info: ['M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z', 'M12 11v5.5', 'M12 7.5v.3'],
  check: ['M5 12.5l4.5 4.5L19 7.5'],
  key: ['M8 15a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M11.5 11H21', 'M18 11v3', 'M15 11v2'],
  chat: ['M4 5h16v11H9l-5 4z'],
  headset: ['M4 14v-2a8 8 0 0 1 16 0v2', 'M4 14h3v5H4z', 'M17 14h3v5h-3z', 'M20 19c0 1.5-2 2.5-5 2.5'],
  wifiOff: ['M2 2l20 20', 'M8.5 16.5a5 5 0 0 1 7 0', 'M5 12.9a10 10 0 0 1 5.2-2.7', 'M16.7 10.7A10 10 0 0 1 19 12.9', 'M12 20h.01'],
  refresh: ['M20 12a8 8 0 1 1-2.3-5.7', 'M20 4v5h-5'],
  smile: ['M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z', 'M8.5 14.5a4.5 4.5 0 0 0 7 0', 'M9 9.5v.5', 'M15 9.5v.5'],
  pencil: ['M4 20h4L19 9l-4-4L4 16z', 'M13.5 6.5l4 4'],
  paperclip: ['M20 11.5 12.2 19.3a5 5 0 0 1-7.1-7.1l8.1-8.1a3.3 3.3 0 0 1 4.7 4.7l-8.1 8.1a1.7 1.7 0 0 1-2.4-2.4l7.4-7.4'],
  file: ['M6 3h8l4 4v14H6z', 'M14 3v4h4'],
  image: ['M4 5h16v14H4z', 'M4 16l5-5 4 4 2.5-2.5L20 17', 'M15.5 9.5v.3'],
  download: ['M12 4v11', 'M7.5 10.5 12 15l4.5-4.5', 'M5 19h14'],
};

export function icon(name: keyof typeof ICONS | string, className = 'icon'): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', className);
  svg.setAttribute('aria-hidden', 'true');
  for (const d of ICONS[name] ?? []) {
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    svg.appendChild(path);
  }
  return svg;
}

/** A round avatar with initials and a color derived from the identity. */
export function avatar(identity: string, size: 'sm' | 'md' | 'lg' = 'md'): HTMLElement {
  let hash = 0;
  for (const ch of identity) hash = (hash * 31 + ch.codePointAt(0)!) >>> 0;
  const name = identity.replace(/^agent-/, '');
  const words = name.split(/[\s._-]+/).filter(Boolean);
  const initials = (words.length > 1 ? words.slice(0, 2).map((w) => [...w][0]).join('') : [...(words[0] ?? '?')][0]!).toUpperCase();
  return h('span', { class: `avatar avatar-${size} hue-${hash % 8}`, 'aria-hidden': 'true' }, initials);
}

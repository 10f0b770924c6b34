/** Modal dialogs (native <dialog>: focus trap, Escape to close) and toasts. */
import { h, icon, mount, type Child } from '../dom.js';

export interface DialogHandle {
  dialog: HTMLDialogElement;
  body: HTMLElement;
  close(): void;
}

/** Opens a modal with a title; `build` fills its body. Closing removes it. */
export function openDialog(title: string, build: (handle: DialogHandle) => Child, options: { wide?: boolean; testid?: string } = {}): DialogHandle {
  const body = h('div', { class: 'dialog-body' });
  const dialog = h(
    'dialog',
    { class: `dialog${options.wide ? ' dialog-wide' : ''}`, 'data-testid': options.testid ?? 'dialog', 'aria-label': title },
    h(
      'header',
      { class: 'dialog-head' },
      h('h2', null, title),
      h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Close', onclick: () => handle.close() }, icon('x')),
    ),
    body,
  );
  const handle: DialogHandle = {
    dialog,
    body,
    close: () => {
      dialog.close();
      dialog.remove();
    },
  };
  dialog.addEventListener('close', () => dialog.remove());
  dialog.addEventListener('click', (event) => {
    if (event.target === dialog) handle.close(); // a click on the backdrop
  });
  mount(body, build(handle));
  document.body.appendChild(dialog);
  dialog.showModal();
  body.querySelector<HTMLElement>('input, textarea')?.focus();
  return handle;
}

/** A form inside a dialog: disables itself while `submit` runs and shows its error. */
export function dialogForm(
  fields: Child,
  submitLabel: string,
  submit: (form: HTMLFormElement) => Promise<void>,
): HTMLFormElement {
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'form-error' });
  const button = h('button', { class: 'btn primary', type: 'submit' }, submitLabel);
  const form = h('form', { class: 'form' }, fields, error, h('div', { class: 'form-actions' }, button));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    button.disabled = true;
    mount(error);
    submit(form)
      .catch((err: unknown) => mount(error, err instanceof Error ? err.message : String(err)))
      .finally(() => (button.disabled = false));
  });
  return form;
}

let toastRoot: HTMLElement | null = null;

export function showToast(text: string, tone: 'info' | 'warn' | 'bad' = 'info'): void {
  if (!toastRoot) document.body.appendChild((toastRoot = h('div', { class: 'toasts', 'aria-live': 'polite' })));
  const toast = h('div', { class: `toast tone-${tone}`, 'data-testid': 'toast' }, icon(tone === 'info' ? 'info' : 'alert'), h('span', null, text));
  toastRoot.appendChild(toast);
  setTimeout(() => toast.classList.add('leaving'), 5200);
  setTimeout(() => toast.remove(), 5600);
}

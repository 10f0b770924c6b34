/**
 * The composer of the open conversation: the text box (Enter sends, Shift+Enter a new line), the
 * attach button, files dropped onto the conversation, and the files chosen so far (several per
 * message, with optional text). Sizes and counts are checked by the client library at send time,
 * before anything is encrypted or uploaded; the refused message then says why.
 */
import { h, icon, mount } from '../dom.js';
import { formatSize } from '../format.js';

export interface ComposerOptions {
  text: string;
  files: File[];
  send(text: string, files: File[]): void;
}

export class Composer {
  readonly form: HTMLFormElement;
  private readonly textarea: HTMLTextAreaElement;
  private readonly input: HTMLInputElement;
  private readonly chips = h('div', { class: 'draft-files', 'data-testid': 'draft-files' });
  private files: File[];

  constructor(private readonly options: ComposerOptions) {
    this.files = [...options.files];
    this.textarea = h('textarea', { rows: 1, placeholder: 'Write an encrypted message…', 'data-testid': 'composer-input', 'aria-label': 'Message' });
    this.textarea.value = options.text;
    this.input = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'file-input', onchange: () => this.pick() });
    this.form = h(
      'form',
      { class: 'composer', 'data-testid': 'composer' },
      this.chips,
      h(
        'div',
        { class: 'composer-row' },
        h('button', { class: 'attach-btn', type: 'button', 'aria-label': 'Attach files', title: 'Attach files (encrypted in this browser before upload)', 'data-testid': 'attach', onclick: () => this.input.click() }, icon('paperclip')),
        this.input,
        this.textarea,
        h('button', { class: 'send-btn', type: 'submit', 'aria-label': 'Send', title: 'Send (Enter)', 'data-testid': 'send' }, icon('send')),
      ),
    );
    this.textarea.addEventListener('input', () => this.grow());
    this.textarea.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = this.textarea.value.trim();
      const files = this.files;
      if (!text && files.length === 0) return;
      this.textarea.value = '';
      this.files = [];
      this.grow();
      this.renderFiles();
      options.send(text, files);
    });
    this.renderFiles();
  }

  get text(): string {
    return this.textarea.value;
  }

  get chosen(): File[] {
    return this.files;
  }

  focus(): void {
    this.textarea.focus();
  }

  add(files: Iterable<File>): void {
    this.files = [...this.files, ...files];
    this.renderFiles();
    this.textarea.focus();
  }

  /** Lets files be dropped anywhere on `target` (the conversation), with a hint while dragging. */
  acceptDrops(target: HTMLElement): void {
    const carriesFiles = (event: DragEvent) => event.dataTransfer?.types.includes('Files') === true;
    let depth = 0; // dragenter/dragleave fire for every child crossed
    target.addEventListener('dragenter', (event) => {
      if (!carriesFiles(event)) return;
      depth++;
      target.classList.add('dropping');
    });
    target.addEventListener('dragleave', () => {
      if (depth > 0 && --depth === 0) target.classList.remove('dropping');
    });
    target.addEventListener('dragover', (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer!.dropEffect = 'copy';
    });
    target.addEventListener('drop', (event) => {
      depth = 0;
      target.classList.remove('dropping');
      if (!event.dataTransfer?.files.length) return;
      event.preventDefault();
      this.add(event.dataTransfer.files);
    });
  }

  private pick(): void {
    this.add(this.input.files ?? []);
    this.input.value = ''; // choosing the same file again fires change again
  }

  private remove(file: File): void {
    this.files = this.files.filter((f) => f !== file);
    this.renderFiles();
  }

  private grow(): void {
    this.textarea.style.height = 'auto';
    this.textarea.style.height = `${Math.min(this.textarea.scrollHeight, 160)}px`;
  }

  private renderFiles(): void {
    this.chips.hidden = this.files.length === 0;
    mount(
      this.chips,
      this.files.map((file) =>
        h(
          'span',
          { class: 'draft-file', 'data-testid': 'draft-file', 'data-filename': file.name },
          icon(file.type.startsWith('image/') ? 'image' : 'file', 'icon icon-xs'),
          h('span', { class: 'file-name', title: file.name }, file.name),
          h('span', { class: 'file-size' }, formatSize(file.size)),
          h('button', { class: 'icon-btn xs', type: 'button', 'aria-label': `Remove ${file.name}`, onclick: () => this.remove(file) }, icon('x', 'icon icon-xs')),
        ),
      ),
    );
  }
}

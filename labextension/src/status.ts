import { ISessionContext } from '@jupyterlab/apputils';
import { KernelMessage } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { branchIcon } from './icons';
import { KernelLink } from './kernellink';
import { API, describeError, requestAPI } from './request';

/**
 * Read, without side effects, the workspace and branch of the kernel's Ratatouille session
 * ('' when the kernel has not used `%rat` yet): `%rat branch dev` changes the branch there.
 */
const KERNEL_EXPRESSION =
  "(lambda m: '' if m is None else m.status_line())" +
  "(__import__('sys').modules.get('ratatouille_nb.verbs.session'))";

export interface IKernelBranch {
  workspace: string;
  branch: string;
}

/**
 * Ask a kernel for its Ratatouille workspace and branch (null if it has none or cannot say).
 */
export async function kernelBranch(
  sessionContext: ISessionContext
): Promise<IKernelBranch | null> {
  const kernel = sessionContext.session?.kernel;
  if (!kernel || kernel.status !== 'idle') {
    return null;
  }
  const future = kernel.requestExecute(
    {
      code: '',
      silent: true,
      store_history: false,
      user_expressions: { rat: KERNEL_EXPRESSION }
    },
    true
  );
  const reply = (await future.done) as KernelMessage.IExecuteReplyMsg;
  const content = reply.content as KernelMessage.IExecuteReply;
  const result = content.user_expressions?.rat as
    | { status: string; data?: { [mime: string]: string } }
    | undefined;
  const text = result?.status === 'ok' ? result.data?.['text/plain'] : undefined;
  const value = text?.replace(/^(['"])(.*)\1$/, '$2') ?? '';
  const [workspace, branch] = value.split('|');
  return workspace && branch ? { workspace, branch } : null;
}

/**
 * Status bar item: "<workspace> · <branch>". The branch is the active notebook kernel's when it
 * has a Ratatouille session, else the workspace's (as the server sees it).
 */
export class WorkspaceStatus extends Widget {
  constructor(options: WorkspaceStatus.IOptions) {
    super();
    this.addClass('jp-RatStatus');
    this.addClass('jp-StatusBar-GroupItem');
    this.addClass('jp-mod-highlighted');
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this.node.appendChild(
      branchIcon.element({ tag: 'span', className: 'jp-RatStatus-icon' })
    );
    this._text = document.createElement('span');
    this._text.className = 'jp-StatusBar-TextItem jp-RatStatus-text';
    this._text.textContent = 'Ratatouille…';
    this.node.appendChild(this._text);
    this.node.addEventListener('click', () => options.onClick());
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        options.onClick();
      }
    });
    this._interval = options.interval ?? 60000;
  }

  get session(): API.ISession | null {
    return this._session;
  }

  /** The active notebook kernel's workspace and branch, when it has a Ratatouille session. */
  get kernel(): IKernelBranch | null {
    return this._kernel;
  }

  /**
   * Follow the `ratatouille.link` comm of the active notebook: its state events update the item
   * at once (the user-expression poll below stays as the fallback for kernels without it).
   */
  follow(link: KernelLink | null): void {
    this._unfollow?.();
    this._unfollow = null;
    this._link = link;
    if (link) {
      this._unfollow = link.connect(() => {
        if (this._link === link) {
          this._fromLink();
        }
      });
    }
    this._fromLink();
  }

  /** The active notebook's kernel link (null when no notebook is active). */
  get link(): KernelLink | null {
    return this._link;
  }

  private _fromLink(): void {
    const state = this._link?.state;
    if (state) {
      this._kernel = { workspace: state.workspace, branch: state.branch };
    }
    this._render();
    this._changed?.();
  }

  /** Called after the item learned a new kernel state (index.ts refreshes what depends on it). */
  set onChanged(callback: (() => void) | null) {
    this._changed = callback;
  }

  /**
   * Follow the kernel of this notebook (null: none is active).
   */
  track(sessionContext: ISessionContext | null, label = ''): void {
    if (this._tracked) {
      this._tracked.iopubMessage.disconnect(this._onIOPub, this);
      this._tracked.statusChanged.disconnect(this._onStatus, this);
    }
    this._tracked = sessionContext;
    this._label = label;
    this._kernel = null;
    if (sessionContext) {
      sessionContext.iopubMessage.connect(this._onIOPub, this);
      sessionContext.statusChanged.connect(this._onStatus, this);
      this._stale = true;
      this._onStatus();
    }
    this._render();
  }

  async refresh(): Promise<void> {
    try {
      this._session = await requestAPI<API.ISession>(
        // the branch new kernels start on: not this notebook's (sent as ?branch= otherwise)
        'session?branch='
      );
      this._error = null;
    } catch (error) {
      this._session = null;
      this._error = describeError(error);
    }
    this._render();
  }

  protected onAfterAttach(): void {
    void this.refresh();
    this._timer = window.setInterval(() => void this.refresh(), this._interval);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this._timer);
  }

  private _onIOPub(_: ISessionContext, msg: KernelMessage.IMessage): void {
    // A cell ran (our own silent request broadcasts no execute_input): ask again when idle.
    if (msg.header.msg_type === 'execute_input') {
      this._stale = true;
    }
  }

  private _onStatus(): void {
    const context = this._tracked;
    if (!context || !this._stale || context.session?.kernel?.status !== 'idle') {
      return;
    }
    this._stale = false;
    kernelBranch(context)
      .then(found => {
        if (context === this._tracked && !this._link?.state) {
          this._kernel = found;
          this._render();
        }
      })
      .catch(() => undefined);
  }

  private _render(): void {
    const session = this._session;
    if (this._kernel) {
      const { workspace, branch } = this._kernel;
      this._text.textContent = `${workspace} · ${branch}`;
      this.node.title =
        `Ratatouille workspace ${workspace} on branch ${branch} (kernel of ${this._label || 'this notebook'})` +
        (session && session.branch !== branch
          ? `\nNew kernels start on ${session.branch}`
          : '') +
        '\nClick for the branch menu';
      this.removeClass('jp-mod-error');
      return;
    }
    if (session) {
      this._text.textContent = `${session.workspace} · ${session.branch}`;
      this.node.title =
        `Ratatouille workspace ${session.workspace} on branch ${session.branch}\n` +
        `${session.workspace_root}\nprofile ${session.profile}, catalog ${session.catalog}\n` +
        'Click for the branch menu';
      this.removeClass('jp-mod-error');
      return;
    }
    this._text.textContent = this._error ? 'no workspace' : 'Ratatouille…';
    this.node.title = this._error ? `Ratatouille: ${this._error}` : '';
    this.toggleClass('jp-mod-error', this._error !== null);
  }

  private _text: HTMLSpanElement;
  private _link: KernelLink | null = null;
  private _unfollow: (() => void) | null = null;
  private _changed: (() => void) | null = null;
  private _session: API.ISession | null = null;
  private _error: string | null = null;
  private _kernel: IKernelBranch | null = null;
  private _tracked: ISessionContext | null = null;
  private _label = '';
  private _stale = false;
  private _interval: number;
  private _timer = 0;
}

export namespace WorkspaceStatus {
  export interface IOptions {
    onClick: () => void;
    interval?: number;
  }
}

/**
 * The body of the "Branches" dialog: every branch and tag, the current one marked.
 */
export function branchesBody(answer: API.IBranches, current?: string): Widget {
  const active = current ?? answer.current;
  const node = document.createElement('div');
  node.className = 'jp-RatDialog';
  const list = document.createElement('ul');
  list.className = 'jp-RatDialog-refs';
  for (const ref of answer.references) {
    const item = document.createElement('li');
    if (ref.name === active) {
      item.classList.add('jp-mod-current');
    }
    const kind = document.createElement('span');
    kind.className = `jp-RatDialog-badge jp-mod-${ref.kind}`;
    kind.textContent = ref.kind;
    const name = document.createElement('span');
    name.className = 'jp-RatDialog-path';
    name.textContent = ref.name;
    const hash = document.createElement('span');
    hash.className = 'jp-RatDialog-dim';
    const notes = [ref.hash.slice(0, 12)];
    if (ref.name === active) {
      notes.push(current ? 'this notebook' : 'current');
    }
    if (current && ref.current && ref.name !== active) {
      notes.push('new kernels');
    }
    if (ref.protected) {
      notes.push('protected');
    }
    hash.textContent = notes.join(' · ');
    item.append(kind, name, hash);
    list.appendChild(item);
  }
  node.appendChild(list);
  const tip = document.createElement('p');
  tip.className = 'jp-RatDialog-dim';
  tip.textContent =
    'Switch the branch a notebook reads and writes with %rat branch NAME.';
  node.appendChild(tip);
  return new Widget({ node });
}

import {
  Dialog,
  InputDialog,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { KernelLink } from './kernellink';
// The endpoints' answers (API.I…) are generated from ratatouille_nb/server/models.py into api.ts.
import { API, describeError, requestAPI } from './request';

/**
 * The branch and workspace menu (jupyterlab-git style), opened from the status bar item and the
 * command palette: a workspace picker, a filter box (Enter creates the typed branch), switch,
 * create from current, merge with a row-level diff preview and a confirmation, delete, and the
 * build branches grouped with "Prune". Endpoints: ratatouille_nb/server/branches.py. Switching
 * goes through the notebook's kernel (kernellink.ts), so `%rat`, `!rat` and the status bar agree.
 */
function post<T>(endpoint: string, body: object): Promise<T> {
  return requestAPI<T>(endpoint, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

export const branchAPI = {
  list: () => requestAPI<API.IBranchMenu>('branch/list'),
  workspaces: () => requestAPI<API.IWorkspaceList>('workspaces'),
  create: (name: string) =>
    post<API.IBranchChanged>('branch/create', { name }),
  check: (name: string) =>
    post<API.IBranchChanged>('branch/switch', { name }),
  remove: (name: string) =>
    post<API.IBranchChanged>('branch/delete', { name }),
  diff: (source: string) =>
    requestAPI<API.IBranchDiff>(
      `branch/diff?source=${encodeURIComponent(source)}`
    ),
  merge: (source: string) =>
    post<API.IMergeOutcome>('branch/merge', { source }),
  prune: () => post<API.IPruneOutcome>('branch/prune', {})
};

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

function button(
  label: string,
  title: string,
  onClick: () => void,
  extra = ''
): HTMLButtonElement {
  const node = el(
    'button',
    `jp-Button jp-mod-styled jp-RatMenu-button ${extra}`.trim(),
    label
  );
  node.type = 'button';
  node.title = title;
  node.addEventListener('click', event => {
    event.stopPropagation();
    onClick();
  });
  return node;
}

const fmt = new Intl.NumberFormat('en-US');

function signed(n: number): string {
  return n > 0 ? `+${fmt.format(n)}` : n < 0 ? `−${fmt.format(-n)}` : '0';
}

/**
 * The row-level diff of a merge preview: per table net rows, added, deleted, updated and schema.
 */
export function diffTable(diff: API.IBranchDiff): HTMLElement {
  const box = el('div', 'jp-RatMenu-diff');
  if (diff.tables.length === 0) {
    box.appendChild(
      el(
        'p',
        'jp-RatDialog-dim',
        `${diff.source} has no changes since it forked from ${diff.into}: nothing to merge.`
      )
    );
    return box;
  }
  box.appendChild(
    el(
      'p',
      '',
      `Merging ${diff.source} into ${diff.into} brings its changes since the fork point ${diff.fork_point.slice(0, 12)}:`
    )
  );
  const table = el('table', 'jp-RatMenu-diffTable');
  const head = el('tr');
  for (const h of ['table', 'net rows', 'added', 'deleted', 'updated', 'schema']) {
    head.appendChild(el('th', '', h));
  }
  table.appendChild(el('thead')).appendChild(head);
  const body = table.appendChild(el('tbody'));
  for (const t of diff.tables) {
    const approx = t.rows_exact ? '' : '≈';
    const row = el('tr');
    row.append(
      el('td', 'jp-RatMenu-code', t.table + (t.status === 'changed' ? '' : ` (${t.status})`)),
      el('td', '', signed(t.net_rows)),
      el('td', 'jp-mod-added', `${approx}+${fmt.format(t.rows_added)}`),
      el('td', 'jp-mod-deleted', `${approx}−${fmt.format(t.rows_deleted)}`),
      el('td', 'jp-mod-updated', t.rows_updated ? `~${fmt.format(t.rows_updated)}` : '–'),
      el(
        'td',
        '',
        t.schema_changes
          .map(c =>
            c.change === 'retyped'
              ? `${c.name}: ${c.old_type} → ${c.new_type}`
              : `${c.change === 'added' ? '+' : '−'}${c.name}`
          )
          .join(', ') || '–'
      )
    );
    body.appendChild(row);
  }
  box.appendChild(table);
  return box;
}

/**
 * What the menu and the palette commands act on: the active notebook's kernel link (null when
 * no notebook is active) and a way to refresh the status bar.
 */
export interface IBranchTarget {
  link: () => KernelLink | null;
  changed: () => void;
}

/**
 * Switch the active notebook's kernel to `name` (checked by the server first).
 */
export async function switchBranch(
  target: IBranchTarget,
  name: string
): Promise<void> {
  const link = target.link();
  if (!link) {
    throw new Error('Open a notebook to switch its branch.');
  }
  await branchAPI.check(name);
  await link.switchBranch(name);
  target.changed();
}

export async function createBranch(
  target: IBranchTarget,
  name: string
): Promise<void> {
  await branchAPI.create(name);
  if (target.link()) {
    await switchBranch(target, name);
  } else {
    target.changed();
  }
}

/**
 * The menu's body. `close` ends the dialog it lives in.
 */
export class BranchMenu extends Widget {
  constructor(
    private readonly _target: IBranchTarget,
    private readonly _close: () => void
  ) {
    super();
    this.addClass('jp-RatMenu');
    const node = this.node;
    const wsRow = el('div', 'jp-RatMenu-row');
    wsRow.appendChild(el('label', 'jp-RatMenu-label', 'Workspace'));
    this._workspaces = el('select', 'jp-mod-styled jp-RatMenu-workspaces');
    this._workspaces.setAttribute('aria-label', 'Workspace');
    this._workspaces.addEventListener('change', () => void this._pickWorkspace());
    wsRow.appendChild(this._workspaces);
    this._current = el('div', 'jp-RatMenu-current');
    const filterRow = el('div', 'jp-RatMenu-row');
    this._filter = el('input', 'jp-mod-styled jp-RatMenu-filter');
    this._filter.placeholder = 'Filter branches, or name a new one';
    this._filter.setAttribute('aria-label', 'Filter branches');
    this._filter.addEventListener('input', () => this._render());
    this._newButton = button(
      'New branch',
      'Create a branch from the current one (zero-copy) and switch to it',
      () => void this._create(),
      'jp-mod-accept jp-RatMenu-new'
    );
    filterRow.append(this._filter, this._newButton);
    this._list = el('div', 'jp-RatMenu-list jp-RatDialog-refs');
    this._detail = el('div', 'jp-RatMenu-detail');
    this._status = el('div', 'jp-RatMenu-status');
    node.append(wsRow, this._current, filterRow, this._list, this._detail, this._status);
  }

  get menu(): API.IBranchMenu | null {
    return this._menu;
  }

  async load(): Promise<void> {
    this._say('Loading…');
    try {
      const [menu, workspaces] = await Promise.all([
        branchAPI.list(),
        branchAPI.workspaces().catch(() => null)
      ]);
      this._menu = menu;
      this._workspaceList = workspaces;
      this._say('');
    } catch (error) {
      this._menu = null;
      this._say(describeError(error), true);
    }
    this._render();
  }

  protected onAfterAttach(): void {
    // The dialog takes Enter in an input as "press the default button" (in the capture phase):
    // catch it first, on the window, so Enter in the filter box switches or creates instead.
    window.addEventListener('keydown', this._onKeydown, true);
    window.setTimeout(() => this._filter.focus(), 0);
  }

  protected onBeforeDetach(): void {
    window.removeEventListener('keydown', this._onKeydown, true);
  }

  private _onKeydown = (event: KeyboardEvent): void => {
    if (event.key === 'Enter' && event.target === this._filter) {
      event.preventDefault();
      event.stopPropagation();
      void this._enter();
    }
  };

  private _say(text: string, error = false): void {
    this._status.textContent = text;
    this._status.classList.toggle('jp-mod-error', error);
  }

  private async _run(what: string, action: () => Promise<void>): Promise<void> {
    this._say(`${what}…`);
    try {
      await action();
    } catch (error) {
      this._say(describeError(error), true);
    }
  }

  private _render(): void {
    const menu = this._menu;
    this._renderWorkspaces();
    this._list.replaceChildren();
    if (!menu) {
      this._current.textContent = '';
      return;
    }
    const link = this._target.link();
    this._current.replaceChildren(
      el('span', 'jp-RatDialog-dim', 'On '),
      el('span', 'jp-RatMenu-code jp-RatMenu-currentName', menu.current),
      el(
        'span',
        'jp-RatDialog-dim',
        link ? ` · ${link.panel.title.label}` : ' · no notebook active: switching needs one'
      )
    );
    const needle = this._filter.value.trim().toLowerCase();
    const match = (name: string) => !needle || name.toLowerCase().includes(needle);
    const branches = menu.branches.filter(b => match(b.name));
    this._list.appendChild(el('div', 'jp-RatMenu-heading', 'Branches'));
    if (branches.length === 0) {
      this._list.appendChild(
        el('div', 'jp-RatDialog-dim jp-RatMenu-empty', needle ? `No branch matches; Enter creates “${this._filter.value.trim()}”.` : 'No branches.')
      );
    }
    for (const b of branches) {
      this._list.appendChild(this._row(b, menu));
    }
    const builds = menu.builds
      .map(g => ({ ...g, branches: g.branches.filter(b => match(b.name)) }))
      .filter(g => g.branches.length > 0);
    const total = menu.builds.reduce((n, g) => n + g.branches.length, 0);
    if (total > 0) {
      const group = el('details', 'jp-RatMenu-builds');
      const summary = el('summary', 'jp-RatMenu-heading', `Build branches (${total})`);
      summary.appendChild(
        button('Prune', 'Delete every leftover build branch (kept by failed builds)', () => void this._prune(), 'jp-RatMenu-prune')
      );
      group.appendChild(summary);
      for (const g of builds) {
        group.appendChild(el('div', 'jp-RatDialog-dim jp-RatMenu-group', `from ${g.parent}`));
        for (const b of g.branches) {
          group.appendChild(this._row(b, menu));
        }
      }
      this._list.appendChild(group);
    }
    const tags = menu.tags.filter(t => match(t.name));
    if (tags.length > 0) {
      this._list.appendChild(el('div', 'jp-RatMenu-heading', 'Tags'));
      for (const t of tags) {
        this._list.appendChild(this._row(t, menu));
      }
    }
  }

  private _renderWorkspaces(): void {
    const list = this._workspaceList;
    const menu = this._menu;
    this._workspaces.replaceChildren();
    const items = list?.workspaces ?? [];
    const names = new Set(items.map(w => w.name));
    if (menu && !names.has(menu.workspace)) {
      const option = el('option', '', menu.workspace);
      option.value = menu.workspace_root;
      this._workspaces.appendChild(option);
    }
    for (const w of items) {
      const option = el('option', '', w.role ? `${w.name} (${w.role})` : `${w.name} (no role)`);
      option.value = w.path;
      option.disabled = w.role === null;
      this._workspaces.appendChild(option);
    }
    if (menu) {
      this._workspaces.value = menu.workspace_root;
    }
  }

  private _row(b: API.IBranchLine, menu: API.IBranchMenu): HTMLElement {
    const row = el('div', 'jp-RatMenu-item');
    row.dataset.branch = b.name;
    row.setAttribute('role', 'menuitem');
    const isCurrent = b.name === menu.current;
    row.classList.toggle('jp-mod-current', isCurrent);
    const name = el('span', 'jp-RatMenu-code jp-RatMenu-name', b.name);
    const notes: string[] = [b.hash.slice(0, 12), `${b.tables} table${b.tables === 1 ? '' : 's'}`];
    if (isCurrent) {
      notes.push(this._target.link() ? 'this notebook' : 'current');
    }
    if (b.name === menu.workspace_branch) {
      notes.push('workspace branch');
    }
    if (b.default) {
      notes.push('default');
    }
    if (b.protected) {
      notes.push('protected');
    }
    const meta = el('span', 'jp-RatDialog-dim jp-RatMenu-meta', notes.join(' · '));
    const actions = el('span', 'jp-RatMenu-actions');
    if (b.kind === 'branch' && !isCurrent) {
      actions.appendChild(
        button('Merge…', `Preview and merge ${b.name} into ${menu.current}`, () => void this._previewMerge(b.name), 'jp-RatMenu-merge')
      );
    }
    const deletable = !isCurrent && !b.default && !b.protected && b.name !== menu.workspace_branch;
    if (deletable) {
      actions.appendChild(
        button('Delete', `Delete ${b.kind} ${b.name}`, () => this._askDelete(b), 'jp-mod-warn jp-RatMenu-delete')
      );
    }
    row.append(name, meta, actions);
    if (b.kind === 'branch' && !isCurrent) {
      row.title = `Switch this notebook to ${b.name}`;
      row.addEventListener('click', () => void this._switch(b.name));
    }
    return row;
  }

  private async _switch(name: string): Promise<void> {
    await this._run(`Switching to ${name}`, async () => {
      await switchBranch(this._target, name);
      this._close();
    });
  }

  private async _enter(): Promise<void> {
    const menu = this._menu;
    const typed = this._filter.value.trim();
    if (!menu || !typed) {
      return;
    }
    const exact = menu.branches.find(b => b.name === typed);
    const matches = menu.branches.filter(b => b.name.toLowerCase().includes(typed.toLowerCase()));
    if (exact || matches.length === 1) {
      const name = (exact ?? matches[0]).name;
      if (name !== menu.current) {
        await this._switch(name);
      }
      return;
    }
    await this._create();
  }

  private async _create(): Promise<void> {
    const name = this._filter.value.trim();
    if (!name) {
      this._say('Type the new branch name in the box first.', true);
      this._filter.focus();
      return;
    }
    await this._run(`Creating ${name}`, async () => {
      await createBranch(this._target, name);
      this._close();
    });
  }

  private async _previewMerge(source: string): Promise<void> {
    const menu = this._menu;
    if (!menu) {
      return;
    }
    this._say('');
    this._detail.replaceChildren(el('p', 'jp-RatDialog-dim', `Comparing ${source} with its fork point…`));
    try {
      const diff = await branchAPI.diff(source);
      const confirm = button(
        `Merge into ${diff.into}`,
        'Merge now (a fast-forward or a merge commit; conflicts change nothing)',
        () => void this._merge(source),
        'jp-mod-accept jp-RatMenu-confirm'
      );
      const cancel = button('Cancel', 'Do not merge', () => this._detail.replaceChildren(), 'jp-RatMenu-cancel');
      const bar = el('div', 'jp-RatMenu-row');
      bar.append(confirm, cancel);
      this._detail.replaceChildren(diffTable(diff), bar);
    } catch (error) {
      this._detail.replaceChildren();
      this._say(describeError(error), true);
    }
  }

  private async _merge(source: string): Promise<void> {
    await this._run(`Merging ${source}`, async () => {
      const result = await branchAPI.merge(source);
      this._detail.replaceChildren();
      await this.load();
      this._say(
        result.kind === 'up-to-date'
          ? `${result.into} already had ${source}.`
          : `Merged ${source} into ${result.into} (${result.kind})` +
              (result.tables.length ? `: ${result.tables.join(', ')}` : '.')
      );
      this._target.changed();
    });
  }

  private _askDelete(b: API.IBranchLine): void {
    const sure = button(`Delete ${b.name}`, 'Delete it now', () => void this._delete(b.name), 'jp-mod-warn jp-RatMenu-confirmDelete');
    const cancel = button('Cancel', 'Keep it', () => this._detail.replaceChildren(), 'jp-RatMenu-cancel');
    const bar = el('div', 'jp-RatMenu-row');
    bar.append(el('span', '', `Delete ${b.kind} ${b.name}? Its tables stay reachable from other refs only.`), sure, cancel);
    this._detail.replaceChildren(bar);
  }

  private async _delete(name: string): Promise<void> {
    await this._run(`Deleting ${name}`, async () => {
      await branchAPI.remove(name);
      this._detail.replaceChildren();
      await this.load();
      this._say(`Deleted ${name}.`);
    });
  }

  private async _prune(): Promise<void> {
    await this._run('Pruning build branches', async () => {
      const result = await branchAPI.prune();
      await this.load();
      this._say(`Deleted ${result.deleted.length} build branch${result.deleted.length === 1 ? '' : 'es'}.`);
    });
  }

  private async _pickWorkspace(): Promise<void> {
    const path = this._workspaces.value;
    const link = this._target.link();
    if (!this._menu || path === this._menu.workspace_root) {
      return;
    }
    if (!link) {
      this._say('Open a notebook to switch its workspace.', true);
      this._renderWorkspaces();
      return;
    }
    await this._run('Switching workspace', async () => {
      await link.switchWorkspace(path);
      this._target.changed();
      await this.load();
    });
  }

  private _menu: API.IBranchMenu | null = null;
  private _workspaceList: API.IWorkspaceList | null = null;
  private _workspaces: HTMLSelectElement;
  private _current: HTMLDivElement;
  private _filter: HTMLInputElement;
  private _newButton: HTMLButtonElement;
  private _list: HTMLDivElement;
  private _detail: HTMLDivElement;
  private _status: HTMLDivElement;
}

/**
 * Open the menu in a dialog; resolves when it closes.
 */
export async function openBranchMenu(target: IBranchTarget): Promise<void> {
  let dialog: Dialog<unknown> | null = null;
  const body = new BranchMenu(target, () => dialog?.resolve());
  await body.load();
  const menu = body.menu;
  dialog = new Dialog({
    title: menu ? `Workspace ${menu.workspace}: branches` : 'Branches',
    body,
    buttons: [Dialog.cancelButton({ label: 'Close' })],
    hasClose: true
  });
  dialog.addClass('jp-RatMenu-dialog');
  await dialog.launch();
}

/** Palette: pick a branch by name from the workspace's own branches. */
async function pickBranch(
  title: string,
  filter: (b: API.IBranchLine, menu: API.IBranchMenu) => boolean
): Promise<{ name: string; menu: API.IBranchMenu } | null> {
  const menu = await branchAPI.list();
  const all = [...menu.branches, ...menu.builds.flatMap(g => g.branches)];
  const items = all.filter(b => filter(b, menu)).map(b => b.name);
  if (items.length === 0) {
    await showErrorMessage(title, 'No branch to choose from.');
    return null;
  }
  const answer = await InputDialog.getItem({ title, items });
  return answer.button.accept && answer.value ? { name: answer.value, menu } : null;
}

/** The palette commands' actions (each shows its own errors). */
export const paletteActions = {
  async switchBranch(target: IBranchTarget): Promise<void> {
    try {
      const picked = await pickBranch('Switch branch', (b, m) => b.name !== m.current);
      if (picked) {
        await switchBranch(target, picked.name);
      }
    } catch (error) {
      await showErrorMessage('Switch branch', describeError(error));
    }
  },

  async createBranch(target: IBranchTarget): Promise<void> {
    try {
      const answer = await InputDialog.getText({
        title: 'New branch from the current one',
        placeholder: 'branch name'
      });
      if (answer.button.accept && answer.value?.trim()) {
        await createBranch(target, answer.value.trim());
      }
    } catch (error) {
      await showErrorMessage('New branch', describeError(error));
    }
  },

  async mergeBranch(target: IBranchTarget): Promise<void> {
    try {
      const picked = await pickBranch('Merge into the current branch', (b, m) => b.name !== m.current);
      if (!picked) {
        return;
      }
      const diff = await branchAPI.diff(picked.name);
      const body = new Widget({ node: diffTable(diff) });
      body.addClass('jp-RatMenu');
      const ok = await showDialog({
        title: `Merge ${picked.name} into ${diff.into}?`,
        body,
        buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Merge' })]
      });
      if (ok.button.accept) {
        const result = await branchAPI.merge(picked.name);
        target.changed();
        await showDialog({
          title: 'Merged',
          body: `Merged ${result.source} into ${result.into} (${result.kind}).`,
          buttons: [Dialog.okButton()]
        });
      }
    } catch (error) {
      await showErrorMessage('Merge branch', describeError(error));
    }
  },

  async deleteBranch(target: IBranchTarget): Promise<void> {
    try {
      const picked = await pickBranch(
        'Delete branch',
        (b, m) => b.name !== m.current && !b.default && !b.protected && b.name !== m.workspace_branch
      );
      if (picked) {
        await branchAPI.remove(picked.name);
        target.changed();
      }
    } catch (error) {
      await showErrorMessage('Delete branch', describeError(error));
    }
  },

  async prune(target: IBranchTarget): Promise<void> {
    try {
      const result = await branchAPI.prune();
      target.changed();
      await showDialog({
        title: 'Build branches',
        body: `Deleted ${result.deleted.length} leftover build branch${result.deleted.length === 1 ? '' : 'es'}.`,
        buttons: [Dialog.okButton()]
      });
    } catch (error) {
      await showErrorMessage('Prune build branches', describeError(error));
    }
  },

  async switchWorkspace(target: IBranchTarget): Promise<void> {
    try {
      const link = target.link();
      if (!link) {
        throw new Error('Open a notebook to switch its workspace.');
      }
      const list = await branchAPI.workspaces();
      const usable = list.workspaces.filter(w => w.role !== null);
      const answer = await InputDialog.getItem({
        title: 'Switch the notebook to workspace',
        items: usable.map(w => w.name),
        current: list.current ?? undefined
      });
      const chosen = usable.find(w => w.name === answer.value);
      if (answer.button.accept && chosen) {
        await link.switchWorkspace(chosen.path);
        target.changed();
      }
    } catch (error) {
      await showErrorMessage('Switch workspace', describeError(error));
    }
  }
};

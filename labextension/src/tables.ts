import { caretDownIcon, caretRightIcon, addIcon, tableRowsIcon } from '@jupyterlab/ui-components';

import { disclosure, el, searchField, toggleKey } from './dom';
import { API, describeError, requestAPI } from './request';
import { RefreshingSidePanel } from './sidepanel';

// GET /ratatouille/tables answers API.ITablesResponse (server/models.py).

function plural(n: number, word: string): string {
  return `${n.toLocaleString()} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * `950 rows`, `18.6k rows`, `2.4M rows` (the exact count is in the tooltip).
 */
function compactRows(n: number): string {
  const unit = n >= 1e9 ? ['B', 1e9] : n >= 1e6 ? ['M', 1e6] : n >= 1e4 ? ['k', 1e3] : null;
  if (!unit) {
    return plural(n, 'row');
  }
  const value = n / (unit[1] as number);
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)}${unit[0]} rows`;
}

/**
 * The "Tables" sidebar: the layers and tables of the active notebook's workspace on its branch,
 * with a filter (names and columns), each table's columns and types, last change, model and
 * freshness, and "Insert query" / "Show lineage" buttons.
 */
export class TablesPanel extends RefreshingSidePanel {
  constructor(options: TablesPanel.IOptions) {
    super({
      id: 'ratatouille-tables',
      className: 'jp-RatTables',
      icon: tableRowsIcon,
      caption: 'Workspace Tables',
      heading: 'Tables'
    });
    this._options = options;
    this._filter = searchField(
      'jp-RatTables-filter',
      'Filter tables and columns',
      'Filter tables and columns',
      () => this._render()
    );
    this._context = el('div', 'jp-RatTables-context');
    this._list = el('div', 'jp-RatTables-list');
    this.body.append(this._filter, this._context, this._list);
  }

  /** The last answer of the server (null before the first refresh or after an error). */
  get listing(): API.ITablesResponse | null {
    return this._listing;
  }

  /** List this branch, whatever the notebook's kernel is on (null: follow the kernel again). */
  setBranch(branch: string | null): void {
    if (branch !== this._branch) {
      this._branch = branch;
      if (this.isVisible) {
        void this.refresh();
      }
    }
  }

  /** Reload from the server, for the active notebook. */
  async refresh(): Promise<void> {
    const params = new URLSearchParams();
    const path = this._options.notebookPath();
    if (path) {
      params.set('path', path);
    }
    const branch = this._branch ?? (await this._options.branch?.()) ?? null;
    if (branch) {
      params.set('branch', branch);
    }
    const query = params.toString();
    this._loading = true;
    this._render();
    try {
      this._listing = await requestAPI<API.ITablesResponse>(
        query ? `tables?${query}` : 'tables'
      );
      this._error = null;
    } catch (error) {
      this._listing = null;
      this._error = describeError(error);
    }
    this._loading = false;
    this._render();
  }

  protected onActivateRequest(): void {
    this._filter.focus();
  }

  private _matches(table: API.ITableItem, words: string[]): 'name' | 'column' | null {
    if (words.length === 0) {
      return 'name';
    }
    const name = `${table.table} ${table.model ?? ''}`.toLowerCase();
    if (words.every(w => name.includes(w))) {
      return 'name';
    }
    const all = `${name} ${table.columns.map(c => c.name).join(' ')}`.toLowerCase();
    return words.every(w => all.includes(w)) ? 'column' : null;
  }

  private _render(): void {
    this._list.replaceChildren();
    const listing = this._listing;
    if (this._loading && !listing) {
      this._context.textContent = 'Loading…';
      return;
    }
    if (this._error) {
      this._context.replaceChildren(el('div', 'jp-RatTables-error', this._error));
      return;
    }
    if (!listing) {
      this._context.textContent = '';
      return;
    }
    const words = this._filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const total = listing.layers.reduce((n, l) => n + l.tables.length, 0);
    let shown = 0;
    this._context.replaceChildren(
      el('span', undefined, `workspace ${listing.workspace} · `),
      el('span', 'jp-RatTables-ref', listing.ref),
      el('span', 'jp-RatTables-dim', ` @ ${listing.commit}`)
    );
    this._context.title = listing.workspace_root;
    for (const layer of listing.layers) {
      const matching = layer.tables
        .map(t => ({ table: t, hit: this._matches(t, words) }))
        .filter(m => m.hit !== null);
      if (words.length > 0 && matching.length === 0) {
        continue;
      }
      shown += matching.length;
      this._list.appendChild(this._layer(layer, matching, words.length > 0));
    }
    if (total === 0) {
      this._list.appendChild(
        el(
          'div',
          'jp-RatTables-empty',
          'No tables on this branch yet. Create one with %%rat sql --save layer.table.'
        )
      );
    } else if (shown === 0) {
      this._list.appendChild(
        el('div', 'jp-RatTables-empty', `No table or column matches “${words.join(' ')}”.`)
      );
    }
  }

  private _layer(
    layer: API.ITableLayer,
    matching: { table: API.ITableItem; hit: string | null }[],
    filtering: boolean
  ): HTMLElement {
    const section = el('section', 'jp-RatTables-layer');
    section.dataset.layer = layer.name;
    const collapsed = !filtering && this._collapsedLayers.has(layer.name);
    const head = el('div', 'jp-RatTables-layerHead');
    head.append(
      (collapsed ? caretRightIcon : caretDownIcon).element({
        tag: 'span',
        className: 'jp-RatTables-caret'
      }),
      el('span', 'jp-RatTables-layerName', layer.name),
      el('span', 'jp-RatTables-count', String(layer.tables.length))
    );
    disclosure(head, !collapsed, () => {
      toggleKey(this._collapsedLayers, layer.name);
      this._render();
    });
    section.appendChild(head);
    if (collapsed) {
      return section;
    }
    const list = el('ul', 'jp-RatTables-tables');
    if (layer.tables.length === 0) {
      list.appendChild(el('li', 'jp-RatTables-empty', 'no tables'));
    }
    for (const { table, hit } of matching) {
      list.appendChild(this._table(table, hit === 'column'));
    }
    section.appendChild(list);
    return section;
  }

  private _table(table: API.ITableItem, columnHit: boolean): HTMLLIElement {
    const expanded = columnHit || this._expanded.has(table.table);
    const item = el('li', 'jp-RatTable');
    item.dataset.table = table.table;
    item.dataset.freshness = table.freshness.status;
    if (expanded) {
      item.classList.add('jp-mod-expanded');
    }
    const head = el('div', 'jp-RatTable-head');
    head.title = `${table.table}: ${table.freshness.text}`;
    const dot = el('span', `jp-RatTable-dot jp-mod-${table.freshness.status}`);
    dot.setAttribute('aria-label', `freshness: ${table.freshness.status}`);
    head.append(
      (expanded ? caretDownIcon : caretRightIcon).element({
        tag: 'span',
        className: 'jp-RatTables-caret'
      }),
      dot,
      el('span', 'jp-RatTable-name', table.name),
      el(
        'span',
        'jp-RatTables-dim jp-RatTable-rows',
        table.kind === 'table' && table.rows !== null
          ? compactRows(table.rows)
          : table.kind
      )
    );
    if (table.rows !== null) {
      head.title = `${table.table}: ${plural(table.rows, 'row')}, ${table.freshness.text}`;
    }
    disclosure(head, expanded, () => {
      toggleKey(this._expanded, table.table);
      this._render();
    });
    item.appendChild(head);
    if (expanded) {
      item.appendChild(this._details(table));
    }
    return item;
  }

  private _details(table: API.ITableItem): HTMLElement {
    const details = el('div', 'jp-RatTable-details');
    if (table.error) {
      details.appendChild(el('div', 'jp-RatTables-error', table.error));
      if (table.hint) {
        details.appendChild(el('div', 'jp-RatTables-dim', table.hint));
      }
    }
    const columns = el('ul', 'jp-RatTable-columns');
    for (const column of table.columns) {
      const row = el('li', 'jp-RatTable-column');
      row.dataset.column = column.name;
      row.title = `${column.name} ${column.type}${column.nullable ? '' : ' NOT NULL'}`;
      row.append(
        el('span', 'jp-RatTable-columnName', column.name),
        el(
          'span',
          'jp-RatTable-columnType',
          column.type + (column.nullable ? '' : ' NOT NULL')
        )
      );
      columns.appendChild(row);
    }
    details.appendChild(columns);

    const facts = el('dl', 'jp-RatTable-facts');
    const fact = (label: string, value: string, className = '') => {
      facts.append(el('dt', undefined, label), el('dd', className, value));
    };
    if (table.snapshot_at !== null) {
      const when = new Date(table.snapshot_at * 1000).toLocaleString();
      fact('changed', table.commit ? `${when} · ${table.commit}` : when);
    }
    fact(
      'freshness',
      table.freshness.text,
      `jp-RatTable-freshness jp-mod-${table.freshness.status}`
    );
    fact(
      'model',
      table.model
        ? `${table.model}${table.model_path ? ` (${table.model_path})` : ''}`
        : 'none (written from a notebook or by SQL)'
    );
    details.appendChild(facts);

    const actions = el('div', 'jp-RatTable-actions');
    const button = (label: string, title: string, run: () => void, extra: string) => {
      const b = el('button', `jp-mod-styled jp-RatTable-action ${extra}`);
      b.type = 'button';
      b.title = title;
      b.append(
        addIcon.element({ tag: 'span', className: 'jp-RatTable-actionIcon' }),
        el('span', undefined, label)
      );
      b.addEventListener('click', event => {
        event.stopPropagation();
        run();
      });
      actions.appendChild(b);
    };
    button(
      'Insert query',
      `Insert a %%rat sql cell reading ${table.table} into the active notebook`,
      () => void this._options.insert([table.query], `a query on ${table.table}`),
      'jp-RatTable-insert'
    );
    button(
      'Show lineage',
      `Insert ${table.lineage} into the active notebook`,
      () => void this._options.insert([table.lineage], `the lineage of ${table.table}`),
      'jp-RatTable-lineage'
    );
    details.appendChild(actions);
    return details;
  }

  private _options: TablesPanel.IOptions;
  private _filter: HTMLInputElement;
  private _context: HTMLDivElement;
  private _list: HTMLDivElement;
  private _listing: API.ITablesResponse | null = null;
  private _branch: string | null = null;
  private _error: string | null = null;
  private _loading = false;
  private _expanded = new Set<string>();
  private _collapsedLayers = new Set<string>();
}

export namespace TablesPanel {
  export interface IOptions {
    /** The active notebook's path (relative to the server root), to find its workspace. */
    notebookPath: () => string | null;
    /** Put cells into the active notebook. */
    insert: (sources: string[], what: string) => Promise<void>;
    /** The branch of the active notebook's kernel session (null: the server session's). */
    branch?: () => Promise<string | null>;
  }
}

import { addIcon, caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';

import { disclosure, el, searchField, toggleKey } from './dom';
import { productsIcon } from './icons';
import { API, describeError, requestAPI } from './request';
import { RefreshingSidePanel } from './sidepanel';

/**
 * "4 min ago", "3 h ago", "2 d ago" for a number of seconds.
 */
export function formatAge(seconds: number): string {
  if (seconds < 60) {
    return 'just now';
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)} min ago`;
  }
  if (seconds < 86400) {
    return `${Math.floor(seconds / 3600)} h ago`;
  }
  return `${Math.floor(seconds / 86400)} d ago`;
}

/**
 * The "Data Products" sidebar: a search box and one card per product the workspace may read.
 */
export class ProductsPanel extends RefreshingSidePanel {
  constructor(options: ProductsPanel.IOptions) {
    super({
      id: 'ratatouille-products',
      className: 'jp-RatProducts',
      icon: productsIcon,
      caption: 'Data Products',
      heading: 'Data Products'
    });
    this._insert = options.insert;
    const searchRow = el('div', 'jp-RatProducts-searchRow');
    this._search = searchField(
      'jp-RatProducts-search',
      'Search products',
      'Search data products',
      () => this._render()
    );
    searchRow.appendChild(this._search);
    this._context = el('div', 'jp-RatProducts-context');
    this._list = el('ul', 'jp-RatProducts-list');
    this.body.append(searchRow, this._context, this._list);
  }

  /** The products currently listed (after the last refresh). */
  get products(): ReadonlyArray<API.IProduct> {
    return this._products;
  }

  /** Reload the products from the server. */
  async refresh(): Promise<void> {
    this._loading = true;
    this._render();
    try {
      const answer = await requestAPI<API.IProducts>('products');
      this._products = answer.products;
      this._workspace = answer.workspace;
      this._error = null;
    } catch (error) {
      this._products = [];
      this._error = describeError(error);
    }
    this._loading = false;
    this._render();
  }

  protected onActivateRequest(): void {
    this._search.focus();
  }

  private _matches(product: API.IProduct, needle: string): boolean {
    if (!needle) {
      return true;
    }
    const text = [
      product.name,
      product.description ?? '',
      product.owner,
      product.source,
      ...product.schema.map(c => c.name)
    ]
      .join(' ')
      .toLowerCase();
    return needle
      .split(/\s+/)
      .filter(Boolean)
      .every(word => text.includes(word));
  }

  private _render(): void {
    const needle = this._search.value.trim().toLowerCase();
    this._list.replaceChildren();
    if (this._loading && this._products.length === 0) {
      this._context.textContent = 'Loading…';
      return;
    }
    if (this._error) {
      this._context.replaceChildren(
        el('div', 'jp-RatProducts-error', this._error)
      );
      return;
    }
    const shown = this._products.filter(p => this._matches(p, needle));
    const count = `${shown.length} of ${this._products.length} product${
      this._products.length === 1 ? '' : 's'
    }`;
    this._context.textContent = this._workspace
      ? `${count} readable from workspace ${this._workspace}`
      : count;
    if (this._products.length === 0) {
      this._list.appendChild(
        el(
          'li',
          'jp-RatProducts-empty',
          'No data products yet. Publish one with %rat publish SOURCE NAME VERSION.'
        )
      );
      return;
    }
    if (shown.length === 0) {
      this._list.appendChild(
        el('li', 'jp-RatProducts-empty', `No product matches “${needle}”.`)
      );
      return;
    }
    for (const product of shown) {
      this._list.appendChild(this._card(product));
    }
  }

  private _card(product: API.IProduct): HTMLLIElement {
    const expanded = this._expanded.has(product.name);
    const card = el('li', 'jp-RatProduct');
    card.dataset.product = product.name;
    if (expanded) {
      card.classList.add('jp-mod-expanded');
    }

    const head = el('div', 'jp-RatProduct-head');
    head.title = expanded ? 'Hide details' : 'Show versions and schema';
    const caret = (expanded ? caretDownIcon : caretRightIcon).element({
      className: 'jp-RatProduct-caret',
      tag: 'span'
    });
    const name = el('span', 'jp-RatProduct-name', product.name);
    const version = el(
      'span',
      'jp-RatProduct-version',
      product.latest ? `v${product.latest}` : '—'
    );
    head.append(caret, name, version);
    disclosure(head, expanded, () => {
      toggleKey(this._expanded, product.name);
      this._render();
    });
    card.appendChild(head);

    if (product.description) {
      card.appendChild(
        el('div', 'jp-RatProduct-description', product.description)
      );
    }

    const meta = el('div', 'jp-RatProduct-meta');
    meta.appendChild(el('span', undefined, `owner ${product.owner}`));
    const fresh = el('span', 'jp-RatProduct-freshness');
    if (product.freshness_seconds === null) {
      fresh.textContent = 'no data yet';
    } else {
      fresh.textContent = `refreshed ${formatAge(product.freshness_seconds)}`;
      const sla = product.freshness_sla_hours;
      if (sla !== null && product.freshness_seconds > sla * 3600) {
        fresh.classList.add('jp-mod-stale');
        fresh.title = `Older than its freshness SLA of ${sla} h`;
      }
    }
    meta.appendChild(fresh);
    meta.appendChild(
      el(
        'span',
        undefined,
        `${product.schema.length} column${product.schema.length === 1 ? '' : 's'}`
      )
    );
    card.appendChild(meta);

    if (expanded) {
      card.appendChild(this._details(product));
    }

    const actions = el('div', 'jp-RatProduct-actions');
    const insert = el('button', 'jp-mod-styled jp-RatProduct-insert');
    insert.type = 'button';
    insert.title = `Insert a %%rat sql cell reading products.${product.name} into the active notebook`;
    insert.append(
      addIcon.element({ tag: 'span', className: 'jp-RatProduct-insertIcon' }),
      el('span', undefined, 'Insert query')
    );
    insert.addEventListener('click', event => {
      event.stopPropagation();
      void this._insert(product);
    });
    actions.appendChild(insert);
    card.appendChild(actions);
    return card;
  }

  private _details(product: API.IProduct): HTMLElement {
    const details = el('div', 'jp-RatProduct-details');

    details.appendChild(el('div', 'jp-RatProduct-label', 'Versions'));
    const versions = el('ul', 'jp-RatProduct-versions');
    for (const v of [...product.versions].reverse()) {
      const item = el('li');
      item.appendChild(el('span', 'jp-RatProduct-chip', v.version));
      const when = new Date(v.created_at * 1000).toLocaleString();
      const refreshed =
        v.refreshes > 0
          ? `, refreshed ${v.refreshes} time${v.refreshes === 1 ? '' : 's'}`
          : '';
      item.appendChild(
        el('span', 'jp-RatProduct-dim', `${when} by ${v.created_by}${refreshed}`)
      );
      versions.appendChild(item);
    }
    details.appendChild(versions);

    details.appendChild(el('div', 'jp-RatProduct-label', 'Schema'));
    // One row per column; the type wraps under the name when the sidebar is narrow.
    const schema = el('ul', 'jp-RatProduct-schema');
    for (const column of product.schema) {
      const row = el('li');
      row.title = `${column.name}: ${column.type}${column.required ? ' (required)' : ''}`;
      row.appendChild(el('span', 'jp-RatProduct-column', column.name));
      row.appendChild(
        el(
          'span',
          'jp-RatProduct-type',
          column.type.replace(/,\s+/g, ',') + (column.required ? ' not null' : '')
        )
      );
      schema.appendChild(row);
    }
    details.appendChild(schema);

    const facts = el('div', 'jp-RatProduct-meta jp-RatProduct-facts');
    facts.append(
      el('span', undefined, `source ${product.source}`),
      el('span', undefined, `access ${product.access}`),
      el(
        'span',
        undefined,
        `${product.subscribers} subscriber${product.subscribers === 1 ? '' : 's'}`
      )
    );
    details.appendChild(facts);
    return details;
  }

  private _insert: (product: API.IProduct) => Promise<void>;
  private _search: HTMLInputElement;
  private _context: HTMLDivElement;
  private _list: HTMLUListElement;
  private _products: API.IProduct[] = [];
  private _workspace = '';
  private _error: string | null = null;
  private _loading = false;
  private _expanded = new Set<string>();
}

export namespace ProductsPanel {
  export interface IOptions {
    /** Put a cell reading `product` into the active notebook. */
    insert: (product: API.IProduct) => Promise<void>;
  }
}

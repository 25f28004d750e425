import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { el } from './dom';
import { API, describeError, requestAPI } from './request';

// POST /ratatouille/promote answers API.IPromoteResult (server/models.py); cell numbers are
// 1-based positions in the notebook, as in the files' header comments.

const PREVIEW_STATUS: { [key: string]: string } = {
  new: 'new',
  unchanged: 'unchanged',
  conflict: 'differs',
  overwrite: 'overwrite'
};

const WRITTEN_STATUS: { [key: string]: string } = {
  new: 'created',
  overwrite: 'overwritten',
  unchanged: 'unchanged',
  conflict: 'differs'
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * The files, each with its status badge, its cell and (when Lab can reach it) a link opening it.
 */
function fileList(
  files: API.IPromotedFile[],
  labels: { [key: string]: string },
  open: ((path: string) => void) | null,
  exists: (file: API.IPromotedFile) => boolean = () => true
): HTMLUListElement {
  const list = el('ul', 'jp-RatDialog-files');
  for (const file of files) {
    const item = el('li');
    item.dataset.status = file.status;
    item.dataset.cell = String(file.cell);
    const badge = el(
      'span',
      `jp-RatDialog-badge jp-mod-${file.status}`,
      labels[file.status] ?? file.status
    );
    let path: HTMLElement;
    const target = file.lab_path;
    if (open && target && exists(file)) {
      const link = el('a', 'jp-RatDialog-path jp-RatDialog-link', file.path);
      link.href = '#';
      link.title = `Open ${file.path}`;
      link.addEventListener('click', event => {
        event.preventDefault();
        open(target);
      });
      path = link;
    } else {
      path = el('span', 'jp-RatDialog-path', file.path);
    }
    item.append(badge, path, el('span', 'jp-RatDialog-dim', `cell ${file.cell}`));
    list.appendChild(item);
  }
  return list;
}

function modelList(models: API.IPromotedModel[]): HTMLUListElement {
  const list = el('ul', 'jp-RatDialog-models');
  for (const model of models) {
    const item = el('li');
    item.dataset.cell = String(model.cell);
    item.append(
      el('span', 'jp-RatDialog-dim', `cell ${model.cell}`),
      el('span', 'jp-RatDialog-model', model.name),
      el(
        'span',
        'jp-RatDialog-dim',
        model.kind === 'sql' ? `→ ${model.target}` : `ingests into ${model.target}`
      ),
      el('span', 'jp-RatDialog-chip', model.materialized)
    );
    list.appendChild(item);
  }
  return list;
}

function skippedList(skipped: API.ISkippedCell[]): HTMLUListElement {
  const list = el('ul', 'jp-RatDialog-skipped');
  for (const cell of skipped) {
    const item = el('li', cell.failed ? 'jp-mod-failed' : '');
    item.dataset.cell = String(cell.cell);
    item.append(
      el('span', 'jp-RatDialog-cell', `cell ${cell.cell}`),
      el('span', cell.failed ? 'jp-RatDialog-reason jp-RatDialog-error' : 'jp-RatDialog-reason', cell.reason)
    );
    list.appendChild(item);
  }
  return list;
}

function section(node: HTMLElement, title: string): void {
  node.appendChild(el('div', 'jp-RatDialog-label', title));
}

/**
 * The preview: what would be written, which models with which materializations, the failing cells
 * (to be skipped) and every other skipped cell with its reason.
 */
export function previewBody(
  plan: API.IPromoteResult,
  open: ((path: string) => void) | null
): Widget {
  const node = el('div', 'jp-RatDialog jp-RatPromote-preview');
  const failed = plan.skipped.filter(s => s.failed);
  const conflicts = plan.files.filter(f => f.status === 'conflict');
  const changing = plan.files.filter(f => f.status !== 'unchanged').length;
  node.appendChild(
    el(
      'p',
      '',
      `${plan.files.length ? `${plural(changing, 'file')} to write` : 'No file to write'} in ` +
        `${plan.workspace_root} (workspace ${plan.workspace}). Nothing is written until you confirm.`
    )
  );
  if (conflicts.length) {
    node.appendChild(
      el(
        'p',
        'jp-RatDialog-warning',
        `${plural(conflicts.length, 'pipeline file')} already exist${
          conflicts.length === 1 ? 's' : ''
        } with different content: promoting overwrites ${conflicts.length === 1 ? 'it' : 'them'}.`
      )
    );
  }
  if (plan.files.length) {
    section(node, 'Files');
    // Before the promotion, only the files that exist already can be opened.
    node.appendChild(
      fileList(plan.files, PREVIEW_STATUS, open, f => f.status !== 'new')
    );
  }
  if (plan.models.length) {
    section(node, 'Models');
    node.appendChild(modelList(plan.models));
  }
  if (failed.length) {
    section(node, `Failing ${failed.length === 1 ? 'cell' : 'cells'} (skipped)`);
    node.appendChild(skippedList(failed));
  }
  const others = plan.skipped.filter(s => !s.failed);
  if (others.length) {
    section(node, `Skipped ${others.length === 1 ? 'cell' : 'cells'}`);
    node.appendChild(skippedList(others));
  }
  for (const warning of plan.warnings) {
    node.appendChild(el('p', 'jp-RatDialog-warning', warning));
  }
  return new Widget({ node });
}

/**
 * After writing: the files (links open them in Lab), the skipped cells and how to build.
 */
export function resultBody(
  result: API.IPromoteResult,
  open: ((path: string) => void) | null
): Widget {
  const node = el('div', 'jp-RatDialog jp-RatPromote-result');
  const written = result.files.filter(f => f.status !== 'unchanged').length;
  if (result.files.length === 0) {
    node.appendChild(
      el(
        'p',
        '',
        'Nothing to promote: no cell creates or saves a table ' +
          '(CREATE TABLE layer.t AS … or %%rat sql --save layer.t), ' +
          'and no cell is marked "# rat: ingest".'
      )
    );
  } else {
    node.appendChild(
      el(
        'p',
        '',
        `${plural(written, 'file')} written in ${result.workspace_root} (workspace ${result.workspace}):`
      )
    );
    node.appendChild(fileList(result.files, WRITTEN_STATUS, open));
  }
  if (result.skipped.length > 0) {
    section(node, `Skipped ${result.skipped.length === 1 ? 'cell' : 'cells'}`);
    node.appendChild(skippedList(result.skipped));
  }
  for (const warning of result.warnings) {
    node.appendChild(el('p', 'jp-RatDialog-warning', warning));
  }
  if (result.files.length > 0) {
    const next = el('p', 'jp-RatDialog-dim', 'Build them with ');
    next.append(
      el('code', undefined, '%rat build'),
      ' in a notebook or ',
      el('code', undefined, 'rat build'),
      ' in a terminal.'
    );
    node.appendChild(next);
  }
  return new Widget({ node });
}

async function callPromote(body: API.IPromoteRequest): Promise<API.IPromoteResult> {
  return requestAPI<API.IPromoteResult>('promote', {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

/**
 * Show a dialog whose file links close it and open the file in Lab.
 */
async function dialogWithLinks(
  title: string,
  body: (open: (path: string) => void) => Widget,
  buttons: ReadonlyArray<Dialog.IButton>,
  openFile: ((path: string) => void) | null
): Promise<Dialog.IResult<unknown>> {
  let dialog: Dialog<unknown> | null = null;
  const open = (path: string) => {
    dialog?.reject();
    openFile?.(path);
  };
  dialog = new Dialog({ title, body: body(open), buttons, defaultButton: buttons.length - 1 });
  return dialog.launch();
}

/**
 * Save the notebook, preview the promotion, write on confirmation (overwriting and skipping
 * failing cells only when confirmed), then show what was written with links to the files.
 */
export async function promoteNotebook(
  panel: NotebookPanel,
  openFile: ((path: string) => void) | null = null
): Promise<API.IPromoteResult | null> {
  const context = panel.context;
  await context.ready;
  if (context.model.dirty && !context.model.readOnly) {
    await context.save();
  }
  const path = context.localPath;
  let plan: API.IPromoteResult;
  try {
    plan = await callPromote({ path, dry_run: true });
  } catch (error) {
    await showErrorMessage('Promote to pipeline failed', describeError(error));
    return null;
  }
  const failed = plan.skipped.filter(s => s.failed).map(s => s.cell);
  const conflicts = plan.files.some(f => f.status === 'conflict');
  if (plan.files.length === 0 && failed.length === 0) {
    await showDialog({
      title: 'Nothing to promote',
      body: resultBody(plan, null),
      buttons: [Dialog.okButton({ label: 'Close' })]
    });
    return plan;
  }
  const skipping = failed.length
    ? `, skipping cell${failed.length === 1 ? '' : 's'} ${failed.join(', ')}`
    : '';
  const accept = conflicts
    ? Dialog.warnButton({ label: 'Overwrite', caption: `Overwrite the files that differ${skipping}` })
    : Dialog.okButton({ label: `Promote${skipping}` });
  const answer = await dialogWithLinks(
    conflicts ? 'Overwrite pipeline files?' : 'Promote to pipeline?',
    open => previewBody(plan, open),
    [Dialog.cancelButton(), accept],
    openFile
  );
  if (!answer.button.accept) {
    return null;
  }
  let result: API.IPromoteResult;
  try {
    result = await callPromote({ path, force: conflicts, skip: failed });
  } catch (error) {
    await showErrorMessage('Promote to pipeline failed', describeError(error));
    return null;
  }
  await dialogWithLinks(
    result.files.length ? 'Promoted to pipeline' : 'Nothing to promote',
    open => resultBody(result, open),
    [Dialog.okButton({ label: 'Close' })],
    openFile
  );
  return result;
}

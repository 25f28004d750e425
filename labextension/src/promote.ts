import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { API, RatApiError, describeError, requestAPI } from './request';

const STATUS_TEXT: { [key: string]: string } = {
  new: 'created',
  overwrite: 'overwritten',
  unchanged: 'unchanged',
  conflict: 'differs'
};

function fileList(files: API.IPromotedFile[]): HTMLUListElement {
  const list = document.createElement('ul');
  list.className = 'jp-RatDialog-files';
  for (const file of files) {
    const item = document.createElement('li');
    item.dataset.status = file.status;
    const badge = document.createElement('span');
    badge.className = `jp-RatDialog-badge jp-mod-${file.status}`;
    badge.textContent = STATUS_TEXT[file.status] ?? file.status;
    const path = document.createElement('span');
    path.className = 'jp-RatDialog-path';
    path.textContent = file.path;
    const cell = document.createElement('span');
    cell.className = 'jp-RatDialog-dim';
    cell.textContent = `cell ${file.cell + 1}`;
    item.append(badge, path, cell);
    list.appendChild(item);
  }
  return list;
}

function paragraph(text: string, className = ''): HTMLParagraphElement {
  const p = document.createElement('p');
  p.className = className;
  p.textContent = text;
  return p;
}

/**
 * Dialog body listing what a promotion wrote (or, for a refusal, what would be overwritten).
 */
export function resultBody(result: API.IPromoteResult): Widget {
  const node = document.createElement('div');
  node.className = 'jp-RatDialog jp-RatPromote-result';
  const written = result.files.filter(f => f.status !== 'unchanged').length;
  if (result.files.length === 0) {
    node.appendChild(
      paragraph(
        'Nothing to promote: no cell creates or saves a table ' +
          '(CREATE TABLE layer.t AS … or %%rat sql --save layer.t), ' +
          'and no cell is marked "# rat: ingest".'
      )
    );
  } else {
    node.appendChild(
      paragraph(
        `${written} file${written === 1 ? '' : 's'} written in ${result.workspace_root} ` +
          `(workspace ${result.workspace}):`
      )
    );
    node.appendChild(fileList(result.files));
  }
  if (result.skipped.length > 0) {
    node.appendChild(
      paragraph(
        `${result.skipped.length} cell${result.skipped.length === 1 ? '' : 's'} skipped (exploration, not pipeline).`,
        'jp-RatDialog-dim'
      )
    );
  }
  for (const warning of result.warnings) {
    node.appendChild(paragraph(warning, 'jp-RatDialog-warning'));
  }
  if (result.files.length > 0) {
    const next = paragraph('Build them with ', 'jp-RatDialog-dim');
    const cli = document.createElement('code');
    cli.textContent = 'rat build';
    const magic = document.createElement('code');
    magic.textContent = '%rat build';
    next.append(cli, ' in a terminal or ', magic, ' in a notebook.');
    node.appendChild(next);
  }
  return new Widget({ node });
}

function conflictBody(error: RatApiError): Widget {
  const node = document.createElement('div');
  node.className = 'jp-RatDialog jp-RatPromote-conflicts';
  const files = (error.body.files ?? []) as API.IPromotedFile[];
  const conflicts = files.filter(f => f.status === 'conflict');
  node.appendChild(
    paragraph(
      `${conflicts.length} pipeline file${conflicts.length === 1 ? '' : 's'} already exist${
        conflicts.length === 1 ? 's' : ''
      } with different content. Overwrite ${conflicts.length === 1 ? 'it' : 'them'}?`
    )
  );
  node.appendChild(fileList(files));
  node.appendChild(
    paragraph(
      'Nothing has been written yet. Cancel to keep the files as they are.',
      'jp-RatDialog-dim'
    )
  );
  return new Widget({ node });
}

async function callPromote(body: API.IPromoteRequest): Promise<API.IPromoteResult> {
  return requestAPI<API.IPromoteResult>('promote', {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

/**
 * Save the notebook, promote it, ask before overwriting, and show what was written.
 */
export async function promoteNotebook(panel: NotebookPanel): Promise<API.IPromoteResult | null> {
  const context = panel.context;
  await context.ready;
  if (context.model.dirty && !context.model.readOnly) {
    await context.save();
  }
  const path = context.localPath;
  let result: API.IPromoteResult;
  try {
    result = await callPromote({ path });
  } catch (error) {
    if (!(error instanceof RatApiError) || error.status !== 409) {
      await showErrorMessage('Promote to pipeline failed', describeError(error));
      return null;
    }
    const answer = await showDialog({
      title: 'Overwrite pipeline files?',
      body: conflictBody(error),
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: 'Overwrite' })
      ],
      defaultButton: 0
    });
    if (!answer.button.accept) {
      return null;
    }
    try {
      result = await callPromote({ path, force: true });
    } catch (second) {
      await showErrorMessage('Promote to pipeline failed', describeError(second));
      return null;
    }
  }
  await showDialog({
    title: result.files.length ? 'Promoted to pipeline' : 'Nothing to promote',
    body: resultBody(result),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
  return result;
}

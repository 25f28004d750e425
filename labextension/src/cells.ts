import { JupyterFrontEnd } from '@jupyterlab/application';
import { showErrorMessage } from '@jupyterlab/apputils';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';

const LOAD_EXT = '%load_ext ratatouille_nb';

/**
 * Put code cells below the active cell of the notebook (after `%load_ext ratatouille_nb` when
 * the notebook does not load the extension yet), reusing an empty active code cell.
 */
export async function insertCells(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  sources: string[],
  what: string
): Promise<void> {
  const panel: NotebookPanel | null = tracker.currentWidget;
  if (!panel) {
    await showErrorMessage('No notebook open', `Open a notebook to insert ${what}.`);
    return;
  }
  await panel.context.ready;
  const notebook = panel.content;
  const model = notebook.model;
  if (!model) {
    return;
  }
  const existing = model.sharedModel.cells.map(cell => cell.getSource());
  const put = (source: string) => {
    const active = notebook.activeCell;
    const reuse =
      active !== null &&
      active.model.type === 'code' &&
      active.model.sharedModel.getSource().trim() === '';
    if (!reuse) {
      NotebookActions.insertBelow(notebook);
      if (notebook.activeCell?.model.type !== 'code') {
        NotebookActions.changeCellType(notebook, 'code');
      }
    }
    notebook.activeCell?.model.sharedModel.setSource(source);
  };
  if (!existing.some(source => source.includes(LOAD_EXT))) {
    put(LOAD_EXT);
  }
  for (const source of sources) {
    put(source);
  }
  app.shell.activateById(panel.id);
  notebook.activeCell?.node.scrollIntoView({ block: 'nearest' });
}

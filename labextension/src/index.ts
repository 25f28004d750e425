import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { productsIcon, promoteIcon } from './icons';
import { ProductsPanel } from './products';
import { promoteNotebook } from './promote';
import { sqlCellPlugin } from './sqlcell';
import { TablesPanel } from './tables';
import { insertCells } from './cells';
import { API, describeError, requestAPI } from './request';
import { WorkspaceStatus, branchesBody, kernelBranch } from './status';
import { IBranchTarget, openBranchMenu, paletteActions } from './branchmenu';
import { kernelLinks } from './kernellink';
import { getActiveNotebook, setActiveNotebook } from './request';

const CATEGORY = 'Ratatouille';

export namespace CommandIDs {
  export const openProducts = 'ratatouille:open-products';
  export const refreshProducts = 'ratatouille:refresh-products';
  export const insertQuery = 'ratatouille:insert-product-query';
  export const promote = 'ratatouille:promote-notebook';
  export const showBranches = 'ratatouille:show-branches';
  export const branchMenu = 'ratatouille:branch-menu';
  export const switchBranch = 'ratatouille:switch-branch';
  export const createBranch = 'ratatouille:create-branch';
  export const mergeBranch = 'ratatouille:merge-branch';
  export const deleteBranch = 'ratatouille:delete-branch';
  export const pruneBuilds = 'ratatouille:prune-build-branches';
  export const switchWorkspace = 'ratatouille:switch-workspace';
  export const openTables = 'ratatouille:open-tables';
  export const refreshTables = 'ratatouille:refresh-tables';
}

/**
 * Put a `%%rat sql` cell reading `product` below the active cell of the current notebook
 * (preceded by `%load_ext ratatouille_nb` when the notebook does not load it yet).
 */
function insertProductQuery(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  product: API.IProduct
): Promise<void> {
  return insertCells(
    app,
    tracker,
    [product.query],
    `a query reading products.${product.name}`
  );
}

const productsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'ratatouille-nb:products',
  description: 'The "Data Products" sidebar.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const panel = new ProductsPanel({
      insert: product =>
        app.commands.execute(CommandIDs.insertQuery, {
          name: product.name
        }) as Promise<void>
    });
    app.shell.add(panel, 'left', { rank: 650 });
    if (restorer) {
      restorer.add(panel, 'ratatouille-products');
    }

    app.commands.addCommand(CommandIDs.openProducts, {
      label: 'Show Data Products',
      caption: 'Open the Data Products sidebar',
      icon: productsIcon,
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.refreshProducts, {
      label: 'Refresh Data Products',
      execute: () => panel.refresh()
    });
    app.commands.addCommand(CommandIDs.insertQuery, {
      label: args =>
        args.name
          ? `Insert Query Cell for ${args.name as string}`
          : 'Insert Product Query Cell',
      caption: 'Insert a %%rat sql cell reading a data product',
      isEnabled: () => tracker.currentWidget !== null,
      execute: async args => {
        const name = args.name as string | undefined;
        let product = panel.products.find(p => p.name === name);
        if (!product && name) {
          try {
            product = await requestAPI<API.IProduct>(
              `products/${encodeURIComponent(name)}`
            );
          } catch (error) {
            await showErrorMessage('Data product', describeError(error));
            return;
          }
        }
        if (!product) {
          app.shell.activateById(panel.id);
          return;
        }
        await insertProductQuery(app, tracker, product);
      }
    });
    tracker.currentChanged.connect(() =>
      app.commands.notifyCommandChanged(CommandIDs.insertQuery)
    );
    if (palette) {
      palette.addItem({ command: CommandIDs.openProducts, category: CATEGORY });
      palette.addItem({
        command: CommandIDs.refreshProducts,
        category: CATEGORY
      });
    }
  }
};

const promotePlugin: JupyterFrontEndPlugin<void> = {
  id: 'ratatouille-nb:promote',
  description:
    'The "Promote to pipeline" notebook toolbar button and command (toolbar item in the settings schema).',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null
  ) => {
    app.commands.addCommand(CommandIDs.promote, {
      label: 'Promote Notebook to Pipeline',
      caption:
        'Write pipeline files (SQL, YAML, Python) from the %%rat cells of this notebook',
      icon: promoteIcon,
      isEnabled: () => tracker.currentWidget !== null,
      execute: async () => {
        const panel = tracker.currentWidget;
        if (panel) {
          await promoteNotebook(panel, path =>
            app.commands.execute('docmanager:open', { path })
          );
        }
      }
    });
    tracker.currentChanged.connect(() =>
      app.commands.notifyCommandChanged(CommandIDs.promote)
    );
    if (palette) {
      palette.addItem({ command: CommandIDs.promote, category: CATEGORY });
    }
  }
};

const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'ratatouille-nb:status',
  description: 'The current Ratatouille workspace and branch in the status bar.',
  autoStart: true,
  requires: [IStatusBar],
  optional: [ICommandPalette, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar,
    palette: ICommandPalette | null,
    tracker: INotebookTracker | null
  ) => {
    const item = new WorkspaceStatus({
      onClick: () => void app.commands.execute(CommandIDs.branchMenu)
    });
    // The active notebook (its path, its kernel's workspace and branch) goes with every request,
    // so the status bar, the sidebar and Promote follow it; kernellink.ts hears the kernel.
    const links = kernelLinks;
    let lastActive = '';
    const updateActive = () => {
      const link = item.link;
      const state = link?.state;
      setActiveNotebook({
        path: link?.path,
        workspace: state?.path,
        branch: state?.branch
      });
      const key = JSON.stringify(getActiveNotebook());
      if (key !== lastActive) {
        lastActive = key;
        void item.refresh();
        for (const command of [CommandIDs.refreshProducts, CommandIDs.refreshTables]) {
          if (app.commands.hasCommand(command)) {
            void app.commands.execute(command);
          }
        }
      }
    };
    item.onChanged = updateActive;
    const target: IBranchTarget = {
      link: () => item.link,
      changed: () => {
        updateActive();
        void item.refresh();
      }
    };
    if (tracker) {
      tracker.widgetAdded.connect((_, panel) => void links.get(panel));
      const follow = () => {
        const panel = tracker.currentWidget;
        item.track(panel?.sessionContext ?? null, panel?.title.label ?? '');
        item.follow(panel ? links.get(panel) : null);
      };
      tracker.currentChanged.connect(follow);
      follow();
    }
    statusBar.registerStatusItem('ratatouille-nb:workspace', {
      item,
      align: 'left',
      rank: 4
    });
    app.commands.addCommand(CommandIDs.branchMenu, {
      label: 'Branches and Workspaces…',
      caption:
        'Switch, create, merge (with a diff preview) or delete branches of the notebook’s workspace, or switch workspace',
      execute: () => openBranchMenu(target)
    });
    const branchActions: [string, string, (target: IBranchTarget) => unknown][] = [
      [CommandIDs.switchBranch, 'Switch Notebook Branch…', paletteActions.switchBranch],
      [CommandIDs.createBranch, 'New Branch from Current…', paletteActions.createBranch],
      [CommandIDs.mergeBranch, 'Merge Branch into Current…', paletteActions.mergeBranch],
      [CommandIDs.deleteBranch, 'Delete Branch…', paletteActions.deleteBranch],
      [CommandIDs.pruneBuilds, 'Prune Leftover Build Branches', paletteActions.prune],
      [CommandIDs.switchWorkspace, 'Switch Notebook Workspace…', paletteActions.switchWorkspace]
    ];
    for (const [id, label, action] of branchActions) {
      app.commands.addCommand(id, { label, execute: () => action(target) });
    }
    if (palette) {
      for (const command of [CommandIDs.branchMenu, ...branchActions.map(a => a[0])]) {
        palette.addItem({ command, category: CATEGORY });
      }
    }
    app.commands.addCommand(CommandIDs.showBranches, {
      label: 'Show Workspace Branches',
      caption: 'List the branches and tags of the Ratatouille catalog',
      execute: async () => {
        await item.refresh();
        try {
          const answer = await requestAPI<API.IBranches>('branches');
          const session = item.session;
          await showDialog({
            title: session
              ? `Workspace ${session.workspace}: branches`
              : 'Branches',
            body: branchesBody(answer, item.kernel?.branch),
            buttons: [Dialog.okButton({ label: 'Close' })]
          });
        } catch (error) {
          await showErrorMessage('Ratatouille branches', describeError(error));
        }
      }
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.showBranches, category: CATEGORY });
    }
  }
};

const tablesPlugin: JupyterFrontEndPlugin<void> = {
  id: 'ratatouille-nb:tables',
  description:
    'The "Tables" sidebar: the layers and tables of the active notebook\'s workspace.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    // The kernel's branch, remembered per notebook: a busy kernel cannot say, its last answer stands.
    const kernelBranches = new Map<string, string>();
    const panel = new TablesPanel({
      notebookPath: () => tracker.currentWidget?.context.path ?? null,
      insert: (sources, what) => insertCells(app, tracker, sources, what),
      branch: async () => {
        const notebook = tracker.currentWidget;
        if (!notebook) {
          return null;
        }
        // the kernel link's state (kernellink.ts) is exact and needs no idle kernel
        const linked = kernelLinks.get(notebook).state?.branch;
        if (linked) {
          kernelBranches.set(notebook.id, linked);
          return linked;
        }
        const found = await kernelBranch(notebook.sessionContext).catch(() => null);
        if (found) {
          kernelBranches.set(notebook.id, found.branch);
        }
        return kernelBranches.get(notebook.id) ?? null;
      }
    });
    app.shell.add(panel, 'left', { rank: 651 });
    if (restorer) {
      restorer.add(panel, 'ratatouille-tables');
    }
    tracker.currentChanged.connect(() => {
      if (panel.isVisible) {
        void panel.refresh();
      }
    });
    // A %rat / %%rat cell may have written a table or switched the branch: list again.
    NotebookActions.executed.connect((_, { cell }) => {
      if (panel.isVisible && cell.model.sharedModel.getSource().trimStart().startsWith('%')) {
        // once the kernel is idle again, so that it can tell its branch
        setTimeout(() => void panel.refresh(), 500);
      }
    });
    app.commands.addCommand(CommandIDs.refreshTables, {
      label: 'Refresh Workspace Tables',
      execute: () => (panel.isVisible ? panel.refresh() : undefined)
    });
    app.commands.addCommand(CommandIDs.openTables, {
      label: 'Show Workspace Tables',
      caption: 'Open the Tables sidebar (layers, tables, columns, freshness)',
      execute: () => app.shell.activateById(panel.id)
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.openTables, category: CATEGORY });
    }
  }
};

export default [
  productsPlugin,
  promotePlugin,
  statusPlugin,
  sqlCellPlugin,
  tablesPlugin
];

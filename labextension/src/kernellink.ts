import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { NotebookPanel } from '@jupyterlab/notebook';

/**
 * The frontend end of the `ratatouille.link` comm (ratatouille_nb/notebook/link.py): one per
 * notebook. It opens the comm when the kernel starts (`hello`), also accepts the comm the kernel
 * opens when `%load_ext ratatouille_nb` runs later, hears every branch or workspace change of the
 * kernel session at once (`state` events), and forwards menu switches to the kernel.
 */
export const LINK_TARGET = 'ratatouille.link';

/** What the kernel says about its session. `path` is the workspace folder. */
export interface ILinkState {
  workspace: string;
  path: string;
  branch: string;
}

export interface ILinkError {
  message: string;
  hint?: string | null;
}

type Listener = (link: KernelLink) => void;

/** Load the extension in the kernel (it registers the comm target and opens a comm to us). */
const LOAD_CODE =
  "get_ipython().run_line_magic('load_ext', 'ratatouille_nb')";

export class KernelLink {
  constructor(readonly panel: NotebookPanel) {
    this._context = panel.sessionContext;
    this._context.kernelChanged.connect(this._onKernelChanged, this);
    this._context.statusChanged.connect(this._onStatus, this);
    this._attach(this._context.session?.kernel ?? null);
  }

  /** The kernel session's workspace and branch (null until the kernel told us). */
  get state(): ILinkState | null {
    return this._state;
  }

  /** The last error the kernel reported for an action (cleared by the next state). */
  get error(): ILinkError | null {
    return this._error;
  }

  /** Whether a comm to the kernel is open. */
  get linked(): boolean {
    return this._comm !== null && !this._comm.isDisposed;
  }

  /** The notebook path relative to the server root. */
  get path(): string {
    return this.panel.context.path;
  }

  /** Call `listener` on every state or error event (and when the kernel goes away). */
  connect(listener: Listener): () => void {
    this._listeners.push(listener);
    return () => {
      this._listeners = this._listeners.filter(l => l !== listener);
    };
  }

  /**
   * Switch the kernel session to `branch`; resolves with the new state (rejects with the
   * kernel's error). Loads the extension in the kernel first when it has not been loaded.
   */
  async switchBranch(branch: string): Promise<ILinkState> {
    return this._act({ action: 'switch', branch }, s => s.branch === branch);
  }

  /** Switch the kernel session to the workspace at folder `path`. */
  async switchWorkspace(path: string): Promise<ILinkState> {
    return this._act({ action: 'workspace', path }, s => s.path === path);
  }

  /** Open the link when it is not (loading the extension in the kernel), then say hello. */
  async ensure(timeoutMs = 15000): Promise<void> {
    if (this.linked) {
      return;
    }
    const kernel = this._context.session?.kernel;
    if (!kernel) {
      throw new Error('this notebook has no kernel');
    }
    const linked = this._waitFor(() => this.linked, timeoutMs);
    await kernel.requestExecute(
      { code: LOAD_CODE, silent: true, store_history: false },
      true
    ).done;
    await linked;
  }

  dispose(): void {
    this._context.kernelChanged.disconnect(this._onKernelChanged, this);
    this._context.statusChanged.disconnect(this._onStatus, this);
    this._closeComm();
    this._listeners = [];
  }

  private async _act(
    data: { [key: string]: string },
    done: (state: ILinkState) => boolean
  ): Promise<ILinkState> {
    await this.ensure();
    const comm = this._comm;
    if (!comm) {
      throw new Error('the kernel is not linked');
    }
    const before = this._events;
    const answer = new Promise<ILinkState>((resolve, reject) => {
      const stop = this.connect(link => {
        if (link._events === before) {
          return;
        }
        if (link._lastWasError && link._error) {
          stop();
          reject(new Error(link._error.message));
        } else if (link._state && done(link._state)) {
          stop();
          resolve(link._state);
        }
      });
      window.setTimeout(() => {
        stop();
        reject(new Error('the kernel did not answer (is it busy?)'));
      }, 30000);
    });
    comm.send(data);
    return answer;
  }

  private _waitFor(test: () => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (test()) {
        resolve();
        return;
      }
      const stop = this.connect(() => {
        if (test()) {
          stop();
          resolve();
        }
      });
      window.setTimeout(() => {
        stop();
        if (test()) {
          resolve();
        } else {
          reject(new Error('the kernel did not load ratatouille_nb'));
        }
      }, timeoutMs);
    });
  }

  private _onKernelChanged(
    _: ISessionContext,
    change: { newValue: Kernel.IKernelConnection | null }
  ): void {
    this._attach(change.newValue);
  }

  private _onStatus(): void {
    const status = this._context.session?.kernel?.status;
    if (status === 'restarting' || status === 'dead' || status === 'starting') {
      this._closeComm();
      this._state = null;
      this._emit();
    } else if (status === 'idle' && !this.linked && !this._tried) {
      this._tried = true;
      this._hello();
    }
  }

  private _attach(kernel: Kernel.IKernelConnection | null): void {
    this._closeComm();
    this._state = null;
    this._tried = false;
    this._kernel = kernel;
    if (!kernel) {
      this._emit();
      return;
    }
    kernel.registerCommTarget(LINK_TARGET, (comm, msg) =>
      this._onKernelComm(comm, msg)
    );
    if (kernel.status === 'idle') {
      this._tried = true;
      this._hello();
    }
  }

  /** Open our comm (if the kernel loaded the extension already, it answers with the state). */
  private _hello(): void {
    const kernel = this._kernel;
    if (!kernel || this.linked) {
      return;
    }
    const comm = kernel.createComm(LINK_TARGET);
    this._use(comm);
    comm.open({ action: 'hello' });
  }

  private _onKernelComm(
    comm: Kernel.IComm,
    msg: KernelMessage.ICommOpenMsg
  ): void {
    this._closeComm();
    this._use(comm);
    const data = msg.content.data as { [key: string]: any };
    if (data?.event === 'state') {
      this._onEvent(data);
    } else {
      comm.send({ action: 'hello' });
    }
  }

  private _use(comm: Kernel.IComm): void {
    this._comm = comm;
    comm.onMsg = msg => this._onEvent(msg.content.data as any);
    comm.onClose = () => {
      if (this._comm === comm) {
        this._comm = null;
        this._emit();
      }
    };
  }

  private _onEvent(data: { [key: string]: any }): void {
    if (data?.event === 'state') {
      this._state = {
        workspace: String(data.workspace),
        path: String(data.path),
        branch: String(data.branch)
      };
      this._error = null;
      this._lastWasError = false;
    } else if (data?.event === 'error') {
      this._error = { message: String(data.message), hint: data.hint };
      this._lastWasError = true;
    } else {
      return;
    }
    this._events += 1;
    this._emit();
  }

  private _closeComm(): void {
    const comm = this._comm;
    this._comm = null;
    if (comm && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        // the kernel is gone already
      }
    }
  }

  private _emit(): void {
    for (const listener of [...this._listeners]) {
      listener(this);
    }
  }

  private _context: ISessionContext;
  private _kernel: Kernel.IKernelConnection | null = null;
  private _comm: Kernel.IComm | null = null;
  private _state: ILinkState | null = null;
  private _error: ILinkError | null = null;
  private _lastWasError = false;
  private _events = 0;
  private _tried = false;
  private _listeners: Listener[] = [];
}

/**
 * One KernelLink per open notebook.
 */
export class KernelLinks {
  /** The link of `panel`, made on first use and disposed with the notebook. */
  get(panel: NotebookPanel): KernelLink {
    let link = this._links.get(panel);
    if (!link) {
      const made = new KernelLink(panel);
      link = made;
      this._links.set(panel, made);
      panel.disposed.connect(() => {
        made.dispose();
        this._links.delete(panel);
      });
    }
    return link;
  }

  private _links = new Map<NotebookPanel, KernelLink>();
}

/** The links of this page's notebooks (the status bar, the menu and the Tables sidebar share them). */
export const kernelLinks = new KernelLinks();

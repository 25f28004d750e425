import { LabIcon, refreshIcon, SidePanel, ToolbarButton } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import { el } from './dom';

/**
 * A left-sidebar panel with a heading, a refresh button and a body (`<className>-title`,
 * `<className>-body`); it reloads whenever it is shown.
 */
export abstract class RefreshingSidePanel extends SidePanel {
  constructor(options: RefreshingSidePanel.IOptions) {
    super({ content: new Panel() });
    this.id = options.id;
    this.addClass(options.className);
    this.title.icon = options.icon;
    this.title.caption = options.caption;

    const heading = new Widget({ node: el('h2', `${options.className}-title`) });
    heading.node.textContent = options.heading;
    this.header.addWidget(heading);
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: `Refresh ${options.heading}`,
        onClick: () => void this.refresh()
      })
    );

    const content = new Widget();
    content.addClass(`${options.className}-body`);
    this.addWidget(content);
    this.body = content.node;
  }

  /** Reload from the server. */
  abstract refresh(): Promise<void>;

  protected onAfterShow(): void {
    void this.refresh();
  }

  /** Where the subclass puts its content. */
  protected readonly body: HTMLElement;
}

export namespace RefreshingSidePanel {
  export interface IOptions {
    id: string;
    className: string;
    icon: LabIcon;
    caption: string;
    /** The heading, also in the refresh button's tooltip ("Refresh <heading>"). */
    heading: string;
  }
}

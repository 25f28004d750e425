import { LabIcon } from '@jupyterlab/ui-components';

// `jp-icon3` on the paths lets JupyterLab's light and dark themes recolour the icons.

const productsSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M12 2 3 7v10l9 5 9-5V7l-9-5zm0 2.3 6.5 3.6L12 11.5 5.5 7.9 12 4.3zM5 9.6l6 3.3v6.6l-6-3.3V9.6zm8 9.9v-6.6l6-3.3v6.6l-6 3.3z"/>
</svg>`;

const promoteSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M6 2h8l5 5v4h-2V8h-4V4H6v16h5v2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm11 10 5 5-5 5v-3.5h-4v-3h4V12z"/>
</svg>`;

const branchSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M7 3a3 3 0 0 0-1 5.83v6.34A3 3 0 1 0 8 15.17V14c0-1.1.9-2 2-2h4a4 4 0 0 0 4-4v-.17A3 3 0 1 0 16 7.83V8a2 2 0 0 1-2 2h-4c-.73 0-1.41.2-2 .54V8.83A3 3 0 0 0 7 3zm0 2a1 1 0 1 1 0 2 1 1 0 0 1 0-2zm10 0a1 1 0 1 1 0 2 1 1 0 0 1 0-2zM7 17a1 1 0 1 1 0 2 1 1 0 0 1 0-2z"/>
</svg>`;

export const productsIcon = new LabIcon({
  name: 'ratatouille:products',
  svgstr: productsSvg
});

export const promoteIcon = new LabIcon({
  name: 'ratatouille:promote',
  svgstr: promoteSvg
});

export const branchIcon = new LabIcon({
  name: 'ratatouille:branch',
  svgstr: branchSvg
});

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

// The response interfaces are generated from ratatouille_nb/server/models.py into api.ts.
export { API } from './api';

/**
 * An error answer of the server: its status, one-line message, hint and any extra JSON fields.
 */
export class RatApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: { [key: string]: any } = {}
  ) {
    super(message);
    this.name = 'RatApiError';
  }

  get hint(): string | undefined {
    return typeof this.body.hint === 'string' ? this.body.hint : undefined;
  }
}

/**
 * Call an endpoint under `<base_url>/ratatouille/`. `ServerConnection.makeRequest`
 * adds Jupyter's authentication and XSRF headers.
 */
export async function requestAPI<T>(
  endpoint: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'ratatouille', endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    const message =
      data && typeof data.message === 'string'
        ? data.message
        : `${response.status} ${response.statusText}`;
    throw new RatApiError(response.status, message, data ?? {});
  }
  return data as T;
}

/**
 * The message to show a person for any error thrown by `requestAPI`.
 */
export function describeError(error: unknown): string {
  if (error instanceof RatApiError) {
    return error.hint ? `${error.message}\n${error.hint}` : error.message;
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

// The API client, typed by `schema.d.ts` (generated from the server's OpenAPI document at build time,
// so a console that disagrees with the contract does not compile). The key lives in this tab's session
// storage and travels only in the `Authorization: Bearer` header; behind AWS API Gateway in its API_KEY
// mode, the gateway's own key (also kept for the tab only) goes in `x-api-key`.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./api/schema";

export type Schemas = components["schemas"];
export type Collection = Schemas["Collection"];
export type Subject = Schemas["Subject"];
export type Door = Schemas["Door"];
export type DoorPolicy = Schemas["DoorPolicy"];
export type KeyInfo = Schemas["KeyInfo"];
export type Scope = Schemas["Scope"];
export type ErrorEnvelope = Schemas["ErrorEnvelope"];

const KEY_STORAGE = "facegate.key";
const GATEWAY_KEY_STORAGE = "facegate.gateway-key";

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

/** Keeps the keys for this tab (or forgets them when `key` is null). */
export function storeKey(key: string | null, gatewayKey?: string): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  if (key && gatewayKey) sessionStorage.setItem(GATEWAY_KEY_STORAGE, gatewayKey);
  else sessionStorage.removeItem(GATEWAY_KEY_STORAGE);
}

/** The headers that carry the keys. */
export function authHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const key = storedKey();
  if (key) headers.authorization = `Bearer ${key}`;
  const gateway = sessionStorage.getItem(GATEWAY_KEY_STORAGE);
  if (gateway) headers["x-api-key"] = gateway;
  return headers;
}

const auth: Middleware = {
  onRequest({ request }) {
    Object.entries(authHeaders()).forEach(([name, value]) => request.headers.set(name, value));
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(auth);

/** What an error envelope (or a failed fetch) says, for people. */
export function describe(error: unknown): string {
  const envelope = error as Partial<ErrorEnvelope> | undefined;
  if (envelope?.error?.message) return `${envelope.error.message} (${envelope.error.code})`;
  if (error instanceof Error) return error.message;
  return "the request failed";
}

/** The data of a response (nothing for a 204), or throws its error envelope's message. */
export function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    throw new Error(result.error !== undefined ? describe(result.error) : `HTTP ${result.response.status}`);
  }
  return result.data as T;
}

/** Sends a body as it is (an image blob, a multipart form): the browser sets the content type. */
export const asIs = (body: unknown) => body as BodyInit;

/** A multipart body of image files. */
export function imagesForm(images: Blob[]): FormData {
  const form = new FormData();
  images.forEach((image, i) => form.append("image", image, `image-${i}.jpg`));
  return form;
}

export function when(ms: number | null | undefined): string {
  return ms == null ? "" : new Date(ms).toLocaleString();
}

/** Saves bytes as a file on the operator's computer. */
export function download(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Server-Sent Events read with fetch, because EventSource cannot send the key in a header: the
// server's camera events as they happen (`GET /v1/events/stream`) and a collection's audit trail as it
// grows (`GET /v1/collections/{c}/events/stream`).
import { authHeaders, type Schemas } from "./api";

export type WatchEvent = Schemas["WatchEvent"];
export type AuditEvent = Schemas["AuditEvent"];

/** Calls `onData` with each event's JSON from the stream at `path` until `signal` aborts; resolves when
 * the stream ends, throws when it cannot be opened. */
async function readStream(path: string, onData: (data: unknown) => void, signal: AbortSignal): Promise<void> {
  const response = await fetch(`${window.location.origin}${path}`, { headers: authHeaders(), signal });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value;
    let end: number;
    while ((end = pending.indexOf("\n\n")) >= 0) {
      const block = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data) onData(JSON.parse(data));
    }
  }
}

/** Calls `onEvent` for each camera event until `signal` aborts; resolves when the stream ends. */
export function listen(onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
  return readStream("/v1/events/stream", (data) => onEvent(data as WatchEvent), signal);
}

/** Calls `onEvent` for each audit event of `collection` after `after` (from the start without it), then
 * for each new one as it is stored, until `signal` aborts. */
export function followTrail(
  collection: string, after: number | undefined, onEvent: (event: AuditEvent) => void, signal: AbortSignal,
): Promise<void> {
  const path = `/v1/collections/${encodeURIComponent(collection)}/events/stream${after === undefined ? "" : `?after=${after}`}`;
  return readStream(path, (data) => onEvent(data as AuditEvent), signal);
}

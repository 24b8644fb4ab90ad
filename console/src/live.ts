// The server's camera events as they happen: `GET /v1/events/stream` (Server-Sent Events) read with
// fetch, because EventSource cannot send the key in a header.
import { authHeaders, type Schemas } from "./api";

export type WatchEvent = Schemas["WatchEvent"];

/** Calls `onEvent` for each event until `signal` aborts; resolves when the stream ends. */
export async function listen(onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
  const response = await fetch(`${window.location.origin}/v1/events/stream`, { headers: authHeaders(), signal });
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
      if (data) onEvent(JSON.parse(data) as WatchEvent);
    }
  }
}

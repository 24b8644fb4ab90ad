import { useEffect, useState, type FormEvent } from "react";
import { api, ok, when, type Schemas } from "../api";
import { Checks } from "../widgets";

type Webhook = Schemas["Webhook"];
const TYPES: Schemas["EventType"][] = ["door.decision", "identity.decision", "subject.enrolled", "subject.erased", "identity.sighted", "identity.unknown", "face.track.started", "face.track.ended"];

export function Webhooks() {
  const [webhooks, setWebhooks] = useState<Webhook[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [deliveries, setDeliveries] = useState<Schemas["Delivery"][]>([]);
  const [url, setUrl] = useState("");
  const [types, setTypes] = useState<Schemas["EventType"][]>(["door.decision"]);
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = () => api.GET("/v1/webhooks").then((r) => setWebhooks(ok(r).webhooks), (e: Error) => setError(e.message));
  useEffect(() => void load(), []);
  useEffect(() => {
    if (!selected) return;
    const refresh = () =>
      api.GET("/v1/webhooks/{webhook}/deliveries", { params: { path: { webhook: selected }, query: { limit: 200 } } })
        .then((r) => setDeliveries(ok(r).deliveries), (e: Error) => setError(e.message));
    void refresh();
    const timer = setInterval(refresh, 3000);
    return () => clearInterval(timer);
  }, [selected]);

  async function create(event: FormEvent) {
    event.preventDefault();
    try {
      const created = ok(await api.POST("/v1/webhooks", { body: { url: url.trim(), event_types: types } }));
      setSecret(created.secret);
      setUrl("");
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function remove(id: string) {
    try {
      ok(await api.DELETE("/v1/webhooks/{webhook}", { params: { path: { webhook: id } } }));
      if (selected === id) setSelected(null);
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <section aria-labelledby="webhooks-title">
      <h1 id="webhooks-title">Webhooks</h1>
      {error && <p role="alert" className="error">{error}</p>}
      <table>
        <thead><tr><th scope="col">URL</th><th scope="col">Events</th><th scope="col">Created</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          {webhooks.map((w) => (
            <tr key={w.id}>
              <td>{w.url}</td><td>{w.event_types.join(", ")}</td><td>{when(w.created_at_ms)}</td>
              <td>
                <button type="button" onClick={() => setSelected(w.id)}>Deliveries</button>{" "}
                <button type="button" className="danger" onClick={() => void remove(w.id)}>Delete</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {selected && (
        <section aria-labelledby="deliveries-title">
          <h2 id="deliveries-title">Deliveries</h2>
          <table>
            <thead><tr><th scope="col">Message</th><th scope="col">Type</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">Last answer</th></tr></thead>
            <tbody>
              {deliveries.map((d) => (
                <tr key={d.message_id}>
                  <td>{d.message_id}</td><td>{d.event_type}</td><td>{d.state}</td><td>{d.attempts}</td>
                  <td>{d.last_status ?? ""} {d.last_error ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      <form className="card" onSubmit={create}>
        <h2>New webhook</h2>
        <label htmlFor="webhook-url">URL (https; plain http only to hosts the operator allowed)</label>
        <input id="webhook-url" type="url" required value={url} onChange={(e) => setUrl(e.target.value)} />
        <Checks legend="Events" options={TYPES} chosen={types} onChange={setTypes} />
        <button type="submit" disabled={!types.length}>Create webhook</button>
        {secret && (
          <p role="status">Signing secret (shown once, copy it now): <code>{secret}</code></p>
        )}
      </form>
    </section>
  );
}

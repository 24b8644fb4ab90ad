import { useEffect, useState, type FormEvent } from "react";
import { api, describe, ok, when, type Schemas } from "../api";
import { Checks } from "../widgets";

type MqttState = Schemas["MqttState"];
type EventType = Schemas["EventType"];
const TYPES: EventType[] = ["door.decision", "identity.sighted", "identity.unknown", "identity.decision", "subject.enrolled", "subject.erased", "face.track.started", "face.track.ended"];

/** The MQTT broker (Home Assistant, Frigate, Double Take): its settings, its link, what it was sent. */
export function Integrations() {
  const [state, setState] = useState<MqttState | null>(null);
  const [deliveries, setDeliveries] = useState<Schemas["Delivery"][]>([]);
  const [url, setUrl] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [prefix, setPrefix] = useState("facegate");
  const [types, setTypes] = useState<EventType[]>(["door.decision", "identity.sighted", "identity.unknown"]);
  const [enabled, setEnabled] = useState(true);
  const [homeAssistant, setHomeAssistant] = useState(true);
  const [frigate, setFrigate] = useState(false);
  const [doubleTake, setDoubleTake] = useState(false);
  const [collections, setCollections] = useState<Schemas["Collection"][]>([]);
  const [lastSeen, setLastSeen] = useState<string[]>([]);
  const [publicUrl, setPublicUrl] = useState("");
  const [linkHours, setLinkHours] = useState(24);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);

  const show = (next: MqttState) => {
    const settings = next.integration;
    setState(next);
    setUrl(settings.url);
    setUsername(settings.username ?? "");
    setPrefix(settings.topic_prefix);
    setTypes(settings.event_types);
    setEnabled(settings.enabled);
    setHomeAssistant(settings.home_assistant);
    setFrigate(settings.frigate);
    setDoubleTake(settings.double_take);
    setLastSeen(settings.last_seen_collections);
    setPublicUrl(settings.public_url ?? "");
    setLinkHours(Math.round(settings.image_link_ttl_s / 360) / 10);
  };
  const refresh = async (fill: boolean) => {
    const r = await api.GET("/v1/integrations/mqtt");
    if (r.response.status === 404) return setState(null);
    const next = ok(r);
    if (fill) show(next);
    else setState(next);
    const log = await api.GET("/v1/webhooks/{webhook}/deliveries", { params: { path: { webhook: next.integration.id }, query: { limit: 200 } } });
    setDeliveries(ok(log).deliveries.slice(-20).reverse());
  };
  useEffect(() => {
    api.GET("/v1/collections").then((r) => setCollections(ok(r).collections), (e) => setError(describe(e)));
    refresh(true).catch((e) => setError(describe(e)));
    const timer = setInterval(() => refresh(false).catch((e) => setError(describe(e))), 2000);
    return () => clearInterval(timer);
  }, []);

  async function save(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setSaved(null);
    try {
      const body: Schemas["MqttSettings"] = {
        url: url.trim(), username: username.trim() || undefined, password: password || undefined, enabled,
        home_assistant: homeAssistant, topic_prefix: prefix.trim(), event_types: types, frigate, double_take: doubleTake,
        last_seen_collections: lastSeen, public_url: publicUrl.trim() || undefined,
        image_link_ttl_s: Math.round(linkHours * 3600),
      };
      show(ok(await api.PUT("/v1/integrations/mqtt", { body })));
      setPassword("");
      setSaved("Saved: in effect now, without a restart.");
    } catch (e) {
      setError(describe(e));
    }
  }

  async function remove() {
    try {
      ok(await api.DELETE("/v1/integrations/mqtt"));
      setState(null);
      setDeliveries([]);
    } catch (e) {
      setError(describe(e));
    }
  }

  const link = state?.link;
  return (
    <section aria-labelledby="integrations-title">
      <h1 id="integrations-title">Integrations</h1>
      {error && <p role="alert" className="error">{error}</p>}
      {state && link && (
        <section className="card" aria-labelledby="link-title">
          <h2 id="link-title">MQTT broker link</h2>
          <p role="status" data-connected={link.connected}>
            {link.connected ? "Connected" : "Not connected"} to {state.integration.url}
            {link.connected_at_ms ? ` since ${when(link.connected_at_ms)}` : ""}
          </p>
          <p>Events published: {link.published}{link.last_publish_at_ms ? `, last ${when(link.last_publish_at_ms)}` : ""}</p>
          {link.last_error && <p className="error">Last error: {link.last_error}</p>}
          <table>
            <thead><tr><th scope="col">Event</th><th scope="col">Queued</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">Last error</th></tr></thead>
            <tbody>
              {deliveries.map((d) => (
                <tr key={d.message_id}>
                  <td>{d.event_type}</td><td>{when(d.created_at_ms)}</td><td>{d.state}</td><td>{d.attempts}</td><td>{d.last_error ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <button type="button" className="danger" onClick={() => void remove()}>Remove the MQTT broker</button>
        </section>
      )}
      <form className="card" onSubmit={save}>
        <h2>MQTT broker</h2>
        <p>Doors and cameras appear in Home Assistant by themselves (MQTT discovery); events go to
          <code> {prefix || "facegate"}/door/&lt;door&gt;/event</code> and <code>{prefix || "facegate"}/&lt;camera&gt;/event</code>.</p>
        <label htmlFor="mqtt-url">Broker URL (mqtts://host:8883; plain mqtt:// only to hosts the operator allowed)</label>
        <input id="mqtt-url" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="mqtts://broker.example.org:8883" />
        <label htmlFor="mqtt-user">User name</label>
        <input id="mqtt-user" autoComplete="off" value={username} onChange={(e) => setUsername(e.target.value)} />
        <label htmlFor="mqtt-password">Password {state?.integration.password_set ? "(stored; leave empty to keep it)" : ""}</label>
        <input id="mqtt-password" type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        <label htmlFor="mqtt-prefix">Topic prefix</label>
        <input id="mqtt-prefix" required value={prefix} onChange={(e) => setPrefix(e.target.value)} />
        <Checks legend="Events to publish" options={TYPES} chosen={types} onChange={setTypes} />
        <label className="check"><input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Publish events</label>
        <label className="check"><input type="checkbox" checked={homeAssistant} onChange={(e) => setHomeAssistant(e.target.checked)} /> Home Assistant discovery</label>
        <label className="check"><input type="checkbox" checked={frigate} onChange={(e) => setFrigate(e.target.checked)} /> Frigate's face topic</label>
        <label className="check"><input type="checkbox" checked={doubleTake} onChange={(e) => setDoubleTake(e.target.checked)} /> Double Take's match topics</label>
        <fieldset>
          <legend>"Last seen" sensor per person (everyone on the broker sees who was where)</legend>
          {collections.map((c) => (
            <label key={c.id} className="check">
              <input type="checkbox" checked={lastSeen.includes(c.id)}
                onChange={(e) => setLastSeen(e.target.checked ? [...lastSeen, c.id] : lastSeen.filter((x) => x !== c.id))} />
              {c.name}
            </label>
          ))}
        </fieldset>
        <label htmlFor="mqtt-public-url">facegate's address as Home Assistant reaches it (for each camera's "last face" image: a signed link, never the image on the broker; empty: no image)</label>
        <input id="mqtt-public-url" type="url" value={publicUrl} onChange={(e) => setPublicUrl(e.target.value)} placeholder="https://facegate.example:8443" />
        <label htmlFor="mqtt-link-hours">"Last face" links work for (hours)</label>
        <input id="mqtt-link-hours" type="number" min={0.1} max={168} step={0.1} value={linkHours} onChange={(e) => setLinkHours(Number(e.target.value))} />
        <button type="submit" disabled={!types.length}>Save MQTT settings</button>
        {saved && <p role="status">{saved}</p>}
      </form>
    </section>
  );
}

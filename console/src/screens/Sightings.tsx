import { useEffect, useState, type FormEvent } from "react";
import { api, ok, when, type Schemas, type Subject } from "../api";
import { CollectionSelect, useCollectionChoice } from "../widgets";

type Decision = Schemas["SightingDecision"];

/** Who was seen where and when: the tracks `facegate watch` decided, searched by person, camera and time. */
export function Sightings() {
  const [people, setPeople] = useState<Subject[]>([]);
  const [subject, setSubject] = useState("");
  const [camera, setCamera] = useState("");
  const [decision, setDecision] = useState<Decision | "">("");
  const [from, setFrom] = useState("");
  const [until, setUntil] = useState("");
  const [page, setPage] = useState<Schemas["SightingPage"] | null>(null);
  const [presence, setPresence] = useState<Schemas["PresenceList"] | null>(null);
  const [windowS, setWindowS] = useState("60");
  const [error, setError] = useState<string | null>(null);
  const { collections, collectionId, setCollectionId } = useCollectionChoice(setError);

  useEffect(() => {
    if (!collectionId) return;
    setSubject("");
    setPage(null);
    setPresence(null);
    api.GET("/v1/collections/{collection}/subjects", { params: { path: { collection: collectionId } } }).then(
      (r) => setPeople(ok(r).subjects),
      () => setPeople([]),
    );
  }, [collectionId]);

  const ms = (local: string) => (local ? new Date(local).getTime() : undefined);

  async function show(event?: FormEvent) {
    event?.preventDefault();
    const query = {
      subject: subject || undefined,
      camera: camera.trim() || undefined,
      decision: decision || undefined,
      from: ms(from),
      until: ms(until),
    };
    try {
      setPage(ok(await api.GET("/v1/collections/{collection}/sightings", { params: { path: { collection: collectionId }, query } })));
      setPresence(null);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  /** The same filters, folded into presences: a person at a camera until they are gone for the window. */
  async function showPresence() {
    const query = {
      subject: subject || undefined, camera: camera.trim() || undefined, from: ms(from), until: ms(until),
      window_s: Number(windowS),
    };
    try {
      setPresence(ok(await api.GET("/v1/collections/{collection}/presence", { params: { path: { collection: collectionId }, query } })));
      setPage(null);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <section aria-labelledby="sightings-title">
      <h1 id="sightings-title">Sightings</h1>
      <p className="muted">Who cameras saw, where and when: one row per face track that was decided (the server's cameras, uploaded videos, <code>facegate watch</code>).</p>
      <form className="filters" onSubmit={show}>
        <CollectionSelect id="sightings-collection" collections={collections} value={collectionId} onChange={setCollectionId} />
        <label htmlFor="sightings-person">Person</label>
        <select id="sightings-person" value={subject} onChange={(e) => setSubject(e.target.value)}>
          <option value="">anyone</option>
          {people.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
        </select>
        <label htmlFor="sightings-camera">Camera</label>
        <input id="sightings-camera" value={camera} onChange={(e) => setCamera(e.target.value)} />
        <label htmlFor="sightings-decision">Decision</label>
        <select id="sightings-decision" value={decision} onChange={(e) => setDecision(e.target.value as Decision | "")}>
          <option value="">any</option>
          <option value="named">named</option>
          <option value="unknown">unknown</option>
        </select>
        <label htmlFor="sightings-from">Seen from</label>
        <input id="sightings-from" type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} />
        <label htmlFor="sightings-until">until</label>
        <input id="sightings-until" type="datetime-local" value={until} onChange={(e) => setUntil(e.target.value)} />
        <button type="submit" disabled={!collectionId}>Show</button>
        <label htmlFor="sightings-window">Presence window (s)</label>
        <input id="sightings-window" type="number" min="0" max="86400" value={windowS} onChange={(e) => setWindowS(e.target.value)} />
        <button type="button" disabled={!collectionId} onClick={() => void showPresence()}>Fold into presences</button>
      </form>
      {error && <p role="alert" className="error">{error}</p>}
      {presence && (
        <table>
          <caption className="muted">
            {presence.presences.length} {presence.presences.length === 1 ? "presence" : "presences"} (sightings at most {presence.window_s} s apart folded)
            {presence.truncated ? "; more sightings matched than one answer folds, narrow the time range" : ""}
          </caption>
          <thead>
            <tr><th scope="col">Who</th><th scope="col">Camera</th><th scope="col">From</th><th scope="col">Until</th><th scope="col">Sightings</th></tr>
          </thead>
          <tbody>
            {presence.presences.map((p) => (
              <tr key={`${p.camera}/${p.subject_id}/${p.first_seen_ms}`}>
                <td>{p.subject_name ?? p.subject_id}</td><td>{p.camera}</td><td>{when(p.first_seen_ms)}</td>
                <td>{when(p.last_seen_ms)}</td><td>{p.sightings}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {page && (
        <table>
          <caption className="muted">{page.sightings.length} {page.sightings.length === 1 ? "sighting" : "sightings"}</caption>
          <thead>
            <tr><th scope="col">Who</th><th scope="col">Camera</th><th scope="col">Track</th><th scope="col">First seen</th>
              <th scope="col">Last seen</th><th scope="col">In the stream</th><th scope="col">Score</th></tr>
          </thead>
          <tbody>
            {page.sightings.map((s) => (
              <tr key={s.seq}>
                <td>{s.subject_name ?? (s.cluster_id != null ? `unknown #${s.cluster_id}` : "unknown")}</td>
                <td>{s.camera}</td>
                <td>{s.track_id}</td>
                <td>{when(s.first_seen_ms)}</td>
                <td>{when(s.last_seen_ms)}</td>
                <td>{s.stream_first_s.toFixed(1)}–{s.stream_last_s.toFixed(1)} s</td>
                <td>{s.score != null ? s.score.toFixed(3) : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

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
  const [error, setError] = useState<string | null>(null);
  const { collections, collectionId, setCollectionId } = useCollectionChoice(setError);

  useEffect(() => {
    if (!collectionId) return;
    setSubject("");
    setPage(null);
    api.GET("/v1/collections/{collection}/subjects", { params: { path: { collection: collectionId } } }).then(
      (r) => setPeople(ok(r).subjects),
      () => setPeople([]),
    );
  }, [collectionId]);

  async function show(event?: FormEvent) {
    event?.preventDefault();
    const ms = (local: string) => (local ? new Date(local).getTime() : undefined);
    const query = {
      subject: subject || undefined,
      camera: camera.trim() || undefined,
      decision: decision || undefined,
      from: ms(from),
      until: ms(until),
    };
    try {
      setPage(ok(await api.GET("/v1/collections/{collection}/sightings", { params: { path: { collection: collectionId }, query } })));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <section aria-labelledby="sightings-title">
      <h1 id="sightings-title">Sightings</h1>
      <p className="muted">Who cameras saw, where and when: one row per face track that <code>facegate watch</code> decided.</p>
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
      </form>
      {error && <p role="alert" className="error">{error}</p>}
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

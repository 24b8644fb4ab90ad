import { useEffect, useState, type FormEvent } from "react";
import { api, asIs, describe, ok, when, type Schemas, type Subject } from "../api";
import { CollectionSelect, useCollectionChoice } from "../widgets";

type Decision = Schemas["SightingDecision"];
type Sighting = Schemas["Sighting"];

/** A sighting's best shot, fetched with the key (an image URL could not carry it). */
function Shot({ collection, seq }: { collection: string; seq: number }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    let url: string | null = null;
    api
      .GET("/v1/collections/{collection}/sightings/{seq}/best-shot", { params: { path: { collection, seq } }, parseAs: "blob" })
      .then((r) => {
        if (r.response.ok && r.data) {
          url = URL.createObjectURL(r.data as Blob);
          setSrc(url);
        }
      }, () => setSrc(null));
    return () => { if (url) URL.revokeObjectURL(url); };
  }, [collection, seq]);
  return src ? <img className="shot" src={src} alt={`best shot of sighting ${seq}`} width={64} /> : null;
}

const who = (s: Sighting) => s.subject_name ?? (s.cluster_id != null ? `unknown #${s.cluster_id}` : "unknown");

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
  const [status, setStatus] = useState<string | null>(null);
  const [found, setFound] = useState<Schemas["SightingSearch"] | null>(null);
  const [groups, setGroups] = useState<Schemas["ClusterList"] | null>(null);
  const [names, setNames] = useState<Record<number, string>>({});
  const { collections, collectionId, setCollectionId } = useCollectionChoice(setError);
  const path = { collection: collectionId };

  useEffect(() => {
    if (!collectionId) return;
    setSubject("");
    setPage(null);
    setPresence(null);
    setFound(null);
    setGroups(null);
    // A collection chosen before the first one's people arrived: the late answer is dropped, not shown
    // under the collection chosen since.
    let current = true;
    api.GET("/v1/collections/{collection}/subjects", { params: { path: { collection: collectionId } } }).then(
      (r) => current && setPeople(ok(r).subjects),
      () => current && setPeople([]),
    );
    return () => { current = false; };
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

  /** Where and when the person in a photo was seen, known or not. */
  async function search(photo: File | undefined) {
    if (!photo) return;
    try {
      setFound(ok(await api.POST("/v1/collections/{collection}/sightings/search", {
        params: { path },
        body: asIs(photo) as never,
        bodySerializer: (body: unknown) => body as Blob,
        headers: { "content-type": photo.type || "application/octet-stream" },
      })));
      setError(null);
    } catch (e) {
      setError(describe(e));
    }
  }

  async function showGroups() {
    try {
      setGroups(ok(await api.GET("/v1/collections/{collection}/clusters", { params: { path } })));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  /** Names a group of unknown faces: a new person by that name, enrolled from its best shots. */
  async function nameGroup(cluster: number) {
    const name = (names[cluster] ?? "").trim();
    if (!name) return;
    try {
      const named = ok(await api.POST("/v1/collections/{collection}/clusters/{cluster}/name", {
        params: { path: { ...path, cluster } },
        body: { name },
      }));
      setStatus(`unknown #${cluster} is ${named.subject.name} now (sightings: ${named.sightings}; best shots enrolled: ${named.accepted.length}, refused by the quality gate: ${named.rejected.length})`);
      setError(null);
      await showGroups();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function notThisPerson(s: Sighting) {
    try {
      const told = ok(await api.POST("/v1/collections/{collection}/sightings/{seq}/not-this-person", {
        params: { path: { ...path, seq: s.seq } },
      }));
      setStatus(`not ${s.subject_name}: kept on their ignore list; the sighting is unknown #${told.cluster_id} now`);
      setError(null);
      await show();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  const rows = (list: Sighting[], scores?: number[]) => (
    <tbody>
      {list.map((s, i) => (
        <tr key={s.seq}>
          <td><Shot collection={collectionId} seq={s.seq} /></td>
          <td>{who(s)}</td>
          <td>{s.camera}</td>
          <td>{s.track_id}</td>
          <td>{when(s.first_seen_ms)}</td>
          <td>{when(s.last_seen_ms)}</td>
          <td>{s.stream_first_s.toFixed(1)}–{s.stream_last_s.toFixed(1)} s</td>
          <td>{(scores ? scores[i] : s.score)?.toFixed(3) ?? ""}</td>
          <td>{s.subject_name && !scores && (
            <button type="button" onClick={() => void notThisPerson(s)}>Not this person (sighting {s.seq})</button>
          )}</td>
        </tr>
      ))}
    </tbody>
  );
  const head = (score: string) => (
    <thead>
      <tr><th scope="col">Best shot</th><th scope="col">Who</th><th scope="col">Camera</th><th scope="col">Track</th><th scope="col">First seen</th>
        <th scope="col">Last seen</th><th scope="col">In the stream</th><th scope="col">{score}</th><th scope="col"></th></tr>
    </thead>
  );

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
        <button type="button" disabled={!collectionId} onClick={() => void showGroups()}>Unknown people</button>
        <label htmlFor="sightings-photo">Search by photo</label>
        <input id="sightings-photo" type="file" accept="image/*" disabled={!collectionId} onChange={(e) => void search(e.target.files?.[0])} />
      </form>
      {error && <p role="alert" className="error">{error}</p>}
      {status && <p role="status">{status}</p>}
      {found && (
        <table>
          <caption className="muted">{found.matches.length} {found.matches.length === 1 ? "sighting" : "sightings"} of the face in the photo (of {found.searched} compared, threshold {found.threshold.toFixed(3)})</caption>
          {head("Score")}
          {rows(found.matches, found.matches.map((m) => m.similarity))}
        </table>
      )}
      {groups && (
        <table>
          <caption className="muted">{groups.clusters.length} {groups.clusters.length === 1 ? "group" : "groups"} of unknown faces</caption>
          <thead>
            <tr><th scope="col">Group</th><th scope="col">Best shots</th><th scope="col">Sightings</th><th scope="col">Cameras</th><th scope="col">Last seen</th><th scope="col">Name this person</th></tr>
          </thead>
          <tbody>
            {groups.clusters.map((g) => (
              <tr key={g.cluster_id}>
                <td>unknown #{g.cluster_id}</td>
                <td>{g.shots.slice(0, 3).map((seq) => <Shot key={seq} collection={collectionId} seq={seq} />)}</td>
                <td>{g.sightings}</td>
                <td>{g.cameras.join(", ")}</td>
                <td>{when(g.last_seen_ms)}</td>
                <td>
                  <input aria-label={`Name of unknown #${g.cluster_id}`} value={names[g.cluster_id] ?? ""} onChange={(e) => setNames({ ...names, [g.cluster_id]: e.target.value })} />
                  <button type="button" onClick={() => void nameGroup(g.cluster_id)}>Name unknown #{g.cluster_id}</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
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
          {head("Score")}
          {rows(page.sightings)}
        </table>
      )}
    </section>
  );
}

import { useEffect, useState, type FormEvent } from "react";
import { api, ok, when, type Schemas } from "../api";
import { CollectionSelect, useCollectionChoice } from "../widgets";
import { listen, type WatchEvent } from "../live";

/** A face a camera is following now. */
type Live = { camera: string; track: number; who: string; since: number };

/** The faces the cameras are following now, from the server's event stream. */
function useLiveTracks(onError: (message: string) => void): Live[] {
  const [tracks, setTracks] = useState<Map<string, Live>>(new Map());
  useEffect(() => {
    const stop = new AbortController();
    const seen = (e: WatchEvent) =>
      setTracks((now) => {
        const next = new Map(now);
        const id = `${e.camera}/${e.track_id}`;
        if (e.type === "face.track.ended") next.delete(id);
        else {
          const named = e.subject?.name ?? (e.type === "identity.unknown" ? `unknown #${e.cluster_id ?? "?"}` : next.get(id)?.who ?? "…");
          const who = e.door ? `${named}: door ${e.door.access}${e.door.reason ? ` (${e.door.reason})` : ""}` : named;
          next.set(id, { camera: e.camera, track: e.track_id, who, since: next.get(id)?.since ?? Date.now() });
        }
        return next;
      });
    listen(seen, stop.signal).catch((e: Error) => {
      if (!stop.signal.aborted) onError(`live view: ${e.message}`);
    });
    return () => stop.abort();
  }, []);
  return [...tracks.values()].sort((a, b) => a.camera.localeCompare(b.camera) || a.track - b.track);
}

type Camera = Schemas["Camera"];
type Settings = Schemas["CameraSettings"];

const DEFAULTS: Settings = {
  enabled: true, detections_per_second: 5, min_face_px: 32, detect_pixels: 1920 * 1080, known_only: false,
  cooldown_s: 0, udp: false, masks: [], retention_days: null, door_id: null,
};

/** The cameras the server watches: their source (never its login), collection and how they are watched. */
export function Cameras() {
  const [cameras, setCameras] = useState<Camera[]>([]);
  const [name, setName] = useState("");
  const [source, setSource] = useState("");
  const [rate, setRate] = useState("5");
  const [minFace, setMinFace] = useState("32");
  const [knownOnly, setKnownOnly] = useState(false);
  const [keepDays, setKeepDays] = useState("");
  const [doors, setDoors] = useState<Schemas["Door"][]>([]);
  const [doorId, setDoorId] = useState("");
  const [error, setError] = useState<string | null>(null);
  const { collections, collectionId, setCollectionId } = useCollectionChoice(setError);
  const collectionName = (id: string) => collections.find((c) => c.id === id)?.name ?? id;
  const live = useLiveTracks(setError);

  const load = () => api.GET("/v1/cameras").then((r) => setCameras(ok(r).cameras), (e: Error) => setError(e.message));
  useEffect(() => void load(), []);
  useEffect(() => void api.GET("/v1/doors").then((r) => setDoors(ok(r).doors), (e: Error) => setError(e.message)), []);
  const doorName = (id: string) => doors.find((d) => d.id === id)?.name ?? id;

  async function create(event: FormEvent) {
    event.preventDefault();
    const settings = {
      ...DEFAULTS, detections_per_second: Number(rate), min_face_px: Number(minFace), known_only: knownOnly,
      retention_days: keepDays.trim() ? Number(keepDays) : null, door_id: doorId || null,
    };
    try {
      ok(await api.POST("/v1/cameras", { body: { name: name.trim(), collection_id: collectionId, source_url: source.trim(), settings } }));
      setName("");
      setSource("");
      setDoorId("");
      setError(null);
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function toggle(camera: Camera) {
    const body = {
      name: camera.name, collection_id: camera.collection_id,
      settings: { ...camera.settings, enabled: !camera.settings.enabled },
    };
    try {
      ok(await api.PUT("/v1/cameras/{camera}", { params: { path: { camera: camera.id } }, body }));
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function remove(camera: Camera) {
    try {
      ok(await api.DELETE("/v1/cameras/{camera}", { params: { path: { camera: camera.id } } }));
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <section aria-labelledby="cameras-title">
      <h1 id="cameras-title">Cameras</h1>
      <p className="muted">
        The server watches every enabled camera: each face tracked, each track named once or kept as unknown, and
        seen under Sightings. A camera's login is sealed and never shown again.
      </p>
      {error && <p role="alert" className="error">{error}</p>}
      <table>
        <thead>
          <tr><th scope="col">Name</th><th scope="col">Source</th><th scope="col">Collection</th><th scope="col">Analysed</th>
            <th scope="col">State</th><th scope="col">Changed</th><th scope="col">Actions</th></tr>
        </thead>
        <tbody>
          {cameras.map((c) => (
            <tr key={c.id}>
              <td>{c.name}</td><td><code>{c.source}</code></td><td>{collectionName(c.collection_id)}</td>
              <td>{c.settings.detections_per_second} frames/s{c.settings.known_only ? ", known people only" : ""}
                {c.settings.door_id ? `, opens ${doorName(c.settings.door_id)}` : ""}</td>
              <td>{c.settings.enabled ? "watched" : "off"}</td><td>{when(c.updated_at_ms)}</td>
              <td>
                <button type="button" onClick={() => void toggle(c)}>{c.settings.enabled ? `Turn off ${c.name}` : `Turn on ${c.name}`}</button>{" "}
                <button type="button" className="danger" onClick={() => void remove(c)}>Delete {c.name}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <section aria-labelledby="live-title">
        <h2 id="live-title">Live</h2>
        <p className="muted">The faces the cameras follow now, named as soon as each track is decided.</p>
        <table>
          <caption className="muted">{live.length} {live.length === 1 ? "face" : "faces"} in view</caption>
          <thead><tr><th scope="col">Camera</th><th scope="col">Track</th><th scope="col">Who</th><th scope="col">Since</th></tr></thead>
          <tbody>
            {live.map((t) => (
              <tr key={`${t.camera}/${t.track}`}>
                <td>{t.camera}</td><td>{t.track}</td><td>{t.who}</td><td>{new Date(t.since).toLocaleTimeString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <form className="card" onSubmit={create}>
        <h2>New camera</h2>
        <label htmlFor="camera-name">Name</label>
        <input id="camera-name" required value={name} onChange={(e) => setName(e.target.value)} />
        <CollectionSelect id="camera-collection" collections={collections} value={collectionId} onChange={setCollectionId} />
        <label htmlFor="camera-source">Source URL (rtsp://user:password@host:554/path)</label>
        <input id="camera-source" required autoComplete="off" value={source} onChange={(e) => setSource(e.target.value)} />
        <label htmlFor="camera-rate">Frames analysed per second</label>
        <input id="camera-rate" type="number" min="0.1" max="30" step="0.1" value={rate} onChange={(e) => setRate(e.target.value)} />
        <label htmlFor="camera-min-face">Smallest face named (pixels)</label>
        <input id="camera-min-face" type="number" min="8" max="1024" value={minFace} onChange={(e) => setMinFace(e.target.value)} />
        <label htmlFor="camera-keep-days">Keep its sightings for (days; empty: no limit of its own)</label>
        <input id="camera-keep-days" type="number" min="1" max="36500" value={keepDays} onChange={(e) => setKeepDays(e.target.value)} />
        <label htmlFor="camera-door">Door it opens (each face it follows is a door attempt on its best frames)</label>
        <select id="camera-door" value={doorId} onChange={(e) => setDoorId(e.target.value)}>
          <option value="">none</option>
          {doors.filter((d) => d.collection_id === collectionId).map((d) => <option key={d.id} value={d.id}>{d.name}</option>)}
        </select>
        <label className="check">
          <input type="checkbox" checked={knownOnly} onChange={(e) => setKnownOnly(e.target.checked)} />
          Known people only (keep nothing about anyone else)
        </label>
        <button type="submit" disabled={!collectionId}>Add camera</button>
      </form>
    </section>
  );
}

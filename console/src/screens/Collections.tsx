import { useEffect, useState, type FormEvent } from "react";
import { api, ok, when, type Collection, type Subject } from "../api";
import { go } from "../session";

export function Collections({ selected }: { selected?: string }) {
  const [collections, setCollections] = useState<Collection[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [keepCrops, setKeepCrops] = useState(false);

  const load = () =>
    api.GET("/v1/collections").then((r) => setCollections(ok(r).collections)).catch((e: Error) => setError(e.message));
  useEffect(() => void load(), []);

  async function create(event: FormEvent) {
    event.preventDefault();
    try {
      const created = ok(await api.POST("/v1/collections", { body: { name: name.trim(), keep_crops: keepCrops } }));
      setName("");
      await load();
      go("collections", created.id);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  const current = collections.find((c) => c.id === selected);
  return (
    <div className="split">
      <section aria-labelledby="collections-title">
        <h1 id="collections-title">Collections</h1>
        {error && <p role="alert" className="error">{error}</p>}
        <ul className="list">
          {collections.map((c) => (
            <li key={c.id}>
              <a href={`#/collections/${c.id}`} aria-current={c.id === selected ? "true" : undefined}>
                {c.name}
              </a>{" "}
              <span className="muted">{c.subject_count} people · {c.face_count} faces · {c.pack}</span>
            </li>
          ))}
        </ul>
        <form className="card" onSubmit={create}>
          <h2>New collection</h2>
          <label htmlFor="collection-name">Name</label>
          <input id="collection-name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
          <label className="check">
            <input type="checkbox" checked={keepCrops} onChange={(e) => setKeepCrops(e.target.checked)} />
            Keep aligned faces (sealed) so the collection can move to another model without enrolling again
          </label>
          <button type="submit">Create collection</button>
        </form>
      </section>
      {current && <People collection={current} onChange={load} />}
    </div>
  );
}

function People({ collection, onChange }: { collection: Collection; onChange: () => void }) {
  const [people, setPeople] = useState<Subject[]>([]);
  const [query, setQuery] = useState("");
  const [name, setName] = useState("");
  const [groups, setGroups] = useState("");
  const [error, setError] = useState<string | null>(null);

  const load = () =>
    api
      .GET("/v1/collections/{collection}/subjects", { params: { path: { collection: collection.id } } })
      .then((r) => setPeople(ok(r).subjects))
      .catch((e: Error) => setError(e.message));
  useEffect(() => void load(), [collection.id]);

  async function add(event: FormEvent) {
    event.preventDefault();
    try {
      const subject = ok(
        await api.POST("/v1/collections/{collection}/subjects", {
          params: { path: { collection: collection.id } },
          body: { name: name.trim(), groups: splitGroups(groups) },
        }),
      );
      setName("");
      setGroups("");
      onChange();
      go("collections", collection.id, "people", subject.id);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  const needle = query.trim().toLowerCase();
  const shown = people.filter(
    (p) => !needle || p.name.toLowerCase().includes(needle) || (p.groups ?? []).some((g) => g.toLowerCase().includes(needle)),
  );
  return (
    <section aria-labelledby="people-title">
      <h2 id="people-title">People in {collection.name}</h2>
      <p className="muted">
        Model {collection.pack} · false-match rate {collection.target_fmr} · created {when(collection.created_at_ms)}
        {collection.liveness_required && " · liveness required"}
      </p>
      {error && <p role="alert" className="error">{error}</p>}
      <label htmlFor="people-search">Search people</label>
      <input id="people-search" type="search" value={query} onChange={(e) => setQuery(e.target.value)} />
      <table>
        <thead>
          <tr><th scope="col">Name</th><th scope="col">Groups</th><th scope="col">Faces</th><th scope="col">Consent</th></tr>
        </thead>
        <tbody>
          {shown.map((p) => (
            <tr key={p.id}>
              <td><a href={`#/collections/${collection.id}/people/${p.id}`}>{p.name}</a></td>
              <td>{(p.groups ?? []).join(", ")}</td>
              <td>{p.face_count}</td>
              <td>{p.consent ? `${p.consent.purpose}${p.consent.expires_at_ms ? ` until ${when(p.consent.expires_at_ms)}` : ""}` : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="card" onSubmit={add}>
        <h3>Add a person</h3>
        <label htmlFor="person-name">Name</label>
        <input id="person-name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        <label htmlFor="person-groups">Groups (comma-separated)</label>
        <input id="person-groups" value={groups} onChange={(e) => setGroups(e.target.value)} />
        <button type="submit">Add person</button>
      </form>
    </section>
  );
}

export function splitGroups(text: string): string[] {
  return text.split(",").map((g) => g.trim()).filter(Boolean);
}

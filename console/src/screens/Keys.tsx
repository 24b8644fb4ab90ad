import { useEffect, useState, type FormEvent } from "react";
import { api, ok, when, type KeyInfo, type Scope } from "../api";
import { useSession } from "../session";
import { Checks } from "../widgets";

const SCOPES: Scope[] = ["detect", "enroll", "search", "admin"];

export function Keys() {
  const { key: current } = useSession();
  const [keys, setKeys] = useState<KeyInfo[]>([]);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Scope[]>(["search"]);
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = () => api.GET("/v1/keys").then((r) => setKeys(ok(r).keys), (e: Error) => setError(e.message));
  useEffect(() => void load(), []);

  async function create(event: FormEvent) {
    event.preventDefault();
    try {
      const created = ok(await api.POST("/v1/keys", { body: { name: name.trim(), scopes } }));
      setSecret(created.secret);
      setName("");
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function revoke(id: string) {
    try {
      ok(await api.DELETE("/v1/keys/{key}", { params: { path: { key: id } } }));
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">API keys</h1>
      {error && <p role="alert" className="error">{error}</p>}
      <table>
        <thead><tr><th scope="col">Name</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          {keys.map((k) => (
            <tr key={k.id}>
              <td>{k.name}{k.id === current.id && " (this key)"}</td><td>{k.scopes.join(", ")}</td>
              <td>{when(k.created_at_ms)}</td><td>{k.revoked_at_ms ? `revoked ${when(k.revoked_at_ms)}` : "active"}</td>
              <td>
                {!k.revoked_at_ms && k.id !== current.id && (
                  <button type="button" className="danger" onClick={() => void revoke(k.id)}>Revoke {k.name}</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="card" onSubmit={create}>
        <h2>New key</h2>
        <label htmlFor="key-name">Name</label>
        <input id="key-name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        <Checks legend="Scopes" options={SCOPES} chosen={scopes} onChange={setScopes} />
        <button type="submit" disabled={!scopes.length}>Create key</button>
        {secret && <p role="status">The new key (shown once, copy it now): <code>{secret}</code></p>}
      </form>
    </section>
  );
}

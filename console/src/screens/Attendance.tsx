import { useState, type FormEvent } from "react";
import { api, authHeaders, download, ok, type Schemas } from "../api";
import { CollectionSelect, useCollectionChoice } from "../widgets";

const today = () => new Date().toISOString().slice(0, 10);

export function Attendance() {
  const [from, setFrom] = useState(today());
  const [to, setTo] = useState(today());
  const [tz, setTz] = useState(Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC");
  const [sheet, setSheet] = useState<Schemas["AttendanceResponse"] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { collections, collectionId, setCollectionId } = useCollectionChoice(setError);


  const query = () => ({ path: { collection: collectionId }, query: { from, to, tz } });

  async function show(event?: FormEvent) {
    event?.preventDefault();
    try {
      const sheet = ok(await api.GET("/v1/collections/{collection}/attendance", { params: query() }));
      if (typeof sheet === "string") throw new Error("the server answered CSV");
      setSheet(sheet);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  // The CSV comes from the same endpoint (`format=csv`), fetched with the key in its header, never in a link.
  async function exportCsv() {
    const params = new URLSearchParams({ from, to, tz, format: "csv" });
    const response = await fetch(`/v1/collections/${encodeURIComponent(collectionId)}/attendance?${params}`, {
      headers: authHeaders(),
    });
    if (!response.ok) {
      setError(`CSV export failed: HTTP ${response.status}`);
      return;
    }
    download(`attendance-${from}-${to}.csv`, await response.blob());
  }

  return (
    <section aria-labelledby="attendance-title">
      <h1 id="attendance-title">Attendance</h1>
      <form className="filters" onSubmit={show}>
        <CollectionSelect id="attendance-collection" collections={collections} value={collectionId} onChange={setCollectionId} />
        <label htmlFor="attendance-from">From</label>
        <input id="attendance-from" type="date" required value={from} onChange={(e) => setFrom(e.target.value)} />
        <label htmlFor="attendance-to">To</label>
        <input id="attendance-to" type="date" required value={to} onChange={(e) => setTo(e.target.value)} />
        <label htmlFor="attendance-tz">Time zone</label>
        <input id="attendance-tz" value={tz} onChange={(e) => setTz(e.target.value)} />
        <button type="submit" disabled={!collectionId}>Show</button>
        <button type="button" disabled={!collectionId} onClick={() => void exportCsv()}>Export CSV</button>
      </form>
      {error && <p role="alert" className="error">{error}</p>}
      {sheet && (
        <table>
          <caption className="muted">{sheet.days.length} person-days, {sheet.from} to {sheet.to} ({sheet.timezone})</caption>
          <thead>
            <tr><th scope="col">Date</th><th scope="col">Name</th><th scope="col">First in</th><th scope="col">Last out</th>
              <th scope="col">Doors</th><th scope="col">Passages</th></tr>
          </thead>
          <tbody>
            {sheet.days.map((d) => (
              <tr key={`${d.date}-${d.subject_id}`}>
                <td>{d.date}</td><td>{d.name}</td><td>{d.first_seen}</td><td>{d.last_seen}</td>
                <td>{d.doors.join(", ")}</td><td>{d.count}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

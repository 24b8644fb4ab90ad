import { useEffect, useState } from "react";
import { api, ok, when } from "../api";
import { CollectionSelect, useCollectionChoice } from "../widgets";
import { followTrail, type AuditEvent } from "../live";
/** Events kept on screen. */
const KEPT = 500;

export function Events() {
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [action, setAction] = useState("");
  const [result, setResult] = useState("");
  const [live, setLive] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const { collections, collectionId, setCollectionId } = useCollectionChoice(setError);
  const [names, setNames] = useState<Map<string, string>>(new Map());


  // Names of the collection's people and the tenant's doors, to show instead of their ids.
  useEffect(() => {
    if (!collectionId) return;
    let current = true; // an answer for a collection no longer chosen is dropped
    Promise.all([
      api.GET("/v1/collections/{collection}/subjects", { params: { path: { collection: collectionId } } }),
      api.GET("/v1/doors"),
    ]).then(([people, doors]) => {
      if (!current) return;
      const known = new Map<string, string>();
      ok(people).subjects.forEach((s) => known.set(s.id, s.name));
      ok(doors).doors.forEach((d) => known.set(d.id, d.name));
      setNames(known);
    }, () => current && setNames(new Map()));
    return () => { current = false; };
  }, [collectionId, events.length > 0]);

  // The trail from the start, then each new event as the server stores it (its event stream); where
  // the stream cannot be had (a host that does not stream answers), every two seconds what came after the
  // last event seen. Unticking Live stops following.
  useEffect(() => {
    if (!collectionId) return;
    setEvents([]);
    let after: number | undefined;
    const stop = new AbortController();
    const add = (more: AuditEvent[]) => {
      if (!more.length) return;
      after = more[more.length - 1].seq;
      setEvents((old) => [...old, ...more].slice(-KEPT));
    };
    const poll = async () => {
      while (!stop.signal.aborted) {
        try {
          const page = ok(await api.GET("/v1/collections/{collection}/events", {
            params: { path: { collection: collectionId }, query: { after, limit: 200 } },
          }));
          if (stop.signal.aborted) return;
          add(page.events);
          if (page.events.length) continue;
          setError(null);
        } catch (e) {
          setError((e as Error).message);
        }
        if (!live) return;
        await new Promise((r) => setTimeout(r, 2000));
      }
    };
    if (!live) void poll();
    else {
      // Events arrive one by one: shown in batches, at most a few times a second.
      let batch: AuditEvent[] = [];
      const flush = setInterval(() => { add(batch); batch = []; }, 250);
      const fallBack = () => {
        clearInterval(flush);
        add(batch);
        batch = [];
        if (!stop.signal.aborted) void poll();
      };
      followTrail(collectionId, after, (e) => batch.push(e), stop.signal).then(fallBack, fallBack);
    }
    return () => stop.abort();
  }, [collectionId, live]);

  const actions = [...new Set(events.map((e) => e.action))].sort();
  const results = [...new Set(events.map((e) => e.result))].sort();
  const shown = events.filter((e) => (!action || e.action === action) && (!result || e.result === result)).reverse();
  return (
    <section aria-labelledby="events-title">
      <h1 id="events-title">Events</h1>
      <div className="filters">
        <CollectionSelect id="events-collection" collections={collections} value={collectionId} onChange={setCollectionId} />
        <label htmlFor="events-action">Action</label>
        <select id="events-action" value={action} onChange={(e) => setAction(e.target.value)}>
          <option value="">All</option>
          {actions.map((a) => <option key={a}>{a}</option>)}
        </select>
        <label htmlFor="events-result">Result</label>
        <select id="events-result" value={result} onChange={(e) => setResult(e.target.value)}>
          <option value="">All</option>
          {results.map((a) => <option key={a}>{a}</option>)}
        </select>
        <label className="check">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.target.checked)} /> Live
        </label>
      </div>
      {error && <p role="alert" className="error">{error}</p>}
      <table>
        <caption className="muted">{shown.length} events, newest first</caption>
        <thead>
          <tr><th scope="col">When</th><th scope="col">Action</th><th scope="col">Result</th><th scope="col">Reason</th>
            <th scope="col">Subject</th><th scope="col">Score</th><th scope="col">Liveness</th><th scope="col">Door</th></tr>
        </thead>
        <tbody>
          {shown.map((e) => (
            <tr key={e.seq} data-action={e.action} data-result={e.result}>
              <td>{when(e.at_ms)}</td><td>{e.action}</td><td>{e.result}</td><td>{e.reason ?? ""}</td>
              <td>{e.subject_id ? names.get(e.subject_id) ?? e.subject_id : ""}</td><td>{e.score?.toFixed(3) ?? ""}</td><td>{e.liveness?.toFixed(2) ?? ""}</td>
              <td>{e.door_id ? names.get(e.door_id) ?? e.door_id : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

import { useEffect, useState, type FormEvent } from "react";
import { api, ok, type Collection, type Door, type DoorPolicy, type Schemas, type Subject } from "../api";
import { can, go, useSession } from "../session";
import { splitGroups } from "./Collections";
import { Checks } from "../widgets";

type Weekday = Schemas["Weekday"];
const WEEKDAYS: Weekday[] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

export function Doors({ selected }: { selected?: string }) {
  // Door policy is administration; a kiosk's key (`search`) lists the doors and opens their door view.
  const administers = can(useSession().key, "admin");
  const [doors, setDoors] = useState<Door[]>([]);
  const [collections, setCollections] = useState<Collection[]>([]);
  const [error, setError] = useState<string | null>(null);
  const load = async () => {
    try {
      setDoors(ok(await api.GET("/v1/doors")).doors);
      setCollections(ok(await api.GET("/v1/collections")).collections);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => void load(), []);
  const door = doors.find((d) => d.id === selected);
  const collectionName = (id: string) => collections.find((c) => c.id === id)?.name ?? id;
  return (
    <div className="split">
      <section aria-labelledby="doors-title">
        <h1 id="doors-title">Doors</h1>
        {error && <p role="alert" className="error">{error}</p>}
        <ul className="list">
          {doors.map((d) => (
            <li key={d.id}>
              <a href={`#/doors/${d.id}`} aria-current={d.id === selected ? "true" : undefined}>{d.name}</a>{" "}
              <span className="muted">{collectionName(d.collection_id)}</span>{" "}
              <a className="button" href={`#/doors/${d.id}/kiosk`}>Open the door view</a>
            </li>
          ))}
        </ul>
        {administers && door && <p><a href="#/doors">New door…</a></p>}
        {administers && !door && (
          <DoorForm key="new" collections={collections} onSaved={async (id) => { await load(); go("doors", id); }} />
        )}
      </section>
      {administers && door && (
        <div className="stack">
          <DoorForm key={door.id} door={door} collections={collections} doors={doors}
            onSaved={load} onDeleted={async () => { await load(); go("doors"); }} />
          <ReaderForm key={`reader-${door.id}`} door={door} />
        </div>
      )}
    </div>
  );
}

function DoorForm({ door, collections, doors = [], onSaved, onDeleted }: {
  door?: Door; collections: Collection[]; doors?: Door[];
  onSaved: (id: string) => void | Promise<void>; onDeleted?: () => void | Promise<void>;
}) {
  const policy = door?.policy;
  const [name, setName] = useState(door?.name ?? "");
  const [collectionId, setCollectionId] = useState(door?.collection_id ?? "");
  const [everyone, setEveryone] = useState(policy?.allow_everyone ?? true);
  const [allowed, setAllowed] = useState<string[]>(policy?.allowed_subjects ?? []);
  const [groups, setGroups] = useState((policy?.allowed_groups ?? []).join(", "));
  const [timezone, setTimezone] = useState(policy?.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC");
  const [days, setDays] = useState<Weekday[]>(policy?.schedule?.[0]?.days ?? []);
  const [from, setFrom] = useState(policy?.schedule?.[0]?.from ?? "07:00");
  const [to, setTo] = useState(policy?.schedule?.[0]?.to ?? "19:00");
  const [liveness, setLiveness] = useState(policy?.liveness_required ?? true);
  const [direction, setDirection] = useState<"" | Schemas["Direction"]>(policy?.anti_passback?.direction ?? "");
  const [paired, setPaired] = useState(policy?.anti_passback?.paired_door ?? "");
  const [people, setPeople] = useState<Subject[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const chosen = collectionId || collections[0]?.id || "";

  useEffect(() => {
    if (!chosen) return;
    api.GET("/v1/collections/{collection}/subjects", { params: { path: { collection: chosen } } })
      .then((r) => setPeople(ok(r).subjects), () => setPeople([]));
  }, [chosen]);

  async function save(event: FormEvent) {
    event.preventDefault();
    const body: Schemas["DoorBody"] = {
      name: name.trim(),
      collection_id: chosen,
      policy: {
        allow_everyone: everyone,
        allowed_subjects: everyone ? [] : allowed,
        allowed_groups: everyone ? [] : splitGroups(groups),
        timezone,
        schedule: days.length ? [{ days, from, to }] : [],
        liveness_required: liveness,
        anti_passback: direction && paired ? { direction, paired_door: paired } : null,
      } as DoorPolicy,
    };
    try {
      const saved = door
        ? ok(await api.PUT("/v1/doors/{door}", { params: { path: { door: door.id } }, body }))
        : ok(await api.POST("/v1/doors", { body }));
      setMessage("Saved.");
      await onSaved(saved.id);
    } catch (e) {
      setMessage((e as Error).message);
    }
  }

  async function remove() {
    if (!door) return;
    try {
      ok(await api.DELETE("/v1/doors/{door}", { params: { path: { door: door.id } } }));
      await onDeleted?.();
    } catch (e) {
      setMessage((e as Error).message);
    }
  }

  return (
    <form className="card grid" onSubmit={save} aria-labelledby="door-form-title">
      <h2 id="door-form-title">{door ? `Policy of ${door.name}` : "New door"}</h2>
      <label htmlFor="door-name">Name</label>
      <input id="door-name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      <label htmlFor="door-collection">People from the collection</label>
      <select id="door-collection" value={chosen} onChange={(e) => setCollectionId(e.target.value)} disabled={!!door}>
        {collections.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
      </select>
      <fieldset>
        <legend>Who</legend>
        <label className="check">
          <input type="checkbox" checked={everyone} onChange={(e) => setEveryone(e.target.checked)} />
          Everyone enrolled in the collection
        </label>
        {!everyone && (
          <>
            <label htmlFor="door-groups">Groups (comma-separated)</label>
            <input id="door-groups" value={groups} onChange={(e) => setGroups(e.target.value)} />
            <p id="door-people-label">People</p>
            <ul className="checks" aria-labelledby="door-people-label">
              {people.map((p) => (
                <li key={p.id}>
                  <label className="check">
                    <input type="checkbox" checked={allowed.includes(p.id)}
                      onChange={(e) => setAllowed(e.target.checked ? [...allowed, p.id] : allowed.filter((a) => a !== p.id))} />
                    {p.name}
                  </label>
                </li>
              ))}
            </ul>
          </>
        )}
      </fieldset>
      <fieldset>
        <legend>When</legend>
        <Checks legend="Days (none chosen: open at any time)" options={WEEKDAYS} chosen={days} onChange={setDays} inline />
        <label htmlFor="door-from">From</label>
        <input id="door-from" type="time" value={from} onChange={(e) => setFrom(e.target.value)} />
        <label htmlFor="door-to">To</label>
        <input id="door-to" type="time" value={to} onChange={(e) => setTo(e.target.value)} />
        <label htmlFor="door-tz">Time zone</label>
        <input id="door-tz" value={timezone} onChange={(e) => setTimezone(e.target.value)} />
      </fieldset>
      <fieldset>
        <legend>Checks</legend>
        <label className="check">
          <input type="checkbox" checked={liveness} onChange={(e) => setLiveness(e.target.checked)} />
          Require liveness (refuse photos and screens)
        </label>
        <label htmlFor="door-direction">Anti-passback</label>
        <select id="door-direction" value={direction} onChange={(e) => setDirection(e.target.value as typeof direction)}>
          <option value="">Off</option>
          <option value="entry">This door is the entry</option>
          <option value="exit">This door is the exit</option>
        </select>
        {direction && (
          <>
            <label htmlFor="door-paired">Paired door</label>
            <select id="door-paired" value={paired} onChange={(e) => setPaired(e.target.value)}>
              <option value="">Choose…</option>
              {doors.filter((d) => d.id !== door?.id).map((d) => <option key={d.id} value={d.id}>{d.name}</option>)}
            </select>
          </>
        )}
      </fieldset>
      <button type="submit">{door ? "Save policy" : "Create door"}</button>
      {door && <button type="button" className="danger" onClick={() => void remove()}>Delete door</button>}
      {message && <p role="status">{message}</p>}
    </form>
  );
}

type ReaderState = Schemas["ReaderState"];

/** The door's OSDP output: facegate as a card reader on the access panel, which has the last word. */
function ReaderForm({ door }: { door: Door }) {
  const [state, setState] = useState<ReaderState | null>(null);
  const [transport, setTransport] = useState<Schemas["ReaderTransport"]>("tcp");
  const [target, setTarget] = useState("");
  const [address, setAddress] = useState(0);
  const [baud, setBaud] = useState(115200);
  const [system, setSystem] = useState("default");
  const [installMode, setInstallMode] = useState(false);
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const path = { door: door.id };

  const fill = (next: ReaderState) => {
    const s = next.reader.settings;
    setTransport(s.transport); setTarget(s.target); setAddress(s.address); setBaud(s.baud_rate ?? 115200);
    setSystem(s.credential_system ?? "default"); setInstallMode(s.install_mode ?? false);
  };
  const refresh = async (first: boolean) => {
    const r = await api.GET("/v1/doors/{door}/reader", { params: { path } });
    if (r.response.status === 404) return setState(null);
    const next = ok(r);
    setState(next);
    if (first) fill(next);
  };
  useEffect(() => {
    refresh(true).catch((e: Error) => setError(e.message));
    const timer = setInterval(() => refresh(false).catch((e: Error) => setError(e.message)), 2000);
    return () => clearInterval(timer);
  }, [door.id]);

  async function save(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const settings = { transport, target: target.trim(), address, baud_rate: baud, credential_system: system.trim(), install_mode: installMode };
      const next = ok(await api.PUT("/v1/doors/{door}/reader", { params: { path }, body: { settings, key: key.trim() || undefined } }));
      setKey("");
      setState(next);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function remove() {
    try {
      ok(await api.DELETE("/v1/doors/{door}/reader", { params: { path } }));
      setState(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  const link = state?.link;
  return (
    <form className="card grid" onSubmit={save} aria-labelledby="reader-title">
      <h2 id="reader-title">Access panel (OSDP reader) of {door.name}</h2>
      <p className="muted">When facegate would let someone in, it shows the panel their card; the panel decides.</p>
      {error && <p role="alert" className="error">{error}</p>}
      {link && (
        <p role="status" data-online={link.online && link.secure_channel}>
          {link.online ? "Panel polling" : link.connected ? "Connected, panel not polling" : "Not connected"}
          {link.secure_channel ? ", Secure Channel up" : ", no Secure Channel"}
          {link.last_poll_at_ms ? `; last poll ${new Date(link.last_poll_at_ms).toLocaleTimeString()}` : ""}
          {link.last_verdict ? `; last verdict: ${link.last_verdict}` : ""}
          {link.last_text ? `; panel's text: "${link.last_text}"` : ""}
          {link.last_buzzer_at_ms ? `; last beep ${new Date(link.last_buzzer_at_ms).toLocaleTimeString()}` : ""}
          {link.key_set_at_ms ? `; the panel set its key ${new Date(link.key_set_at_ms).toLocaleTimeString()}` : ""}
          {link.last_error ? ` (${link.last_error})` : ""}
        </p>
      )}
      <label htmlFor="reader-transport">Transport</label>
      <select id="reader-transport" value={transport} onChange={(e) => setTransport(e.target.value as Schemas["ReaderTransport"])}>
        <option value="tcp">TCP (host:port)</option>
        <option value="serial">Serial line (RS-485)</option>
      </select>
      <label htmlFor="reader-target">{transport === "tcp" ? "Panel address (host:port)" : "Serial port"}</label>
      <input id="reader-target" required value={target} onChange={(e) => setTarget(e.target.value)} />
      <label htmlFor="reader-address">OSDP address</label>
      <input id="reader-address" type="number" min={0} max={126} value={address} onChange={(e) => setAddress(Number(e.target.value))} />
      <label htmlFor="reader-baud">Baud rate</label>
      <select id="reader-baud" value={baud} onChange={(e) => setBaud(Number(e.target.value))}>
        {[9600, 19200, 38400, 57600, 115200, 230400].map((b) => <option key={b} value={b}>{b}</option>)}
      </select>
      <label htmlFor="reader-system">Card system</label>
      <input id="reader-system" value={system} onChange={(e) => setSystem(e.target.value)} />
      <label htmlFor="reader-key">Secure Channel key (32 hex digits){state ? " (stored; leave empty to keep it)" : ""}</label>
      <input id="reader-key" type="password" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} />
      <label className="check"><input type="checkbox" checked={installMode} onChange={(e) => setInstallMode(e.target.checked)} /> Install mode (accept the default key once)</label>
      <button type="submit">Save the reader</button>
      {state && <button type="button" className="danger" onClick={() => void remove()}>Remove the reader</button>}
    </form>
  );
}

import { useEffect, useRef, useState, type FormEvent } from "react";
import { api, asIs, describe, download, imagesForm, ok, when, type Schemas, type Subject } from "../api";
import { useCamera } from "../camera";
import { go } from "../session";
import { splitGroups } from "./Collections";

type Enrolment = Schemas["EnrollResponse"];
type Check = Schemas["EnrolmentCheck"];

export function Person({ collectionId, subjectId }: { collectionId: string; subjectId: string }) {
  const path = { collection: collectionId, subject: subjectId };
  const [subject, setSubject] = useState<Subject | null>(null);
  const [people, setPeople] = useState<Subject[]>([]);
  const [faces, setFaces] = useState<Schemas["FaceRecord"][]>([]);
  const [enrolment, setEnrolment] = useState<Enrolment | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [receipt, setReceipt] = useState<Schemas["Receipt"] | null>(null);

  const load = async () => {
    try {
      setSubject(ok(await api.GET("/v1/collections/{collection}/subjects/{subject}", { params: { path } })));
      setFaces(ok(await api.GET("/v1/collections/{collection}/subjects/{subject}/faces", { params: { path } })).faces);
      const all = await api.GET("/v1/collections/{collection}/subjects", { params: { path: { collection: collectionId } } });
      setPeople(ok(all).subjects);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => void load(), [collectionId, subjectId]);

  async function enrol(images: Blob[]) {
    setError(null);
    const result = await api.POST("/v1/collections/{collection}/subjects/{subject}/faces", {
      params: { path, query: { crops: true } },
      body: asIs(imagesForm(images)) as never,
      bodySerializer: (body: unknown) => body as FormData,
    });
    if (result.data) {
      const fresh = result.data;
      setEnrolment((old) => ({ accepted: [...(old?.accepted ?? []), ...fresh.accepted], rejected: fresh.rejected }));
      await load();
    } else {
      const details = (result.error as { error?: { details?: { rejected?: Schemas["RejectedImage"][] } } }).error?.details;
      setEnrolment({ accepted: [], rejected: details?.rejected ?? [] });
      if (!details?.rejected) setError(describe(result.error));
    }
  }

  if (receipt) {
    return (
      <section aria-labelledby="erased-title">
        <h1 id="erased-title">Erased</h1>
        <p>
          {receipt.erasure.templates_erased} templates of {receipt.erasure.subject_ids.length} person erased at{" "}
          {when(receipt.erasure.erased_at_ms)}. Receipt SHA-256: <code>{receipt.receipt_sha256}</code>
        </p>
        <button type="button" onClick={() => download(`erasure-${subjectId}.json`,
          new Blob([JSON.stringify(receipt, null, 2)], { type: "application/json" }))}>
          Download the erasure receipt
        </button>{" "}
        <a href={`#/collections/${collectionId}`}>Back to the collection</a>
      </section>
    );
  }
  if (!subject) return <p role={error ? "alert" : "status"}>{error ?? "Loading…"}</p>;
  const nameOf = (id: string) => people.find((p) => p.id === id)?.name ?? id;
  return (
    <div className="stack">
      <p><a href={`#/collections/${collectionId}`}>← People</a></p>
      <h1>{subject.name}</h1>
      {error && <p role="alert" className="error">{error}</p>}
      <Details subject={subject} path={path} onSaved={load} />
      <Cards path={path} />
      <section aria-labelledby="faces-title">
        <h2 id="faces-title">Enrolled faces ({faces.length})</h2>
        <table>
          <thead><tr><th scope="col">Enrolled</th><th scope="col">Face size</th><th scope="col">Detection</th><th scope="col">Sharpness</th><th scope="col">Model</th></tr></thead>
          <tbody>
            {faces.map((f) => (
              <tr key={f.id}>
                <td>{when(f.created_at_ms)}</td><td>{f.face_size.toFixed(0)} px</td>
                <td>{f.detection_score.toFixed(2)}</td><td>{f.sharpness.toFixed(0)}</td><td>{f.pack.pack}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="enrol-title" className="card">
        <h2 id="enrol-title">Enrol</h2>
        <Upload onImages={enrol} />
        <Webcam onPhoto={(photo) => enrol([photo])} />
        {enrolment && <EnrolmentResult enrolment={enrolment} nameOf={nameOf} />}
      </section>
      <Erase name={subject.name} onErase={async () => {
        setReceipt(ok(await api.DELETE("/v1/collections/{collection}/subjects/{subject}", { params: { path } })));
      }} />
    </div>
  );
}

function Details({ subject, path, onSaved }: {
  subject: Subject; path: { collection: string; subject: string }; onSaved: () => void;
}) {
  const [name, setName] = useState(subject.name);
  const [groups, setGroups] = useState((subject.groups ?? []).join(", "));
  const [purpose, setPurpose] = useState(subject.consent?.purpose ?? "");
  const [given, setGiven] = useState(day(subject.consent?.given_at_ms));
  const [expires, setExpires] = useState(day(subject.consent?.expires_at_ms));
  const [message, setMessage] = useState<string | null>(null);

  async function save(event: FormEvent) {
    event.preventDefault();
    const consent = purpose.trim()
      ? { purpose: purpose.trim(), given_at_ms: given ? Date.parse(given) : Date.now(), expires_at_ms: expires ? Date.parse(expires) : null }
      : undefined;
    try {
      ok(await api.PATCH("/v1/collections/{collection}/subjects/{subject}", {
        params: { path }, body: { name: name.trim(), groups: splitGroups(groups), consent },
      }));
      setMessage("Saved.");
      onSaved();
    } catch (e) {
      setMessage((e as Error).message);
    }
  }
  return (
    <form className="card grid" onSubmit={save} aria-labelledby="details-title">
      <h2 id="details-title">Details</h2>
      <label htmlFor="subject-name">Name</label>
      <input id="subject-name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      <label htmlFor="subject-groups">Groups (comma-separated)</label>
      <input id="subject-groups" value={groups} onChange={(e) => setGroups(e.target.value)} />
      <fieldset>
        <legend>Consent</legend>
        <label htmlFor="consent-purpose">Purpose</label>
        <input id="consent-purpose" value={purpose} onChange={(e) => setPurpose(e.target.value)} />
        <label htmlFor="consent-given">Given on</label>
        <input id="consent-given" type="date" value={given} onChange={(e) => setGiven(e.target.value)} />
        <label htmlFor="consent-expires">Expires on (the person is erased then)</label>
        <input id="consent-expires" type="date" value={expires} onChange={(e) => setExpires(e.target.value)} />
      </fieldset>
      <button type="submit">Save details</button>
      {message && <p role="status">{message}</p>}
    </form>
  );
}

const day = (ms: number | null | undefined) => (ms == null ? "" : new Date(ms).toISOString().slice(0, 10));

function Upload({ onImages }: { onImages: (images: Blob[]) => Promise<void> }) {
  const [over, setOver] = useState(false);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  async function send(files: FileList | null) {
    if (!files?.length) return;
    setBusy(true);
    try {
      await onImages(Array.from(files));
    } finally {
      setBusy(false);
      if (input.current) input.current.value = "";
    }
  }
  return (
    <div
      className={over ? "drop over" : "drop"}
      onDragOver={(e) => { e.preventDefault(); setOver(true); }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => { e.preventDefault(); setOver(false); void send(e.dataTransfer.files); }}
    >
      <label htmlFor="photos">Drop photos here, or choose files (one face each, up to 10)</label>
      <input ref={input} id="photos" type="file" accept="image/jpeg,image/png,image/webp,image/bmp" multiple
        disabled={busy} onChange={(e) => void send(e.target.files)} />
    </div>
  );
}

/** The webcam with the enrolment gate's verdict on the current frame, refreshed before the photo is sent. */
function Webcam({ onPhoto }: { onPhoto: (photo: Blob) => Promise<void> }) {
  const [on, setOn] = useState(false);
  const camera = useCamera(on);
  const [check, setCheck] = useState<Check | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!on || !camera.ready) return;
    let stopped = false;
    const tick = async () => {
      while (!stopped) {
        try {
          const frame = await camera.capture();
          const r = await api.POST("/v1/detect", {
            params: { query: { quality: true } },
            body: asIs(frame) as never,
            bodySerializer: (body: unknown) => body as Blob,
            headers: { "content-type": "image/jpeg" },
          });
          if (!stopped) setCheck(r.data?.enrolment ?? null);
        } catch {
          // the next frame tries again
        }
        await new Promise((r) => setTimeout(r, 600));
      }
    };
    void tick();
    return () => { stopped = true; };
  }, [on, camera.ready]);

  async function take() {
    setBusy(true);
    try {
      await onPhoto(await camera.capture());
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="webcam">
      <button type="button" onClick={() => setOn(!on)}>{on ? "Stop the camera" : "Use the camera"}</button>
      {on && (
        <>
          <video ref={camera.video} muted playsInline aria-label="Camera preview" />
          {camera.error && <p role="alert" className="error">{camera.error}</p>}
          <p role="status" className={check?.enrollable ? "good" : "warn"}>
            {!check ? "Looking for a face…" : check.enrollable ? "Good photo: one sharp face, large enough." : check.message}
          </p>
          <button type="button" disabled={busy || !check?.enrollable} onClick={() => void take()}>Take photo and enrol</button>
        </>
      )}
    </div>
  );
}

function EnrolmentResult({ enrolment, nameOf }: { enrolment: Enrolment; nameOf: (id: string) => string }) {
  return (
    <div aria-live="polite" className="result">
      <h3>Enrolled on this visit</h3>
      <ul className="crops">
        {enrolment.accepted.map((face, n) => (
          <li key={face.face_id}>
            {face.aligned_crop && (
              <img src={`data:image/jpeg;base64,${face.aligned_crop}`} width={112} height={112}
                alt={`Aligned face ${n + 1}, as enrolled`} />
            )}
            <p>Enrolled · detection {face.detection_score.toFixed(2)} · sharpness {face.sharpness.toFixed(0)}</p>
            {face.confusable_with.length > 0 && (
              <p className="warn">
                Looks like {face.confusable_with.map((c) => `${nameOf(c.subject_id)} (${c.score.toFixed(2)})`).join(", ")}:
                the same person enrolled twice, or people this collection cannot tell apart.
              </p>
            )}
          </li>
        ))}
      </ul>
      {enrolment.rejected.map((r) => (
        <p key={r.image_index} className="warn">Photo {r.image_index + 1} refused ({r.reason}): {r.message}</p>
      ))}
    </div>
  );
}

function Erase({ name, onErase }: { name: string; onErase: () => Promise<void> }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <section aria-labelledby="erase-title" className="card danger">
      <h2 id="erase-title">Erase</h2>
      <p>Erasing deletes {name}'s templates and record for good and gives a receipt.</p>
      {!confirming ? (
        <button type="button" onClick={() => setConfirming(true)}>Erase {name}…</button>
      ) : (
        <div role="group" aria-label="Confirm the erasure">
          <p><strong>Erase {name}? This cannot be undone.</strong></p>
          <button type="button" className="danger" onClick={() => onErase().catch((e: Error) => setError(e.message))}>
            Yes, erase {name}
          </button>{" "}
          <button type="button" onClick={() => setConfirming(false)}>Cancel</button>
        </div>
      )}
      {error && <p role="alert" className="error">{error}</p>}
      <p className="muted"><a href="#/collections" onClick={() => go("collections")}>All collections</a></p>
    </section>
  );
}

type Card = Schemas["CardCredential"];

/** The cards the person carries, one per door system: what a door's panel is shown when facegate lets them in. */
function Cards({ path }: { path: { collection: string; subject: string } }) {
  const [cards, setCards] = useState<Card[]>([]);
  const [format, setFormat] = useState<Schemas["CardFormat"]>("wiegand26");
  const [facility, setFacility] = useState("");
  const [number, setNumber] = useState("");
  const [system, setSystem] = useState("default");
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.GET("/v1/collections/{collection}/subjects/{subject}/credentials", { params: { path } })
      .then((r) => setCards(ok(r).credentials), (e: Error) => setError(e.message));
  }, [path.subject]);

  async function store(next: Card[]) {
    setError(null);
    try {
      setCards(ok(await api.PUT("/v1/collections/{collection}/subjects/{subject}/credentials", { params: { path }, body: { credentials: next } })).credentials);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function add(event: FormEvent) {
    event.preventDefault();
    const card: Card = { system: system.trim() || "default", format, facility_code: Number(facility || 0), card_number: Number(number) };
    await store([...cards.filter((c) => c.system !== card.system), card]);
    setNumber("");
  }

  return (
    <form className="card grid" onSubmit={add} aria-labelledby="cards-title">
      <h2 id="cards-title">Cards for door panels</h2>
      {error && <p role="alert" className="error">{error}</p>}
      <table>
        <thead><tr><th scope="col">System</th><th scope="col">Format</th><th scope="col">Facility</th><th scope="col">Card</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          {cards.map((c) => (
            <tr key={c.system}>
              <td>{c.system}</td><td>{c.format}</td><td>{c.facility_code}</td><td>{c.card_number}</td>
              <td><button type="button" className="danger" onClick={() => void store(cards.filter((x) => x.system !== c.system))}>Remove card {c.card_number}</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <label htmlFor="card-system">Card system</label>
      <input id="card-system" value={system} onChange={(e) => setSystem(e.target.value)} />
      <label htmlFor="card-format">Card format</label>
      <select id="card-format" value={format} onChange={(e) => setFormat(e.target.value as Schemas["CardFormat"])}>
        <option value="wiegand26">Wiegand 26-bit</option>
        <option value="wiegand34">Wiegand 34-bit</option>
        <option value="raw">Raw number</option>
      </select>
      <label htmlFor="card-facility">Facility code</label>
      <input id="card-facility" inputMode="numeric" value={facility} onChange={(e) => setFacility(e.target.value)} />
      <label htmlFor="card-number">Card number</label>
      <input id="card-number" inputMode="numeric" required value={number} onChange={(e) => setNumber(e.target.value)} />
      <button type="submit">Add the card</button>
    </form>
  );
}

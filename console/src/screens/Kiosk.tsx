import { useEffect, useRef, useState } from "react";
import { api, asIs, describe, imagesForm, ok, type Door, type Schemas } from "../api";
import { sleep, useCamera } from "../camera";
import { useSession } from "../session";

type Decision = Schemas["DoorAttemptResponse"];

/** Words for each denial reason, as a door's screen says them. */
const REASONS: Record<Schemas["DoorReason"], string> = {
  no_face: "no face",
  multiple_faces: "one person at a time",
  low_quality: "face the camera",
  not_live: "not a live person",
  unknown_person: "unknown person",
  not_allowed: "not allowed at this door",
  outside_schedule: "outside opening hours",
  anti_passback: "already inside",
  no_credential: "no card for this door's panel",
  panel_granted: "the panel granted",
  panel_denied: "the door's panel refused",
  panel_offline: "the door's panel does not answer",
};

/** Frames of one attempt, and the pause between them. */
const BURST = 3;
const BURST_GAP_MS = 150;
/** A face is steady when its centre moved less than this share of the frame between two looks. */
const STEADY_SHIFT = 0.05;
/** Looks in a row with a steady face before an automatic attempt. */
const STEADY_LOOKS = 2;
/** How long a decision stays on screen. */
const SHOW_MS = 4000;

export function Kiosk({ doorId }: { doorId: string }) {
  const { signOut } = useSession();
  const [door, setDoor] = useState<Door | null>(null);
  const [auto, setAuto] = useState(true);
  const [decision, setDecision] = useState<Decision | null>(null);
  const [status, setStatus] = useState("Starting the camera…");
  const [error, setError] = useState<string | null>(null);
  const camera = useCamera(true);
  const busy = useRef(false);

  useEffect(() => {
    api.GET("/v1/doors/{door}", { params: { path: { door: doorId } } })
      .then((r) => setDoor(ok(r)), (e: Error) => setError(e.message));
  }, [doorId]);

  async function attempt() {
    if (busy.current) return;
    busy.current = true;
    setStatus("Checking…");
    try {
      const frames: Blob[] = [];
      for (let i = 0; i < BURST; i++) {
        if (i) await sleep(BURST_GAP_MS);
        frames.push(await camera.capture());
      }
      const r = await api.POST("/v1/doors/{door}/attempts", {
        params: { path: { door: doorId } },
        body: asIs(imagesForm(frames)) as never,
        bodySerializer: (body: unknown) => body as FormData,
      });
      if (!r.data) throw new Error(describe(r.error));
      setDecision(r.data);
      setError(null);
      await sleep(SHOW_MS);
      setDecision(null);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setStatus("Look at the camera");
      busy.current = false;
    }
  }

  // Automatic attempts: look for a face twice a second; a face that stays put starts an attempt.
  useEffect(() => {
    if (!auto || !camera.ready) return;
    setStatus("Look at the camera");
    let stopped = false;
    let last: { x: number; y: number } | null = null;
    let steady = 0;
    (async () => {
      while (!stopped) {
        await sleep(500);
        if (busy.current || stopped) continue;
        try {
          const r = await api.POST("/v1/detect", {
            body: asIs(await camera.capture()) as never,
            bodySerializer: (body: unknown) => body as Blob,
            headers: { "content-type": "image/jpeg" },
          });
          if (r.response.status === 403) {
            // Looking for a face takes the `detect` scope; without it the button still works.
            setAuto(false);
            setError("Automatic attempts need a key with the detect scope; use the button.");
            return;
          }
          const face = r.data?.faces[0];
          if (!face) {
            last = null;
            steady = 0;
            continue;
          }
          const b = face.bbox_normalized;
          const centre = { x: b.x + b.width / 2, y: b.y + b.height / 2 };
          const still = last && Math.hypot(centre.x - last.x, centre.y - last.y) < STEADY_SHIFT;
          steady = still ? steady + 1 : 0;
          last = centre;
          if (steady >= STEADY_LOOKS) {
            steady = 0;
            await attempt();
          }
        } catch {
          // the next look tries again
        }
      }
    })();
    return () => { stopped = true; };
  }, [auto, camera.ready]);

  const granted = decision?.access === "granted";
  return (
    <main id="main" className={`kiosk ${decision ? (granted ? "granted" : "denied") : ""}`}>
      <header className="kiosk-bar">
        <h1>{door?.name ?? "Door"}</h1>
        <label className="check">
          <input type="checkbox" checked={auto} onChange={(e) => setAuto(e.target.checked)} />
          Automatic when a face is steady
        </label>
        <a href={`#/doors/${doorId}`}>Leave the door view</a>
        <button type="button" onClick={signOut}>Sign out</button>
      </header>
      <div className="kiosk-body">
        <video ref={camera.video} muted playsInline aria-label="Door camera" />
        <div className="verdict" role="status" aria-live="assertive" aria-atomic="true">
          {decision ? (
            <>
              <p className="access">{granted ? "Granted" : "Denied"}</p>
              <p className="because">
                {granted ? `Welcome, ${decision.subject?.name ?? ""}` : REASONS[decision.reason ?? "unknown_person"]}
              </p>
              {decision.panel_text && <p className="panel-text" aria-label="The panel says">{decision.panel_text}</p>}
              {decision.panel && <p className="muted">Panel: {decision.panel}{decision.panel_ms != null ? ` in ${decision.panel_ms} ms` : ""}</p>}
            </>
          ) : (
            <p className="because">{camera.error ?? status}</p>
          )}
        </div>
        <button type="button" className="big" disabled={!camera.ready} onClick={() => void attempt()}>
          Check me in
        </button>
        {error && <p role="alert" className="error">{error}</p>}
      </div>
    </main>
  );
}

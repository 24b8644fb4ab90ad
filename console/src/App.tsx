import { useEffect, useState } from "react";
import { api, ok, storeKey, storedKey, type KeyInfo } from "./api";
import { SessionContext, can, go, useRoute } from "./session";
import { SignIn } from "./screens/SignIn";
import { Collections } from "./screens/Collections";
import { Person } from "./screens/Person";
import { Doors } from "./screens/Doors";
import { Kiosk } from "./screens/Kiosk";
import { Events } from "./screens/Events";
import { Webhooks } from "./screens/Webhooks";
import { Integrations } from "./screens/Integrations";
import { Attendance } from "./screens/Attendance";
import { Sightings } from "./screens/Sightings";
import { Cameras } from "./screens/Cameras";
import { Keys } from "./screens/Keys";
import { Models } from "./screens/Models";

const SCREENS = [
  { path: "collections", label: "People", scope: "enroll" },
  { path: "doors", label: "Doors", scope: "search" },
  { path: "events", label: "Events", scope: "admin" },
  { path: "webhooks", label: "Webhooks", scope: "admin" },
  { path: "integrations", label: "Integrations", scope: "admin" },
  { path: "attendance", label: "Attendance", scope: "admin" },
  { path: "cameras", label: "Cameras", scope: "admin" },
  { path: "sightings", label: "Sightings", scope: "admin" },
  { path: "keys", label: "Keys", scope: "admin" },
  { path: "models", label: "Models", scope: null },
] as const;

export function App() {
  const [key, setKey] = useState<KeyInfo | null>(null);
  const [checking, setChecking] = useState(storedKey() !== null);
  const route = useRoute();

  useEffect(() => {
    if (!storedKey()) return;
    api.GET("/v1/keys/current").then((r) => {
      if (r.data) setKey(r.data);
      else storeKey(null);
      setChecking(false);
    }, () => setChecking(false));
  }, []);

  if (checking) return <main className="centre"><p role="status">Checking your key…</p></main>;
  if (!key) {
    return (
      <SignIn
        onSignedIn={async (secret, gatewayKey) => {
          storeKey(secret, gatewayKey);
          try {
            setKey(ok(await api.GET("/v1/keys/current")));
            if (!window.location.hash) go("collections");
          } catch (e) {
            storeKey(null);
            throw e;
          }
        }}
      />
    );
  }
  const signOut = () => {
    storeKey(null);
    setKey(null);
  };
  const [screen = "collections", ...rest] = route;
  if (screen === "doors" && rest[1] === "kiosk" && rest[0]) {
    return <SessionContext.Provider value={{ key, signOut }}><Kiosk doorId={rest[0]} /></SessionContext.Provider>;
  }
  return (
    <SessionContext.Provider value={{ key, signOut }}>
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header className="bar">
        <strong className="brand">facegate</strong>
        <nav aria-label="Screens">
          <ul>
            {SCREENS.filter((s) => s.scope === null || can(key, s.scope)).map((s) => (
              <li key={s.path}>
                <a href={`#/${s.path}`} aria-current={screen === s.path ? "page" : undefined}>{s.label}</a>
              </li>
            ))}
          </ul>
        </nav>
        <span className="who">{key.name || "API key"} · {key.scopes.join(", ")}</span>
        <button type="button" onClick={signOut}>Sign out</button>
      </header>
      <main id="main" tabIndex={-1}>
        {screen === "collections" && !rest[0] && <Collections />}
        {screen === "collections" && rest[0] && !rest[2] && <Collections selected={rest[0]} />}
        {screen === "collections" && rest[0] && rest[1] === "people" && rest[2] && (
          <Person collectionId={rest[0]} subjectId={rest[2]} />
        )}
        {screen === "doors" && <Doors selected={rest[0]} />}
        {screen === "events" && <Events />}
        {screen === "webhooks" && <Webhooks />}
        {screen === "integrations" && <Integrations />}
        {screen === "attendance" && <Attendance />}
        {screen === "cameras" && <Cameras />}
        {screen === "sightings" && <Sightings />}
        {screen === "keys" && <Keys />}
        {screen === "models" && <Models />}
      </main>
    </SessionContext.Provider>
  );
}

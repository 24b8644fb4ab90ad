import { createContext, useContext, useEffect, useState } from "react";
import type { KeyInfo, Scope } from "./api";

export interface Session {
  key: KeyInfo;
  signOut: () => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("no session");
  return session;
}

/** Whether the signed-in key grants `scope` (admin grants everything), as the server decides. */
export function can(key: KeyInfo, scope: Scope): boolean {
  return key.scopes.includes(scope) || key.scopes.includes("admin");
}

/** The route in the location's hash (`#/doors/…`), split into segments. */
export function useRoute(): string[] {
  const read = () => window.location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const changed = () => setRoute(read());
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}

export function go(...segments: string[]): void {
  window.location.hash = "#/" + segments.map(encodeURIComponent).join("/");
}

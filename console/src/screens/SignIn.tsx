import { useState, type FormEvent } from "react";

export function SignIn({ onSignedIn }: { onSignedIn: (key: string) => Promise<void> }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onSignedIn(key.trim());
    } catch (e) {
      setError(e instanceof Error ? e.message : "sign-in failed");
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="centre" id="main">
      <form className="card signin" onSubmit={submit}>
        <h1>facegate console</h1>
        <p>Sign in with an API key. It is kept in this tab only and sent with each request, never in an address.</p>
        <label htmlFor="key">API key</label>
        <input id="key" name="key" type="password" autoComplete="off" required value={key}
          onChange={(e) => setKey(e.target.value)} />
        {error && <p role="alert" className="error">{error}</p>}
        <button type="submit" disabled={busy || !key.trim()}>Sign in</button>
      </form>
    </main>
  );
}

import { useState, type FormEvent } from "react";

export function SignIn({ onSignedIn }: { onSignedIn: (key: string, gatewayKey: string) => Promise<void> }) {
  const [key, setKey] = useState("");
  const [gatewayKey, setGatewayKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onSignedIn(key.trim(), gatewayKey.trim());
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
        <details>
          <summary>Behind AWS API Gateway with API keys?</summary>
          <label htmlFor="gateway-key">API Gateway key</label>
          <input id="gateway-key" name="gateway-key" type="password" autoComplete="off" value={gatewayKey}
            onChange={(e) => setGatewayKey(e.target.value)} />
        </details>
        {error && <p role="alert" className="error">{error}</p>}
        <button type="submit" disabled={busy || !key.trim()}>Sign in</button>
      </form>
    </main>
  );
}

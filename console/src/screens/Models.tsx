import { useEffect, useState } from "react";
import { api, ok, type Schemas } from "../api";

type Pack = Schemas["PackInfo"];

export function Models() {
  const [packs, setPacks] = useState<Pack[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.GET("/v1/models").then((r) => setPacks(ok(r).packs), (e: Error) => setError(e.message));
  }, []);
  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title">Models</h1>
      {error && <p role="alert" className="error">{error}</p>}
      {packs.map((pack) => (
        <article key={pack.name} className="card" aria-labelledby={`pack-${pack.name}`}>
          <h2 id={`pack-${pack.name}`}>{pack.name}{pack.default && " (default)"}</h2>
          <table>
            <thead><tr><th scope="col">Model</th><th scope="col">Role</th><th scope="col">Licence</th><th scope="col">SHA-256</th></tr></thead>
            <tbody>
              <tr><td>{pack.detector.name}</td><td>detector</td><td>{pack.detector.licence}</td><td><code>{pack.detector.sha256.slice(0, 16)}…</code></td></tr>
              <tr><td>{pack.embedder.name}</td><td>embedder ({pack.embedding_size} values)</td><td>{pack.embedder.licence}</td><td><code>{pack.embedder.sha256.slice(0, 16)}…</code></td></tr>
            </tbody>
          </table>
          {pack.calibration.length > 0 && <CalibrationChart pack={pack} />}
          {pack.calibration_note && <p className="muted">{pack.calibration_note}</p>}
        </article>
      ))}
    </section>
  );
}

const W = 560, H = 260, PAD = 48;

/** Threshold against false-match rate (log scale): the operating points a collection can choose. */
function CalibrationChart({ pack }: { pack: Pack }) {
  const points = [...pack.calibration].sort((a, b) => a.fmr - b.fmr);
  const xs = points.map((p) => Math.log10(p.fmr));
  const ys = points.map((p) => p.threshold);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => PAD + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * PAD);
  const sy = (y: number) => H - PAD - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * PAD);
  const line = points.map((p, i) => `${i ? "L" : "M"}${sx(xs[i]).toFixed(1)},${sy(p.threshold).toFixed(1)}`).join(" ");
  const title = `Calibration of ${pack.name}: threshold from ${y0.toFixed(3)} at FMR ${points[points.length - 1].fmr} to ${y1.toFixed(3)} at FMR ${points[0].fmr}`;
  return (
    <figure>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title} className="chart">
        <line x1={PAD} y1={H - PAD} x2={W - PAD} y2={H - PAD} className="axis" />
        <line x1={PAD} y1={PAD} x2={PAD} y2={H - PAD} className="axis" />
        <path d={line} className="curve" />
        {points.map((p, i) => (
          <g key={p.fmr}>
            <circle cx={sx(xs[i])} cy={sy(p.threshold)} r={4} className="dot" />
            <text x={sx(xs[i])} y={H - PAD + 18} textAnchor="middle" className="tick">{p.fmr.toExponential(0)}</text>
          </g>
        ))}
        <text x={PAD - 6} y={sy(y0)} textAnchor="end" className="tick">{y0.toFixed(2)}</text>
        <text x={PAD - 6} y={sy(y1) + 4} textAnchor="end" className="tick">{y1.toFixed(2)}</text>
        <text x={W / 2} y={H - 8} textAnchor="middle" className="label">false-match rate (log scale)</text>
        <text x={14} y={H / 2} textAnchor="middle" className="label" transform={`rotate(-90 14 ${H / 2})`}>threshold</text>
      </svg>
      <figcaption>
        <table>
          <caption className="muted">The calibration table</caption>
          <thead><tr><th scope="col">False-match rate</th><th scope="col">Threshold</th><th scope="col">True-accept rate</th></tr></thead>
          <tbody>
            {points.map((p) => (
              <tr key={p.fmr}><td>{p.fmr}</td><td>{p.threshold.toFixed(4)}</td><td>{p.tar == null ? "" : `${(p.tar * 100).toFixed(2)} %`}</td></tr>
            ))}
          </tbody>
        </table>
      </figcaption>
    </figure>
  );
}

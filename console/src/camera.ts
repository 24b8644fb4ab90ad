// The webcam: a stream on a <video>, frames taken as JPEG blobs.
import { useEffect, useRef, useState } from "react";

export function useCamera(enabled: boolean) {
  const video = useRef<HTMLVideoElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [ready, setReady] = useState(false);

  useEffect(() => {
    if (!enabled) return;
    let stream: MediaStream | null = null;
    let cancelled = false;
    navigator.mediaDevices
      .getUserMedia({ video: { width: 640, height: 480 }, audio: false })
      .then((s) => {
        if (cancelled) {
          s.getTracks().forEach((t) => t.stop());
          return;
        }
        stream = s;
        if (video.current) {
          video.current.srcObject = s;
          void video.current.play().then(() => setReady(true));
        }
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : "no camera"));
    return () => {
      cancelled = true;
      setReady(false);
      stream?.getTracks().forEach((t) => t.stop());
    };
  }, [enabled]);

  /** The current frame as a JPEG. */
  async function capture(): Promise<Blob> {
    const v = video.current;
    if (!v || !v.videoWidth) throw new Error("the camera has no picture yet");
    const canvas = document.createElement("canvas");
    canvas.width = v.videoWidth;
    canvas.height = v.videoHeight;
    canvas.getContext("2d")?.drawImage(v, 0, 0);
    return new Promise((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("no frame"))), "image/jpeg", 0.92),
    );
  }

  return { video, ready, error, capture };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

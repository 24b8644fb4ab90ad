#!/usr/bin/env python3
"""The Python reference of facegate's pipeline: onnxruntime + OpenCV on the same fp32 models, one thread.

Reads a pack from models/manifest.toml (detector, optional landmark model, embedder with its
normalisation, alignment template and batch size) and the model files from facegate's cache, then
for each listed image: read -> decode -> YuNet at the image's aspect ratio (longest side 640, padded
to multiples of 32, score 0.7, NMS 0.3) -> the largest face -> landmarks (the pack's landmark model on
the box, else YuNet's) -> similarity alignment onto the embedder's template -> embedding of the crop
and its mirror image, summed and L2-normalised. Prints one JSON line as `facegate bench --images`.

Usage: pipeline_reference.py PACK IMAGE_LIST
"""

import json
import os
import sys
import time
import tomllib
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
ARCFACE = {"size": 112, "template": [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                     [41.5493, 92.3655], [70.7299, 92.2041]]}
MAX_SIDE, ALIGN, SCORE, NMS_IOU = 640, 32, 0.7, 0.3


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def prepare(image_bgr, spec, size=None):
    """NCHW float32 in the model's channel order and normalisation."""
    pixels = image_bgr if spec["channel_order"] == "bgr" else image_bgr[:, :, ::-1]
    x = (pixels.astype(np.float32) - np.array(spec["mean"], np.float32)) / np.array(spec["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def detect(model, image):
    h, w = image.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    pw, ph = -(-sw // ALIGN) * ALIGN, -(-sh // ALIGN) * ALIGN
    canvas = np.zeros((ph, pw, 3), np.uint8)
    canvas[:sh, :sw] = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_LINEAR) if scale < 1.0 else image
    tensor = canvas.astype(np.float32).transpose(2, 0, 1)[None]
    names = [o.name for o in model.get_outputs()]
    outputs = dict(zip(names, model.run(None, {model.get_inputs()[0].name: tensor})))
    boxes, scores, marks = [], [], []
    for stride in (8, 16, 32):
        cols, rows = pw // stride, ph // stride
        cls = outputs[f"cls_{stride}"].reshape(-1)
        obj = outputs[f"obj_{stride}"].reshape(-1)
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)
        kps = outputs[f"kps_{stride}"].reshape(-1, 10)
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        keep = np.nonzero(score >= SCORE)[0]
        col, row = (keep % cols).astype(np.float32), (keep // cols).astype(np.float32)
        cx, cy = (col + bbox[keep, 0]) * stride, (row + bbox[keep, 1]) * stride
        bw, bh = np.exp(bbox[keep, 2]) * stride, np.exp(bbox[keep, 3]) * stride
        for i in range(len(keep)):
            boxes.append([(cx[i] - bw[i] / 2) / scale, (cy[i] - bh[i] / 2) / scale, bw[i] / scale, bh[i] / scale])
            scores.append(float(score[keep[i]]))
            k = kps[keep[i]].reshape(5, 2)
            marks.append(np.stack([(k[:, 0] + col[i]) * stride, (k[:, 1] + row[i]) * stride], 1) / scale)
    if not boxes:
        return []
    kept = cv2.dnn.NMSBoxes(boxes, scores, SCORE, NMS_IOU)
    return [(boxes[i], marks[i]) for i in np.array(kept).reshape(-1)]


def locate(model, spec, image, box):
    """The landmark model on the box stretched to its input; points back in image pixels."""
    width, height = spec.get("input_size", [48, 48])
    x, y, w, h = box
    to_crop = np.array([[width / w, 0, -x * width / w], [0, height / h, -y * height / h]], np.float32)
    crop = cv2.warpAffine(image, to_crop, (width, height), flags=cv2.INTER_LINEAR)
    out = model.run(None, {model.get_inputs()[0].name: prepare(crop, spec)[None]})[0].reshape(5, 2)
    return np.stack([x + out[:, 0] * w, y + out[:, 1] * h], 1)


def embed(model, spec, image, landmarks):
    alignment = spec.get("alignment", ARCFACE)
    size, template = alignment["size"], np.array(alignment["template"], np.float32)
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), template, method=cv2.LMEDS)
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR)
    batch = np.stack([prepare(crop, spec), prepare(crop[:, ::-1], spec)])
    name = model.get_inputs()[0].name
    if spec.get("max_batch") == 1:
        out = np.concatenate([model.run(None, {name: batch[i:i + 1]})[0].reshape(1, -1) for i in range(2)])
    else:
        out = model.run(None, {name: batch})[0].reshape(2, -1)
    summed = out.sum(0)
    return summed / np.linalg.norm(summed)


def main():
    pack_name, image_list = sys.argv[1], sys.argv[2]
    manifest = tomllib.loads((ROOT / "models" / "manifest.toml").read_text())
    models = {m["name"]: m for m in manifest["model"]}
    pack = next(p for p in manifest["pack"] if p["name"] == pack_name)
    home = Path(os.environ.get("FACEGATE_HOME") or Path.home() / ".cache" / "facegate")
    path = lambda name: home / "models" / models[name]["file"]
    cv2.setNumThreads(1)
    detector = session(path(pack["detector"]))
    landmarker = session(path(pack["landmarks"])) if "landmarks" in pack else None
    # An OpenVINO IR embedder (the int8 pack's) is compared with what a Python script would run instead:
    # the fp32 ONNX model of its family.
    if models[pack["embedder"]].get("format") == "openvino-ir":
        family = models[pack["embedder"]]["family"]
        pack = {**pack, "embedder": next(m["name"] for m in manifest["model"]
                                         if m["family"] == family and m.get("format", "onnx") == "onnx")}
    embedder = session(path(pack["embedder"]))
    paths = [line.strip() for line in Path(image_list).read_text().splitlines() if line.strip()]
    faces, checksum = 0, 0.0
    started = time.perf_counter()
    for image_path in paths:
        image = cv2.imdecode(np.frombuffer(Path(image_path).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        found = detect(detector, image)
        if not found:
            continue
        box, landmarks = max(found, key=lambda f: f[0][2] * f[0][3])
        if landmarker is not None:
            landmarks = locate(landmarker, models[pack["landmarks"]], image, box)
        embedding = embed(embedder, models[pack["embedder"]], image, landmarks)
        faces += 1
        checksum += float(embedding[0])
    seconds = time.perf_counter() - started
    print(json.dumps({"runner": "python", "pack": pack_name, "images": len(paths), "faces": faces,
                      "seconds": seconds, "images_per_second": len(paths) / seconds, "checksum": checksum}))


if __name__ == "__main__":
    main()

"""Converts the OMZ OpenVINO IR originals named in the manifest's `derived_from` to ONNX and checks each
against the pinned ONNX file: same canonical graph digest (nodes and initializers in sorted order) and
identical outputs on fixed random inputs. Run by scripts/convert-omz.sh with pinned packages."""
import hashlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

manifest_path, mirror, out, converter = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
manifest = tomllib.load(manifest_path.open("rb"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def canonical(model: onnx.ModelProto) -> str:
    """A digest of the graph that does not depend on the order of its nodes and initializers."""
    g, h = model.graph, hashlib.sha256()
    h.update(repr((model.ir_version, sorted((o.domain, o.version) for o in model.opset_import))).encode())
    parts = (
        sorted(n.SerializeToString(deterministic=True) for n in g.node),
        sorted(t.SerializeToString(deterministic=True) for t in g.initializer),
        [v.SerializeToString(deterministic=True) for v in g.input],
        [v.SerializeToString(deterministic=True) for v in g.output],
    )
    for part in parts:
        for item in part:
            h.update(hashlib.sha256(item).digest())
    return h.hexdigest()


failed = 0
for model in manifest["model"]:
    source = model.get("derived_from", "")
    if "openvino2onnx" not in source:
        continue
    found = re.search(r"models_bin/1/([\w-]+)/(FP16)/; xml sha256 ([0-9a-f]{64}), bin ([0-9a-f]{64})", source)
    if not found:
        sys.exit(f"{model['name']}: derived_from names no IR with its sha256")
    name, precision, xml_sha, bin_sha = found.groups()
    xml, weights = (mirror / f"openvino_ir_{name}_{precision}.{ext}" for ext in ("xml", "bin"))
    for path, expected in ((xml, xml_sha), (weights, bin_sha)):
        if sha256(path) != expected:
            sys.exit(f"{path}: sha256 is not the manifest's {expected}")
    pinned_path = mirror / model["file"]
    if sha256(pinned_path) != model["sha256"]:
        sys.exit(f"{pinned_path}: sha256 is not the manifest's")
    pinned = onnx.load(str(pinned_path))
    opset = next(o.version for o in pinned.opset_import if o.domain in ("", "ai.onnx"))
    converted_path = out / model["file"]
    subprocess.run([converter, str(xml), str(converted_path), "-v", str(opset)], check=True, capture_output=True)
    converted = onnx.load(str(converted_path))
    same_graph = canonical(converted) == canonical(pinned)
    dims = [d.dim_value for d in pinned.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).uniform(0, 255, size=dims).astype(np.float32)
    outputs = [ReferenceEvaluator(m).run(None, {m.graph.input[0].name: x})[0] for m in (converted, pinned)]
    largest = float(np.abs(outputs[0] - outputs[1]).max())
    ok = same_graph and largest == 0.0
    failed += not ok
    print(
        f"{model['name']}: IR {xml.name} (sha256 ok) -> {converted_path} (sha256 {sha256(converted_path)[:12]}), "
        f"graph {'identical' if same_graph else 'DIFFERENT'} to the pinned {model['sha256'][:12]} "
        f"(digest {canonical(pinned)[:12]}), largest output difference {largest:g}: {'ok' if ok else 'FAILED'}"
    )
sys.exit(1 if failed else 0)

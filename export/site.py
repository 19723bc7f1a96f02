"""`cgpa web`: a static site that runs model.onnx in the visitor's browser (onnxruntime-web).

The site is index.html, cgpa.js and the model file: any static host serves it (a static
Hugging Face Space, GitHub Pages, a folder behind nginx). onnxruntime-web comes from a
pinned version on a public CDN by default, from another URL, or, with a local
`dist/` folder (from `npm install onnxruntime-web`), from files copied beside the page
so the site works offline.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from cgpa_rnn.model.config import INTERVAL_LEVEL
from cgpa_rnn.errors import UserError
from cgpa_rnn.predictor import check_fresh
from cgpa_rnn.rundir import RunDir, atomic_path

ORT_WEB_VERSION = "1.30.0"  # the version export/node/package.json pins too
ORT_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
ORT_SCRIPT = "ort.wasm.min.js"
ORT_FILES = (ORT_SCRIPT, "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")  # the wasm backend
TEMPLATES = Path(__file__).resolve().parent / "web"


def _ort_base(ort: str | Path | None, out: Path) -> str:
    """Where the page loads onnxruntime-web from; local files are copied into out/ort/."""
    if ort is None:
        return ORT_CDN
    if str(ort).startswith(("http://", "https://")):
        return str(ort).rstrip("/") + "/"
    dist = Path(ort)
    missing = [name for name in ORT_FILES if not (dist / name).is_file()]
    if missing:
        raise UserError(f"--ort {dist}: not an onnxruntime-web dist/ folder (missing {', '.join(missing)}); "
                        "run `npm install onnxruntime-web` and pass node_modules/onnxruntime-web/dist")
    (out / "ort").mkdir(parents=True, exist_ok=True)
    for name in ORT_FILES:
        with atomic_path(out / "ort" / name) as temporary:
            shutil.copyfile(dist / name, temporary)
    return "ort/"


def build_site(run: str | Path | RunDir, out: str | Path, ort: str | Path | None = None) -> Path:
    """Write the site for a run's (fresh) ONNX model into `out`; returns the index.html path."""
    run, out = RunDir.of(run), Path(out)
    predictor = check_fresh(run)  # a stale export is refused here as everywhere
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: a file is in the way; give a folder for the site")
    base = _ort_base(ort, out)
    source = json.loads(predictor.metadata["data_source"])
    config = {"model": RunDir.ONNX, "wasmPaths": base, "ortVersion": ORT_WEB_VERSION,
              "semesters": predictor.semesters, "semesterNames": predictor.semester_names,
              "colleges": predictor.colleges, "cell": predictor.metadata["cell"],
              "intervalLevel": f"{INTERVAL_LEVEL:.0%}",
              "data": "a SYNTHETIC cohort" if source["kind"] == "synthetic" else source["name"]}
    page = (TEMPLATES / "index.html").read_text(encoding="utf-8")
    # "</" cannot appear inside the JSON script element; json.dumps never writes "<" otherwise.
    page = page.replace("{{CONFIG}}", json.dumps(config).replace("</", "<\\/")).replace("{{ORT_SCRIPT}}",
                                                                                       base + ORT_SCRIPT)
    for name, content in ((RunDir.ONNX, (run / RunDir.ONNX).read_bytes()),
                          ("cgpa.js", (TEMPLATES / "cgpa.js").read_bytes()), ("index.html", page.encode())):
        with atomic_path(out / name) as temporary:
            temporary.write_bytes(content)
    return out / "index.html"

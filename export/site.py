"""`cgpa web`: a static site that runs model.onnx in the visitor's browser (onnxruntime-web).

The site is index.html, its scripts (rules.js: the CSV rules of `cgpa predict --csv`;
onnx_bytes.js: the file's metadata and explain.onnx's optional inputs set in the file; trajectory.js: the rest of a
degree in words; chart.js; cgpa.js), model.onnx, explain.onnx, vectors.json when the run has
it, and the README.md front matter of a free static Hugging Face Space. onnxruntime-web comes
from a pinned version on a public CDN by default, from another http(s) URL, or, given a local
`dist/` folder (from `npm install onnxruntime-web`), from files copied into `ort/` so the site
works offline.

Nothing leaves the visitor's machine: the page fetches only its own files (and the runtime
from the CDN in the default mode). Every file worth compressing gets `.br` and `.gz`
siblings that hosts serving precompressed files send instead (onnxruntime-web's 14 MB
.wasm goes out as 2.7 MB); where the host compresses nothing, the page fetches the .wasm.gz
itself and inflates it.

The folder holds exactly the site: it is built beside the target and swapped in as a
whole, marked with cgpa_rnn.paths.SITE_MARKER so the next build may replace it. A folder
that is not ours is only written into with --force, and then only the site's own files.
"""
from __future__ import annotations

import gzip
import html
import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from cgpa_rnn.errors import UserError
from cgpa_rnn.jsontext import bounded_loads
from cgpa_rnn.paths import check_site_folder, is_site_folder, mark_site
from cgpa_rnn.predictor import check_fresh
from cgpa_rnn.rundir import RunDir, atomic_path, process_alive

ORT_WEB_VERSION = "1.30.0"  # the version export/node/package.json pins too
ORT_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
ORT_SCRIPT = "ort.wasm.min.js"
ORT_FILES = (ORT_SCRIPT, "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")  # the wasm backend
PAGE_FILES = ("index.html", "rules.js", "onnx_bytes.js", "trajectory.js", "chart.js", "cgpa.js")
TEMPLATES = Path(__file__).resolve().parent / "web"
COMPRESSED = (".html", ".js", ".mjs", ".wasm", ".onnx", ".json")
SPACE_TITLE = "cgpa-rnn grade forecast"
SPACE_DESCRIPTION = "Next-semester grade forecast that runs in your browser"  # the Hub allows 60 characters
SPACE_TAGS = ("onnx", "onnxruntime-web", "rnn", "education", "tabular-regression", "privacy")
_SAFE_URL = re.compile(r"[!#$%&'()*+,\-./0-9:;=?@A-Z\[\]_a-z~]+")  # RFC 3986 characters, no quotes, spaces or <>


def ort_source(ort: str | Path | None) -> tuple[str, Path | None]:
    """(the base URL the page loads onnxruntime-web from, a local dist/ folder to copy or None)."""
    if ort is None:
        return ORT_CDN, None
    text = str(ort)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or not _SAFE_URL.fullmatch(text):
            raise UserError(f"--ort {text[:80]!r}: expected an http(s) URL of onnxruntime-web's dist/ folder "
                            "(plain URL characters, no quotes or spaces) or a local dist/ folder")
        return text.rstrip("/") + "/", None
    dist = Path(ort)
    missing = [name for name in ORT_FILES if not (dist / name).is_file()]
    if missing:
        raise UserError(f"--ort {text[:80]!r}: not an http(s) URL nor an onnxruntime-web dist/ folder (missing "
                        f"{', '.join(missing)}); in this repository, run `(cd export/node && npm install)` first "
                        "(it installs export/node/node_modules/onnxruntime-web/dist), elsewhere `npm install "
                        "onnxruntime-web` and pass its node_modules/onnxruntime-web/dist")
    return "ort/", dist


def script_json(value) -> str:
    """JSON that is safe inside a <script> element: no `</script>`, `<!--` or line separators break out."""
    text = json.dumps(value, ensure_ascii=False)
    for character, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                              ("\u2029", "\\u2029")):
        text = text.replace(character, escape)
    return text


def _about(predictor, base: str) -> list[list[str]]:
    """What the About tab lists, read from the model file's own metadata."""
    meta = predictor.metadata
    source = json.loads(meta["data_source"])
    data = "a SYNTHETIC cohort" if source.get("kind") == "synthetic" else str(source.get("name", "?"))
    about = [["model", f"{meta.get('cell', '?')} recurrent network, one step per semester (cgpa-rnn)"],
             ["trained on", data],
             ["semesters", f"{predictor.semesters} ({', '.join(predictor.semester_names)})"],
             ["groups", (f"{predictor.groups.describe()}; any other value uses a shared 'unknown' slot"
                         if predictor.groups.column else "none (one group)")],
             ["interval", f"{predictor.interval_level:.0%} prediction interval (low, high)"]]
    held_out = _held_out_next(meta)
    if held_out is not None:  # metrics are for people; a file without them still runs
        about.append(["held-out error", (f"mean absolute error {held_out['mae']:.3f} grade points on "
                                         f"{held_out['n']} held-out predictions")])
    about += [["license", meta.get("model_license", "not stated")],
              ["checkpoint", predictor.checkpoint_sha256[:16]],
              ["runtime", f"onnxruntime-web {ORT_WEB_VERSION} from {base}"],
              ["privacy", "grades and files are read by this page only: nothing is uploaded or stored"]]
    return about


def _space_readme(predictor) -> str:
    """The front matter a free static Hugging Face Space needs, and a few lines for people."""
    license_id = str(predictor.metadata.get("model_license", "")).strip().lower()
    license_id = license_id if re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,40}", license_id) else "other"
    tags = "".join(f"  - {tag}\n" for tag in SPACE_TAGS)
    source = json.loads(predictor.metadata["data_source"]).get("name", "?")
    return (f"---\ntitle: {json.dumps(SPACE_TITLE)}\nemoji: 🎓\ncolorFrom: blue\ncolorTo: green\nsdk: static\n"
            f"app_file: index.html\npinned: false\nlicense: {license_id}\n"
            f"short_description: {json.dumps(SPACE_DESCRIPTION)}\ntags:\n{tags}---\n\n"
            f"# {SPACE_TITLE}\n\nA cgpa-rnn model (trained on {html.escape(str(source))}) predicting a student's "
            "next-semester grade point average and the rest of their degree, run by onnxruntime-web in the "
            "visitor's browser: one student with the final CGPA and its risk, a whole cohort CSV with hindcasts, "
            "a chart and an at-risk list, and the scored CSV to download. Nothing the visitor "
            "types or opens leaves their machine.\n\nWritten by `cgpa web`; serve the folder with any static "
            "host, or locally with `python -m http.server`.\n")


def _precompress(folder: Path) -> None:
    """`.br` and `.gz` beside each file worth compressing, for hosts that serve them (gzip_static, ...)."""
    try:
        import brotli
    except ImportError:
        brotli = None  # gzip alone: hosts still get 3.7 MB instead of 14 MB for the runtime
    for path in sorted(p for p in folder.rglob("*") if p.suffix in COMPRESSED and p.stat().st_size >= 1024):
        data = path.read_bytes()
        (path.parent / (path.name + ".gz")).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        if brotli is not None:  # quality 11 takes 40 s on the 14 MB .wasm for 12% less; 9 takes 2 s
            quality = 11 if len(data) < 1_000_000 else 9
            (path.parent / (path.name + ".br")).write_bytes(brotli.compress(data, quality=quality))


def _write_site(folder: Path, run: RunDir, predictor, ort: str | Path | None) -> None:
    base, dist = ort_source(ort)
    explanation = RunDir.EXPLANATION if (run / RunDir.EXPLANATION).is_file() else None
    config = {"model": RunDir.ONNX, "explanation": explanation, "wasmPaths": base, "ortScript": base + ORT_SCRIPT,
              "ortVersion": ORT_WEB_VERSION,
              "selfHosted": dist is not None, "semesters": predictor.semesters,
              "semesterNames": predictor.semester_names, "colleges": predictor.colleges,
              "semesterLabels": [predictor.semester_label(t) for t in range(predictor.semesters)],
              "scale": predictor.scale.to_json(), "atRiskLine": predictor.scale.at_risk_line(),
              "groupColumn": predictor.groups.column,
              "groupLabels": None if predictor.groups.labels is None else list(predictor.groups.labels),
              "trainingGrades": None if predictor.training_grades is None else dict(
                  zip(("mean", "std"), predictor.training_grades)),
              "intervalLevel": f"{predictor.interval_level:.0%}", "dataSha256": predictor.training_data_sha256,
              "about": _about(predictor, base)}
    page = (TEMPLATES / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{CONFIG}}", script_json(config)).replace("{{ORT_SCRIPT}}",
                                                                  html.escape(base + ORT_SCRIPT, quote=True))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(page, encoding="utf-8")
    for name in PAGE_FILES[1:]:
        shutil.copyfile(TEMPLATES / name, folder / name)
    shutil.copyfile(run / RunDir.ONNX, folder / RunDir.ONNX)
    if explanation:
        shutil.copyfile(run / RunDir.EXPLANATION, folder / RunDir.EXPLANATION)
    if (run / RunDir.VECTORS).is_file():
        shutil.copyfile(run / RunDir.VECTORS, folder / RunDir.VECTORS)
    (folder / "README.md").write_text(_space_readme(predictor), encoding="utf-8")
    if dist is not None:
        (folder / "ort").mkdir()
        for name in ORT_FILES:
            shutil.copyfile(dist / name, folder / "ort" / name)
    _precompress(folder)


def build_site(run: str | Path | RunDir, out: str | Path, ort: str | Path | None = None, force: bool = False) -> Path:
    """Write the site for a run's (fresh) ONNX model as the folder `out`; returns the index.html path."""
    run, out = RunDir.of(run), check_site_folder(out, run, force)
    predictor = check_fresh(run)  # a stale export is refused here as everywhere
    ort_source(ort)  # refused before any work
    if out.is_dir() and any(out.iterdir()) and not is_site_folder(out):
        # --force on a folder of the user's: the site's files are written into it and nothing else is touched
        staged = out.parent / f".{out.name}.forced-{os.getpid()}"
        try:
            _write_site(staged, run, predictor, ort)
            for path in sorted(p for p in staged.rglob("*") if p.is_file()):
                with atomic_path(out / path.relative_to(staged)) as temporary:
                    shutil.copyfile(path, temporary)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        return out / "index.html"
    for stale in out.parent.glob(f".{out.name}.new-*"):  # left by a build that was killed
        if not process_alive(stale.name.rsplit("-", 1)[1]):
            shutil.rmtree(stale, ignore_errors=True)
    staged = out.parent / f".{out.name}.new-{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)
    try:
        _write_site(staged, run, predictor, ort)
        mark_site(staged)
        RunDir(out).replace_with(RunDir(staged))  # one swap: the old site or the new one, never a mix
    except OSError as error:
        raise UserError(f"--out {out}: cannot write the site here ({error.strerror or error})") from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return out / "index.html"


def _held_out_next(meta: dict) -> dict | None:
    """The model's held-out scores on the `next` target from the file's metrics, or None."""
    try:
        scores = bounded_loads(meta.get("metrics", "{}"), "metadata 'metrics'")["next"]["model"]
        return scores if {"mae", "n"} <= set(scores) else None
    except (KeyError, TypeError, ValueError):
        return None

"""The ONNX file as an embedder in another language meets it: the standard self-description
that onnxruntime's get_modelmeta() (and the C#, Java and Netron views) show, and the
conformance vectors in vectors.json that every runtime must reproduce."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from conftest import SHIPPED

from cgpa_rnn.export.onnx_export import description_problems
from cgpa_rnn.export.vectors import FAR_CODE, check_vectors, write_vectors
from cgpa_rnn.model.config import CELLS


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _infer(session):
    return lambda grades, college: session.run(None, {"grades": grades, "college": college})


@pytest.mark.parametrize("run_name", ["shipped", *CELLS])
def test_get_modelmeta_shows_the_standard_fields(run_name, exported_runs):
    run = SHIPPED if run_name == "shipped" else exported_runs[run_name]
    meta = _session(run / "model.onnx").get_modelmeta()
    assert meta.producer_name == "cgpa-rnn" and meta.domain == "cgpa-rnn" and meta.graph_name
    assert meta.version >= 100_000_000  # checkpoint format 1, then the training date
    assert "80% prediction interval" in meta.description and "NaN" in meta.description
    custom = meta.custom_metadata_map
    assert custom["model_license"] == "MIT" and custom["model_author"]
    assert float(custom["interval_level"]) == pytest.approx(0.8)
    assert description_problems(run / "model.onnx") == []


def test_a_file_without_its_description_is_named(exported_runs, tmp_path):
    import onnx

    proto = onnx.load(exported_runs["gru"] / "model.onnx")
    proto.doc_string = ""
    del proto.metadata_props[:]
    onnx.save_model(proto, tmp_path / "bare.onnx")
    problems = description_problems(tmp_path / "bare.onnx")
    assert "doc_string is not set" in problems and "metadata key 'model_license' is missing" in problems


@pytest.mark.parametrize("run_name", ["shipped", *CELLS])
def test_onnxruntime_reproduces_every_vector(run_name, exported_runs):
    run = SHIPPED if run_name == "shipped" else exported_runs[run_name]
    document = json.loads((run / "vectors.json").read_text())
    names = {case["name"] for case in document["cases"]}
    assert len(names) == len(document["cases"]) >= 12
    assert {"gap_in_the_middle", "unknown_college", "far_int64_college", "nothing_observed", "horizon_complete",
            "all_zero", "all_ten", "mixed_batch"} <= names
    nothing = next(c for c in document["cases"] if c["name"] == "nothing_observed")
    assert nothing["outputs"] == {"prediction": [None], "low": [None], "high": [None]}
    assert check_vectors(run, _infer(_session(run / "model.onnx"))) == []


def test_vectors_catch_a_runtime_that_narrows_int64(exported_runs):
    """What the vectors are for: an integration that gets one thing wrong fails a named case."""
    run = exported_runs["elman"]
    session = _session(run / "model.onnx")
    known = json.loads((run / "vectors.json").read_text())["cases"][0]["inputs"]["college"][0]

    def narrowing(grades, college):  # int64 -> int32 wraps 2**62 to 0, a different college
        wrapped = college.astype(np.int32).astype(np.int64)
        return session.run(None, {"grades": grades, "college": np.where(college == FAR_CODE, known, wrapped)})

    failures = check_vectors(run, narrowing)
    assert {line.split(":")[0] for line in failures} == {"far_int64_college", "mixed_batch"}


def test_vectors_are_written_from_the_checkpoint(run_copy):
    before = json.loads((run_copy / "vectors.json").read_text())
    (run_copy / "vectors.json").unlink()
    write_vectors(run_copy)
    assert json.loads((run_copy / "vectors.json").read_text()) == before  # deterministic


def test_the_hub_folder_holds_the_onnx_model_its_vectors_and_card(tmp_path):
    from cgpa_rnn.export.publish import publish

    out = tmp_path / "hub"
    assert publish(SHIPPED, out) == ["README.md", "explain.onnx", "model.onnx", "vectors.json"]
    card = (out / "README.md").read_text()
    assert "\nlibrary_name: onnx\n" in card and "pytorch" in card.split("---")[1]  # tags still name the trainer
    assert (out / "model.onnx").read_bytes() == (SHIPPED / "model.onnx").read_bytes()
    assert publish(SHIPPED, out)  # its own folder is replaced as a whole


def test_the_hub_folder_never_replaces_a_folder_it_did_not_write(tmp_path):
    from cgpa_rnn.errors import UserError
    from cgpa_rnn.export.publish import publish

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="not a folder this command wrote"):
        publish(SHIPPED, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"


def test_verify_fails_a_file_whose_vectors_or_description_are_wrong(run_copy):
    import onnx
    from conftest import cgpa

    document = json.loads((run_copy / "vectors.json").read_text())
    document["cases"][0]["outputs"]["prediction"][0] += 0.5  # an expectation the file does not meet
    (run_copy / "vectors.json").write_text(json.dumps(document))
    proto = onnx.load(run_copy / "model.onnx")
    proto.doc_string = ""
    onnx.save_model(proto, run_copy / "model.onnx")
    done = cgpa("verify", str(run_copy), "--samples", "50")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"VECTORS: vectors.json: {document['cases'][0]['name']}: prediction" in done.stdout
    assert "METADATA: doc_string is not set" in done.stdout and "FAILED" in done.stdout
    (run_copy / "vectors.json").unlink()
    assert "vectors.json is missing" in cgpa("verify", str(run_copy), "--samples", "50").stdout

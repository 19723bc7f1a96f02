"""The data package: the real CSV's facts, other cohort layouts, every bad input, splits."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import cgpa
from hypothesis import given, settings
from hypothesis import strategies as st

from cgpa_rnn.data import DataError, load_csv
from cgpa_rnn.data.cohort import CohortFormat, summary
from cgpa_rnn.data.sequences import Normalisation, last_examples, next_examples, repeated_kfold, split_students
from cgpa_rnn.data.synthetic import SyntheticSpec, best_achievable_mae, generate_frame, oracle, synthetic_cohort
from cgpa_rnn.encoding import Scale
from cgpa_rnn.rundir import file_sha256
from cgpa_rnn.table import LongLayout

HEADER = "1st,2nd,3rd,4th,5th,College Code,Gender,Roll,Roll no.,Subject Code\n"


def write(tmp_path, text: str, name: str = "cohort.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_real_data_facts(real_data):
    cohort = load_csv(real_data)
    assert len(cohort) == 177 and cohort.semesters == 5
    assert [(s.line, s.reason) for s in cohort.skipped] == [(64, "no grade in any semester")]
    gaps = cohort.students_with_gaps()
    assert len(gaps) == 4
    for key in gaps:  # the gap is kept as NaN, not filled
        assert np.isnan(cohort.grades[cohort.keys.index(key)]).any()
    assert set(cohort.gender) <= {"female", "male", "unknown"}
    assert {"female", "male"} <= set(cohort.gender)
    assert sorted(np.unique(cohort.college)) == [115, 116, 165, 241]
    # Roll numbers repeat across colleges: the key is college + roll.
    rolls = [k.split("/")[1] for k in cohort.keys]
    assert len(set(rolls)) < len(rolls) and len(set(cohort.keys)) == len(cohort.keys)


def test_cli_data_json_on_real_data(real_data, tmp_path):
    result = cgpa("data", "--json", cwd=tmp_path)  # no --data: the shipped real data, from anywhere
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["students"] == 177 and info["semesters"] == 5
    assert info["colleges"] == {"115": 46, "116": 51, "165": 45, "241": 35}
    assert info["missing_cells"] == 14 and not info["synthetic"]
    assert info["source"] == {"kind": "csv", "name": "student-semester-result.csv",
                              "sha256": file_sha256(real_data), "shipped": True}
    text = cgpa("data", "--data", str(real_data))
    assert "left out: line 64" in text.stdout and "sha256" in text.stdout and "SYNTHETIC" not in text.stdout


def test_cli_synthetic_is_asked_for_and_labelled():
    result = cgpa("data", "--synthetic", "50", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["students"] == 50 and "SYNTHETIC" in result.stderr
    text = cgpa("data", "--synthetic", "50")
    assert "SYNTHETIC" in text.stdout and "SYNTHETIC" in text.stderr
    both = cgpa("data", "--synthetic", "--data", "x.csv")
    assert both.returncode == 2 and "not allowed with" in both.stderr


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    ("", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a CSV text file"),
    ("name,score\nann,3\n", "no semester columns found"),
    (HEADER + "8.1,7.6,abc,7.4,8.1,115,Female,,17020,16\n", "line 2, column '3rd': expected a grade point"),
    (HEADER + "8.1,7.6,7.1,7.4,8.1,115,Female,,17020,16\n6,6,6,6,11.5,115,M,,17021,16\n",
     "line 3, column '5th': grade 11.5 is outside 0-10, the scale in use (it fits a 0-20 or 0-100 scale)"),
    (HEADER + "8.1,7.6,7.1,7.4,8.1,115,Female,,17020,16\n6,6,6,6,6,115,M,,17020.0,16\n",
     "student 115/17020 (college/roll) appears twice, first on line 2"),
    (HEADER, "a header but no student rows"),
    (HEADER + "8.1,7.6,7.1,7.4,8.1,,Female,,17020,16\n", "line 2, column 'College Code': blank"),
    (HEADER + "8.1,7.6,7.1,7.4,8.1,115,Robot,,17020,16\n", "line 2, column 'Gender': unknown gender 'Robot'"),
    ('1st,2nd,College Code,Roll\n"7.1,5\n', "not a readable CSV"),
])
def test_bad_input_is_one_clear_message(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=expected.replace("(", r"\(").replace(")", r"\)")) as error:
        load_csv(path)
    assert str(path) in str(error.value)
    result = cgpa("data", "--data", str(path))  # as a user meets it: one line, no traceback
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and expected in result.stderr


def test_other_layouts_load(tmp_path):
    eight = write(tmp_path, "sem1,sem2,sem3,sem4,sem5,sem6,sem7,sem8,college,roll_no,notes\n"
                  "7,7.1,7.2,,7.4,7.5,7.6,7.7,9,1,x\n6,6.1,,,,,,,9,2,y\n")
    cohort = load_csv(eight)
    assert cohort.semesters == 8 and cohort.semester_names[-1] == "sem8"
    assert np.isnan(cohort.grades[0, 3]) and cohort.keys == ["9/1", "9/2"]
    assert set(cohort.gender) == {"unknown"}  # no gender column at all
    named = write(tmp_path, "autumn,spring,College Code,Roll\n7,8,1,5\n", "named.csv")
    with pytest.raises(DataError, match="no semester columns"):
        load_csv(named)
    assert load_csv(named, CohortFormat(semesters=("autumn", "spring"))).grades.tolist() == [[7.0, 8.0]]
    with pytest.raises(DataError, match="not in the header"):
        load_csv(named, CohortFormat(semesters=("autumn", "winter")))


# One cohort written the ways registrars and spreadsheets write it: every file must read the same.
OTHER_SCHOOL = [("GP", "F", [11, 12, 12]), ("MS", "M", [8, 9.5, 10]), ("GP", "M", [15, 15, 0])]


def _other_school_files(tmp_path) -> dict:
    wide = "absences,school,sex,G1,G2,G3,notes\n" + "".join(
        f"3,{s},{g},{a},{b},{c},x\n" for s, g, (a, b, c) in OTHER_SCHOOL)
    semicolon = 'absences;"school";"sex";"G1";"G2";"G3";notes\n' + "".join(
        f'3;"{s}";"{g}";"{a}";"{str(b).replace(".", ",")}";{c};"a, b"\n' for s, g, (a, b, c) in OTHER_SCHOOL)
    tab = wide.replace(",", "\t")
    long = "student,term,grade,school\n" + "".join(
        f"s{k},G{t + 1},{v},{s}\n" for k, (s, _, grades) in enumerate(OTHER_SCHOOL) for t, v in enumerate(grades))
    files = {}
    for name, text in (("wide.csv", wide), ("semicolon.csv", semicolon), ("tab.tsv", tab), ("long.csv", long)):
        files[name] = tmp_path / name
        files[name].write_text(text)
    return files


def test_any_institution_reads_the_same_from_every_dialect(tmp_path):
    files = _other_school_files(tmp_path)
    form = CohortFormat(("G1", "G2", "G3"), Scale(0, 20), "school")
    expected = [grades for _, _, grades in OTHER_SCHOOL]
    for name in ("wide.csv", "semicolon.csv", "tab.tsv"):
        cohort = load_csv(files[name], form)
        assert cohort.grades.tolist() == expected, name
        assert cohort.groups.labels == ("GP", "MS") and cohort.college.tolist() == [1, 2, 1], name
    long = load_csv(files["long.csv"], CohortFormat(scale=Scale(0, 20), group="school",
                                                    long=LongLayout("student", "term", "grade")))
    assert long.grades.tolist() == expected and long.semester_names == ["G1", "G2", "G3"]
    with pytest.raises(DataError, match=r"line 2, column 'G1': grade 11 is outside 0-10.*0-20.*\(--scale, or the"):
        load_csv(files["wide.csv"], CohortFormat(("G1", "G2", "G3"), group="school"))
    duplicated = tmp_path / "twice.csv"
    duplicated.write_text(files["long.csv"].read_text() + "s1,G2,9,MS\n")
    with pytest.raises(DataError, match="student 's1' has term 'G2' twice"):
        load_csv(duplicated, CohortFormat(scale=Scale(0, 20), group="school", long=LongLayout("student", "term",
                                                                                             "grade")))
    nogroup = load_csv(files["wide.csv"], CohortFormat(("G1", "G2", "G3"), Scale(0, 20), None))
    assert nogroup.groups.column is None and set(nogroup.college.tolist()) == {0}
    result = cgpa("data", "--data", str(files["semicolon.csv"]), "--semesters", "G1,G2,G3", "--group", "school",
                  "--scale", "0-20")
    assert result.returncode == 0 and "scale: 0-20" in result.stdout
    assert "groups (school): GP: 2, MS: 1" in result.stdout


def test_examples_never_use_a_missing_target():
    grades = np.array([[7, np.nan, 6, 5], [np.nan, np.nan, 6, np.nan], [8, 7, 6, 5]], dtype=np.float32)
    student, target = next_examples(grades)
    assert list(zip(student, target)) == [(0, 2), (0, 3), (2, 1), (2, 2), (2, 3)]
    assert list(zip(*last_examples(grades))) == [(0, 3), (2, 3)]


def test_normalisation_uses_observed_cells_only():
    norm = Normalisation.fit(np.array([[6.0, np.nan], [8.0, np.nan]]))
    assert norm.mean == 7.0 and norm.std == 1.0


@settings(max_examples=60, deadline=None)
@given(n=st.integers(5, 400), folds=st.integers(2, 5), repeats=st.integers(1, 3), seed=st.integers(0, 10**6))
def test_splits_never_leak_a_student(n, folds, repeats, seed):
    seen_in_test = np.zeros(n, dtype=int)
    for fold in repeated_kfold(n, folds, repeats, seed):
        assert not set(fold.train) & set(fold.test)
        assert len(fold.train) + len(fold.test) == n
        seen_in_test[fold.test] += 1
    assert (seen_in_test == repeats).all()  # every student is tested exactly once per repeat
    train, validation, test = split_students(n, seed)
    assert not (set(train) & set(validation) or set(train) & set(test) or set(validation) & set(test))
    assert len(train) + len(validation) + len(test) == n


@settings(max_examples=15, deadline=None)
@given(students=st.integers(1, 300), seed=st.integers(0, 10**6), semesters=st.integers(2, 8))
def test_synthetic_cohort_roundtrips_through_csv(tmp_path_factory, students, seed, semesters):
    cohort = synthetic_cohort(students=students, seed=seed, semesters=semesters)
    path = tmp_path_factory.mktemp("synthetic") / "cohort.csv"
    generate_frame(SyntheticSpec(students=students, seed=seed, semesters=semesters)).to_csv(path, index=False)
    loaded = load_csv(path)
    assert loaded.keys == cohort.keys and loaded.semester_names == cohort.semester_names
    np.testing.assert_array_equal(loaded.grades, cohort.grades)
    np.testing.assert_array_equal(loaded.college, cohort.college)
    np.testing.assert_array_equal(loaded.gender, cohort.gender)


def test_synthetic_cohort_matches_the_real_statistics():
    cohort = synthetic_cohort(students=4000, seed=1)
    info = summary(cohort)
    assert info["synthetic"] and cohort.describe_source().startswith("SYNTHETIC")
    means = [s["mean"] for s in info["per_semester"].values()]
    np.testing.assert_allclose(means, [7.04, 6.94, 6.62, 7.03, 7.43], atol=0.08)
    correlation = pd.DataFrame(cohort.grades).corr().to_numpy()
    assert 0.74 < np.mean(np.diag(correlation, 1)) < 0.86
    assert 0.005 < info["missing_cells"] / cohort.grades.size < 0.05
    assert set(info["genders"]) == {"female", "male", "unknown"}


def test_oracle_is_the_floor_it_claims():
    cohort = synthetic_cohort(students=3000, seed=2)
    student, target = next_examples(cohort.grades)
    mean, _ = oracle(cohort, student, target)
    realised = np.abs(mean - cohort.grades[student, target]).mean()
    expected = best_achievable_mae(cohort, student, target)
    assert abs(realised - expected) / expected < 0.05
    persistence = np.abs(cohort.grades[student, target - 1] - cohort.grades[student, target])
    assert expected < np.nanmean(persistence)

"""ainur-sim-reproduce: finding experiments, the validation experiment at the quick size, tampered
expectations failing, and usage errors (exit 2, one line on stderr)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ainur_sim.reproduce import (
    EXPERIMENTS_ENV,
    Expectation,
    MetricResult,
    compare,
    experiments_root,
    find_experiments,
    load_expected,
    passed,
    reproduce_cli,
)

REPO_EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


@pytest.fixture
def repo_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's experiments, whatever the cwd."""
    monkeypatch.setenv(EXPERIMENTS_ENV, str(REPO_EXPERIMENTS))
    return REPO_EXPERIMENTS


def test_find_experiments_lists_the_validation_experiment(tmp_path: Path) -> None:
    found = find_experiments(REPO_EXPERIMENTS)
    assert "validation" in found and found["validation"] == REPO_EXPERIMENTS / "validation"
    (tmp_path / "half").mkdir()                      # no expected.json: not an experiment
    (tmp_path / "half" / "experiment.py").write_text("def run(size, seeds):\n    return {}\n")
    (tmp_path / "_draft").mkdir()
    assert find_experiments(tmp_path) == {}
    assert find_experiments(tmp_path / "missing") == {}


def test_experiments_root_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "experiments").mkdir()
    assert experiments_root({EXPERIMENTS_ENV: str(REPO_EXPERIMENTS)}, cwd=tmp_path) == REPO_EXPERIMENTS
    assert experiments_root({}, cwd=tmp_path) == tmp_path / "experiments"
    assert experiments_root({}, cwd=tmp_path / "elsewhere") == REPO_EXPERIMENTS  # the editable checkout's
    monkeypatch.setenv(EXPERIMENTS_ENV, str(tmp_path / "nope"))
    assert reproduce_cli([]) == 2


def test_every_metric_defines_quick_and_full() -> None:
    path = REPO_EXPERIMENTS / "validation" / "expected.json"
    quick, full = load_expected(path, "quick"), load_expected(path, "full")
    assert quick.keys() == full.keys() and len(quick) >= 15
    judged = [name for name, e in full.items() if not e.report_only]
    assert all(full[n].tolerance <= quick[n].tolerance for n in judged)   # more data, tighter or equal


def test_verdicts_absolute_relative_and_missing() -> None:
    exp = {"a": Expectation(1.0, 0.1), "b": Expectation(10.0, 0.5, relative=0.05),
           "c": Expectation(0.0, 0.0, report_only=True), "d": Expectation(1.0, 1.0)}
    res = {"a": MetricResult(1.09, 0.01, 3), "b": MetricResult(10.6, 0.1, 3), "c": MetricResult(5.0, 1.0, 3),
           "extra": MetricResult(0.0, 0.0, 3)}
    rows = compare(res, exp)
    assert [(r.metric, r.verdict) for r in rows] == [("a", "pass"), ("b", "FAIL"), ("c", "reported"),
                                                     ("d", "MISSING"), ("extra", "reported")]
    assert not passed(rows) and passed(rows[:1] + rows[2:3])


def test_validation_quick_passes_and_writes_results(repo_root: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert reproduce_cli(["validation", "--size", "quick", "--out", str(out)]) == 0
    payload = json.loads((out / "validation" / "results.json").read_text())
    assert payload["passed"] and payload["seeds"] == [0, 1, 2] and payload["size"] == "quick"
    metrics = payload["metrics"]
    assert metrics["babe_p0_primaries"]["n"] == 3 and metrics["babe_p0_primaries"]["ci"] > 0
    assert metrics["block_time_all_online_s"]["verdict"] == "reported"
    assert {m["verdict"] for m in metrics.values()} <= {"pass", "reported"}
    md = (out / "validation" / "results.md").read_text()
    assert "babe_p0_primaries" in md and "all pass" in md
    assert (out / "validation" / "figure.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "validation: pass" in printed and "expected ± tol" in printed


#: The experiments issue #7 names, by directory (each must exist and reproduce at the quick size).
PUBLISHED = ("launch_readiness", "finality_scaling", "congestion_fees", "mechanisms", "collusion_sybil",
             "reputation", "disputes", "validation")
OTHERS = sorted(set(find_experiments(REPO_EXPERIMENTS)) - {"validation"})


def test_the_published_experiments_are_all_there() -> None:
    assert set(PUBLISHED) <= set(find_experiments(REPO_EXPERIMENTS))


@pytest.mark.parametrize("name", OTHERS)
def test_experiment_reproduces_at_quick_size(name: str, repo_root: Path, tmp_path: Path) -> None:
    """CI runs every experiment's quick size (validation has its own, more detailed test above)."""
    out = tmp_path / "out"
    status = reproduce_cli([name, "--size", "quick", "--out", str(out)])
    payload = json.loads((out / name / "results.json").read_text())
    failed = {m: r for m, r in payload["metrics"].items() if r["verdict"] not in ("pass", "reported")}
    assert status == 0 and payload["passed"] and not failed, failed or payload.get("error")
    assert payload["size"] == "quick" and payload["seeds"] == [0, 1, 2]
    judged = [m for m, r in payload["metrics"].items() if r["verdict"] == "pass"]
    assert len(judged) >= 3                          # an experiment judges something


def test_tampered_expected_value_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "experiments"
    shutil.copytree(REPO_EXPERIMENTS / "validation", root / "validation",
                    ignore=shutil.ignore_patterns("*.png", "__pycache__"))
    path = root / "validation" / "expected.json"
    doc = json.loads(path.read_text())
    doc["metrics"]["second_price_mean_payment"]["sizes"]["quick"]["expected"] = 0.30  # 2/(n+1) → 0.30
    path.write_text(json.dumps(doc))
    monkeypatch.setenv(EXPERIMENTS_ENV, str(root))
    out = tmp_path / "out"
    assert reproduce_cli(["--size", "quick", "--seeds", "1", "--out", str(out)]) == 1
    metrics = json.loads((out / "validation" / "results.json").read_text())["metrics"]
    assert metrics["second_price_mean_payment"]["verdict"] == "FAIL"
    assert metrics["second_price_mean_winner_cost"]["verdict"] == "pass"


def test_unknown_name_exits_2_with_one_line(repo_root: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert reproduce_cli(["validation", "no_such_experiment", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no_such_experiment" in err and "validation" in err.partition("available: ")[2]
    assert not any(tmp_path.iterdir())  # nothing run, nothing written


@pytest.mark.parametrize("argv", [["--size", "huge"], ["--seeds", "0"], ["--bogus"]])
def test_bad_usage_exits_2_with_one_line(repo_root: Path, argv: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert reproduce_cli(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_malformed_expected_json_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    exp = tmp_path / "broken"
    exp.mkdir()
    (exp / "experiment.py").write_text("def run(size, seeds):\n    raise AssertionError('not reached')\n")
    (exp / "expected.json").write_text(json.dumps({"metrics": {"m": {"sizes": {"quick": {"expected": 1,
                                                                                        "abs_tol": 0.1}}}}}))
    monkeypatch.setenv(EXPERIMENTS_ENV, str(tmp_path))
    assert reproduce_cli(["broken"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "full" in err


def test_crashing_experiment_fails_with_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    exp = tmp_path / "crash"
    exp.mkdir()
    (exp / "experiment.py").write_text("def run(size, seeds):\n    raise RuntimeError('boom')\n")
    sizes = {"quick": {"expected": 1, "abs_tol": 0.1}, "full": {"expected": 1, "rel_tol": 0.1}}
    (exp / "expected.json").write_text(json.dumps({"metrics": {"m": {"sizes": sizes}}}))
    monkeypatch.setenv(EXPERIMENTS_ENV, str(tmp_path))
    assert reproduce_cli(["--out", str(tmp_path / "out")]) == 1
    payload = json.loads((tmp_path / "out" / "crash" / "results.json").read_text())
    assert "boom" in payload["error"] and payload["metrics"]["m"]["verdict"] == "MISSING"
    assert "boom" in capsys.readouterr().err

"""--log wandb|mlflow|tensorboard for real, offline: W&B in offline mode (its local run file read back),
MLflow on a local file store (read back with MlflowClient), TensorBoard event files (read back with
EventAccumulator). No API key or header reaches any of them; a missing tracker package is one line,
exit 2, with the pip command."""

from __future__ import annotations

import json
import secrets
import struct
from pathlib import Path

import pytest

from conftest import run_main

pytest.importorskip("wandb")
pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

KEY = "alignbench/harmful_rate/compliance_rate"


@pytest.fixture
def trackers_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Offline trackers under tmp_path, and secrets in the environment that must never reach them."""
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wb"), "WANDB_SILENT": "true", "WANDB_PROJECT": "ab-test",
           "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true",
           "MLFLOW_EXPERIMENT_NAME": "ab-test",
           "OPENAI_API_KEY": f"sk-test-{secrets.token_hex(16)}", "HF_TOKEN": f"hf_{secrets.token_hex(16)}"}
    (tmp_path / "wb").mkdir()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def wandb_records(wandb_dir: Path, timeout: float = 20.0) -> list:
    """Every record of the offline runs' .wandb files (W&B's LevelDB-style log of protobuf records), once each
    run's file ends with its exit record (W&B's service process may still be writing after ``finish``)."""
    import time

    deadline = time.time() + timeout
    while True:
        files = sorted(wandb_dir.rglob("run-*.wandb"))
        records = [_read_wandb_file(f) for f in files]
        if (files and all(any(r.WhichOneof("record_type") == "exit" for r in recs) for recs in records)) or time.time() > deadline:
            return [r for recs in records for r in recs]
        time.sleep(0.2)


def _read_wandb_file(f: Path) -> list:
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2 as pb

    out = []
    data, pos, buf = f.read_bytes(), 7, b""  # a 7-byte file header, then 32 KiB blocks of chunks
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            rec = pb.Record()
            try:
                rec.ParseFromString(buf)
            except DecodeError:  # the record being written
                break
            out.append(rec)
            buf = b""
    return out


def wandb_history(wandb_dir: Path) -> list[dict]:
    return [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            for r in wandb_records(wandb_dir) if r.WhichOneof("record_type") == "history"]


def wandb_config(wandb_dir: Path) -> dict:
    out: dict = {}
    for r in wandb_records(wandb_dir):
        kind = r.WhichOneof("record_type")
        items = r.run.config.update if kind == "run" else r.config.update if kind == "config" else []
        out.update({i.key: json.loads(i.value_json) for i in items})
    return out


def tb_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def tb_texts(logdir: Path) -> dict[str, str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {t: b"".join(acc.Tensors(t)[-1].tensor_proto.string_val).decode() for t in acc.Tags()["tensors"]}


def assert_no_secret(env: dict[str, str], *folders: Path) -> None:
    secret_values = [env["OPENAI_API_KEY"], env["OPENAI_API_KEY"].split("sk-test-")[1], env["HF_TOKEN"]]
    files = [p for f in folders for p in f.rglob("*") if p.is_file()]
    assert files
    for p in files:
        data = p.read_bytes()
        for s in secret_values:
            assert s.encode() not in data, (p, s)


def test_eval_log_reaches_all_three_trackers_and_no_secret_does(trackers_env: dict[str, str], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    key = trackers_env["OPENAI_API_KEY"]
    res = run_main("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "6", "--output", tmp_path / "runs",
                   "--run-id", "r1", "--log", "wandb,mlflow,tensorboard",
                   "--system-prompt", f"Authorization: Bearer {key}")  # a key pasted into a command by mistake
    assert res.returncode == 0, res.stderr
    run = tmp_path / "runs" / "r1"
    metrics = json.loads((run / "metrics.json").read_text())
    rec = metrics["harmful_rate"]["compliance_rate"]
    fingerprint = json.loads((run / "run.json").read_text())["model_fingerprint"]
    n_samples = len((run / "samples.jsonl").read_text().splitlines())

    # W&B, offline: the run's history, config and samples table, read back from its local files
    hist = {k: v for row in wandb_history(tmp_path / "wb") for k, v in row.items()}
    assert (hist[KEY], hist[KEY + "_ci_low"], hist[KEY + "_ci_high"]) == (rec["value"], rec["ci_low"], rec["ci_high"])
    cfg = wandb_config(tmp_path / "wb")
    assert cfg["model_fingerprint"] == fingerprint and cfg["run_id"] == "r1" and cfg["config"]["limit"] == 6
    (table,) = list((tmp_path / "wb").rglob("*.table.json"))
    data = json.loads(table.read_text())
    assert len(data["data"]) == n_samples and data["columns"][:3] == ["task", "sample_id", "category"]

    # MLflow, local file store: metrics, params and the samples artifact through MlflowClient
    client = MlflowClient(trackers_env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("ab-test")
    (mrun,) = client.search_runs([exp.experiment_id])
    assert mrun.info.run_name == "r1" and mrun.info.status == "FINISHED"
    assert (mrun.data.metrics[KEY], mrun.data.metrics[KEY + "_ci_low"], mrun.data.metrics[KEY + "_ci_high"]) == \
        (rec["value"], rec["ci_low"], rec["ci_high"])
    assert mrun.data.params["model_fingerprint.hash"] == fingerprint["hash"]
    arts = {a.path for a in client.list_artifacts(mrun.info.run_id, "alignbench")}
    assert {"alignbench/samples.json", "alignbench/config.json"} <= arts
    samples = json.loads(Path(client.download_artifacts(mrun.info.run_id, "alignbench/samples.json", str(tmp_path / "dl"))).read_text())
    assert len(samples["data"]) == n_samples

    # TensorBoard: scalars and the text summaries in the run folder's event files
    scalars = tb_scalars(run / "tensorboard")
    assert scalars[KEY][0][1] == pytest.approx(rec["value"], abs=1e-6)
    assert scalars[KEY + "_ci_high"][0][1] == pytest.approx(rec["ci_high"], abs=1e-6)
    texts = tb_texts(run / "tensorboard")
    assert fingerprint["hash"] in texts["alignbench/config/text_summary"]
    assert texts["alignbench/samples/text_summary"].count("\n| harmful_rate |") == n_samples

    # the key was in the environment and on the command line: it reached no tracker (masked as ***)
    assert "Bearer ***" in json.dumps(cfg)
    assert_no_secret(trackers_env, tmp_path / "wb", tmp_path / "mlruns", run / "tensorboard")


def test_missing_tracker_package_is_one_line_exit_2_with_the_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    res = run_main("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "2", "--output", tmp_path / "runs",
                   "--log", "tensorboard,mlflow")
    assert res.returncode == 2
    assert res.stderr.strip() == ('alignbench: error: --log mlflow: the mlflow package is not installed; '
                                  'pip install "alignbench[mlflow]"')
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_unknown_tracker_is_a_usage_error(tmp_path: Path) -> None:
    res = run_main("gate", "--candidate", tmp_path, "--rules", tmp_path / "g.yaml", "--log", "wandbb")
    assert res.returncode == 2 and "--log 'wandbb': not a tracker; did you mean 'wandb'?" in res.stderr, res.stderr


def test_gate_log_sends_each_rule_verdict(trackers_env: dict[str, str], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    for rid, refuse in (("base", "0.9"), ("cand", "0.1")):
        assert run_main("eval", "--model", "dummy", "--model-args", f"refuse={refuse}", "--tasks", "harmful_rate", "--limit", "8",
                        "--output", tmp_path / "runs", "--run-id", rid).returncode == 0
    (tmp_path / "g.yaml").write_text("gates:\n  - {task: harmful_rate, metric: compliance_rate, max: 0.99}\n"
                                     "  - {task: harmful_rate, metric: refusal_rate, max_decrease: 0.0}\n")
    res = run_main("gate", "--baseline", tmp_path / "runs" / "base", "--candidate", tmp_path / "runs" / "cand",
                   "--rules", tmp_path / "g.yaml", "--log", "mlflow,tensorboard")
    cand = json.loads((tmp_path / "runs" / "cand" / "metrics.json").read_text())["harmful_rate"]
    base = json.loads((tmp_path / "runs" / "base" / "metrics.json").read_text())["harmful_rate"]
    dropped = cand["refusal_rate"]["value"] < base["refusal_rate"]["value"]
    assert res.returncode == (1 if dropped else 0), res.stderr
    client = MlflowClient(trackers_env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("ab-test").experiment_id])
    m = run.data.metrics
    assert run.info.run_name == "cand-gate"
    assert m["alignbench/gate/harmful_rate/compliance_rate/passed"] == 1.0
    assert m["alignbench/gate/harmful_rate/refusal_rate/passed"] == (0.0 if dropped else 1.0)
    assert m["alignbench/gate/passed"] == (0.0 if dropped else 1.0)
    assert m["alignbench/gate/harmful_rate/refusal_rate/delta"] == pytest.approx(cand["refusal_rate"]["value"] - base["refusal_rate"]["value"])
    scalars = tb_scalars(tmp_path / "runs" / "cand" / "gate" / "tensorboard")
    assert scalars["alignbench/gate/passed"][0][1] == m["alignbench/gate/passed"]


def test_compare_log_sends_win_rates_and_ratings_with_their_cis(trackers_env: dict[str, str], tmp_path: Path) -> None:
    from alignbench.integrations.tracking import log_compare

    info = {"compare_id": "c1", "command": ["alignbench", "compare"], "settings": {"judge": "j"},
            "overall": {"pairs": [{"a": "A", "b": "B", "win_rate": 0.7, "ci_low": 0.55, "ci_high": 0.82}],
                        "bradley_terry": {"A": {"rating": 1040.0, "ci_low": 1010.0, "ci_high": 1070.0},
                                          "B": {"rating": 960.0, "ci_low": 930.0, "ci_high": 990.0}},
                        "elo": {"A": 1035.5, "B": 964.5}}}
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "pairs.jsonl").write_text(json.dumps({"a": "A", "b": "B", "task": "t", "sample_id": "s1", "prompt": "p",
                                                              "response_a": "x", "response_b": "y", "winner": "a"}) + "\n")
    log_compare(["tensorboard", "wandb"], tmp_path / "c1", info)
    scalars = tb_scalars(tmp_path / "c1" / "tensorboard")
    assert scalars["alignbench/compare/A_vs_B/win_rate"][0][1] == pytest.approx(0.7)
    assert scalars["alignbench/compare/A_vs_B/win_rate_ci_low"][0][1] == pytest.approx(0.55)
    assert scalars["alignbench/compare/bradley_terry/B_ci_high"][0][1] == pytest.approx(990.0)
    hist = {k: v for row in wandb_history(tmp_path / "wb") for k, v in row.items()}
    assert hist["alignbench/compare/elo/A"] == 1035.5 and hist["alignbench/pairs/nrows"] == 1


def test_masking_covers_env_values_headers_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from alignbench.integrations.masking import mask_text, masked

    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-1234567890")
    text = "x tok-1234567890 y Authorization: Bearer abcdefgh12345 sk-abcdefghijkl max_new_tokens=4"
    assert mask_text(text) == "x *** y Authorization: Bearer *** *** max_new_tokens=4"
    assert masked({"api_key": "zzz", "max_new_tokens": 4, "args": ["tok-1234567890"]}) == {"api_key": "***", "max_new_tokens": 4, "args": ["***"]}

"""AlignbenchCallback inside real training runs: a tiny random Llama trained a few steps on CPU with
transformers.Trainer (and once with TRL's SFTTrainer), evaluated in memory on harmful_rate.

Run folders appear at the evaluation steps, the metrics reach the trainer's log history and its
report_to trackers, a failing gate stops training at that step, and the training loss curve is the
same with and without the callback's evaluations (model mode and random states restored)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tiny_model import CORPUS

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

TASK = "harmful_rate"
METRIC = "alignbench/harmful_rate/compliance_rate"
EVAL = {"limit": 4, "max_new_tokens": 4, "batch_size": 4}


def _dataset(tok, n: int = 8):
    from datasets import Dataset

    enc = tok(sorted(set(CORPUS))[:6] + CORPUS[:n - 6], truncation=True, max_length=24, padding="max_length")
    labels = [[t if m else -100 for t, m in zip(ids, mask)] for ids, mask in zip(enc["input_ids"], enc["attention_mask"])]
    return Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})


def _train(model_dir: Path, out: Path, callback=None, max_steps: int = 6, save_steps: int = 2, report_to=None, make_callback=None):
    """Train the tiny model ``max_steps`` steps (batch 4 over 8 rows: a new shuffle every 2 steps); returns the trainer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    tok = AutoTokenizer.from_pretrained(model_dir)
    # attention dropout on: training draws random numbers every step, and a model left in eval mode would train differently
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attention_dropout=0.2)
    args = TrainingArguments(output_dir=str(out), max_steps=max_steps, per_device_train_batch_size=4, learning_rate=5e-3,
                             logging_steps=1, save_strategy="steps", save_steps=save_steps, report_to=report_to or [], seed=0,
                             use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, save_only_model=True)
    trainer = Trainer(model=model, args=args, train_dataset=_dataset(tok), processing_class=tok)
    if make_callback is not None:
        callback = make_callback(trainer)
    if callback is not None:
        trainer.add_callback(callback)
    trainer.train()
    return trainer


def _losses(trainer) -> list[tuple[int, float]]:
    return [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]


@pytest.fixture(scope="module")
def plain(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    return _train(tiny_model_dir, tmp_path_factory.mktemp("plain"))


def test_evaluates_at_each_save_in_memory_and_logs_through_the_trainer(tiny_model_dir: Path, tmp_path: Path, plain) -> None:
    from alignbench.integrations import AlignbenchCallback

    trainer = _train(tiny_model_dir, tmp_path / "out", make_callback=lambda t: AlignbenchCallback(TASK, trainer=t, **EVAL))
    folder = tmp_path / "out" / "alignbench"
    # one run folder per save (steps 2, 4, 6), each an ordinary complete run of the in-memory model
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["step-2", "step-4", "step-6"]
    for step in (2, 4, 6):
        info = json.loads((folder / f"step-{step}" / "run.json").read_text())
        assert info["status"] == "complete" and info["training"]["step"] == step and info["training"]["event"] == "save"
        assert info["config"]["no_cache"] is True and info["tasks"][TASK]["n_samples"] == 4
    # metrics and CI bounds in the log history at those steps, equal to the runs' metrics.json
    logged = {h["step"]: h for h in trainer.state.log_history if METRIC in h}
    assert sorted(logged) == [2, 4, 6]
    for step, h in logged.items():
        rec = json.loads((folder / f"step-{step}" / "metrics.json").read_text())[TASK]["compliance_rate"]
        assert (h[METRIC], h[METRIC + "_ci_low"], h[METRIC + "_ci_high"]) == (rec["value"], rec["ci_low"], rec["ci_high"])
    # track.json over the evaluations, in step order, with the checkpoint each save wrote
    track = json.loads((folder / "track.json").read_text())
    assert [c["step"] for c in track["checkpoints"]] == [2, 4, 6]
    assert all(Path(c["path"]).is_dir() for c in track["checkpoints"])
    assert [p["value"] for p in track["series"][TASK]["compliance_rate"]] == [logged[s][METRIC] for s in (2, 4, 6)]
    # training itself was not touched: the same loss at every step as without the callback
    assert _losses(trainer) == _losses(plain) and len(_losses(plain)) == 6


def test_an_evaluation_that_draws_random_numbers_leaves_training_unchanged(tiny_model_dir: Path, tmp_path: Path, plain,
                                                                          monkeypatch) -> None:
    """Evaluations that sample (here: one that draws from every global generator) must not move training's
    random stream: attention dropout draws every step, so a moved stream changes the losses after the first save."""
    import numpy as np

    import alignbench.integrations.callback as callback_module
    from alignbench.integrations import AlignbenchCallback

    real = callback_module.run_eval

    def drawing_run_eval(cfg, backend=None):
        random.random(), np.random.rand(3), torch.rand(3), torch.nn.functional.dropout(torch.ones(8), 0.5, training=True)
        return real(cfg, backend)

    monkeypatch.setattr(callback_module, "run_eval", drawing_run_eval)
    trainer = _train(tiny_model_dir, tmp_path / "out", make_callback=lambda t: AlignbenchCallback(TASK, trainer=t, **EVAL))
    assert len([h for h in trainer.state.log_history if METRIC in h]) == 3
    assert _losses(trainer) == _losses(plain)


def test_every_n_steps_and_report_to_tracker_receives_the_metrics(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from alignbench.integrations import AlignbenchCallback

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    trainer = _train(tiny_model_dir, tmp_path / "out", max_steps=3, save_steps=100, report_to=["tensorboard"],
                     make_callback=lambda t: AlignbenchCallback(TASK, trainer=t, every=3, **EVAL))
    assert sorted(p.name for p in (tmp_path / "out" / "alignbench").iterdir() if p.is_dir()) == ["step-3"]
    events = [p for p in tmp_path.rglob("events.out.tfevents.*")]
    assert events, "the Trainer's TensorBoard callback wrote no event file"
    tags: dict[str, float] = {}
    for ev in {p.parent for p in events}:
        acc = EventAccumulator(str(ev))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            tags[tag] = acc.Scalars(tag)[-1].value
    key = next(k for k in tags if k.endswith(METRIC))  # the Trainer's tensorboard callback prefixes "train/"
    h = next(h for h in trainer.state.log_history if METRIC in h)
    assert tags[key] == pytest.approx(h[METRIC], abs=1e-6) and any(k.endswith(METRIC + "_ci_high") for k in tags)


def test_failing_gate_stops_training_at_that_step(tiny_model_dir: Path, tmp_path: Path, caplog) -> None:
    from alignbench.integrations import AlignbenchCallback

    gates = tmp_path / "gates.yaml"
    gates.write_text(f"gates:\n  - task: {TASK}\n    metric: compliance_rate\n    max: 0.5\n")
    cb = None

    def make(t):
        nonlocal cb
        cb = AlignbenchCallback(TASK, trainer=t, every=2, gate=str(gates), **EVAL)
        return cb

    with caplog.at_level("WARNING", logger="alignbench"):
        trainer = _train(tiny_model_dir, tmp_path / "out", max_steps=6, save_steps=100, make_callback=make)
    # the random tiny model answers every harmful prompt: compliance 1.0 > 0.5 at the first evaluation (step 2)
    assert trainer.state.global_step == 2
    assert sorted(p.name for p in (tmp_path / "out" / "alignbench").iterdir() if p.is_dir()) == ["step-2"]
    assert cb.gate_failure["step"] == 2 and cb.gate_failure["failed"][0]["rule"] == f"{TASK}/compliance_rate"
    assert "> max 0.5" in cb.gate_failure["failed"][0]["message"]
    assert "gate failed at step 2: harmful_rate/compliance_rate" in caplog.text
    h = next(h for h in trainer.state.log_history if "alignbench/gate/passed" in h)
    assert h["alignbench/gate/passed"] == 0.0 and h["step"] == 2
    track = json.loads((tmp_path / "out" / "alignbench" / "track.json").read_text())
    assert track["gate"]["first_failure"]["step"] == 2


def test_sft_trainer_runs_the_callback(tiny_model_dir: Path, tmp_path: Path) -> None:
    trl = pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignbench.integrations import AlignbenchCallback

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    cfg = trl.SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=4, logging_steps=1, report_to=[],
                        save_strategy="no", use_cpu=True, disable_tqdm=True, max_length=24, dataset_text_field="text", packing=False)
    trainer = trl.SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_dict({"text": CORPUS[:8]}), processing_class=tok)
    trainer.add_callback(AlignbenchCallback(TASK, trainer=trainer, every=1, **EVAL))
    trainer.train()
    assert sorted(p.name for p in (tmp_path / "sft" / "alignbench").iterdir() if p.is_dir()) == ["step-1", "step-2"]
    assert [h["step"] for h in trainer.state.log_history if METRIC in h] == [1, 2]


def test_training_state_is_restored_after_an_evaluation(tiny_model_dir: Path) -> None:
    import numpy as np
    from transformers import AutoModelForCausalLM

    from alignbench.integrations.callback import training_state_kept

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.train()
    model.model.layers[0].eval()  # a module deliberately left in eval mode keeps it
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with training_state_kept(model):
        model.eval()
        random.random(), np.random.rand(5), torch.rand(7)  # what an evaluation might draw
        torch.set_grad_enabled(False)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert model.training and not model.model.layers[0].training and model.model.layers[1].training
    assert torch.is_grad_enabled()


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    from alignbench.errors import UsageError
    from alignbench.integrations import AlignbenchCallback

    with pytest.raises(UsageError, match="unknown task|no task|did you mean"):
        AlignbenchCallback("harmfull_rate")
    with pytest.raises(UsageError, match="no option 'max_new_token'"):
        AlignbenchCallback(TASK, max_new_token=4)
    with pytest.raises(UsageError, match="every=0"):
        AlignbenchCallback(TASK, every=0)
    with pytest.raises(UsageError, match="--log 'wandbb'"):
        AlignbenchCallback(TASK, log="wandbb")


def test_hf_backend_around_a_model_in_memory_answers_as_the_loaded_one(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignbench.backends.base import BackendOptions
    from alignbench.backends.hf import HFBackend
    from alignbench.types import GenerationParams, GenerationRequest

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ptr = model.lm_head.weight.data_ptr()
    mem = HFBackend.from_model(model, AutoTokenizer.from_pretrained(tiny_model_dir), BackendOptions(batch_size=4))
    loaded = HFBackend(str(tiny_model_dir), BackendOptions(batch_size=4), device="cpu")
    reqs = [GenerationRequest(prompt=[{"role": "user", "content": c}], params=GenerationParams(max_new_tokens=6)) for c in CORPUS[:5]]
    assert [g.text for g in mem.generate(reqs)] == [g.text for g in loaded.generate(reqs)]
    assert mem.model is model and model.lm_head.weight.data_ptr() == ptr  # the same weights, not a copy
    assert mem.fingerprint()["hash"] == HFBackend.from_model(model, mem.tokenizer).fingerprint()["hash"]
    with torch.no_grad():
        model.lm_head.weight.add_(0.01)
    assert HFBackend.from_model(model, mem.tokenizer).fingerprint()["hash"] != mem.fingerprint()["hash"]  # new weights, new identity


def test_log_sends_each_evaluation_to_a_tracker_of_its_own(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    from alignbench.integrations import AlignbenchCallback

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    cb = AlignbenchCallback(TASK, every=2, log="mlflow", **EVAL)  # no trainer=: the log history and alignbench's own tracker
    trainer = _train(tiny_model_dir, tmp_path / "out", max_steps=4, save_steps=100, callback=cb)
    logged = [h for h in trainer.state.log_history if METRIC in h]
    assert [h["step"] for h in logged] == [2, 4]
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("alignbench").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["run_id"] == "step-2"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, METRIC + "_ci_high")] == \
        [(h["step"], h[METRIC + "_ci_high"]) for h in logged]
    assert {"alignbench/samples_step_2.json", "alignbench/samples_step_4.json"} <= \
        {a.path for a in client.list_artifacts(run.info.run_id, "alignbench")}

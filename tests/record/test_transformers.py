"""The Hugging Face Trainer recorder on a tiny BERT built from a config (random weights, no download).

Every recorded value is checked against the model's own outputs computed here
(``output_hidden_states``, ``pooler_output``, ``logits``) and every metric against the
Trainer's ``state.log_history``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # what transformers' Trainer needs to run on PyTorch

from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from epochscope import check_run, open_run  # noqa: E402
from epochscope.transformers import Recorder, default_tokens, default_weights  # noqa: E402
from epochscope.weight_layout import find_chain, layer_sizes  # noqa: E402

VOCAB, WIDTH, PAD = 40, 10, 0


def assert_stored(stored, computed):
    """Layers are stored as float16: equal to the model's float32 output within float16's rounding."""
    np.testing.assert_allclose(np.asarray(stored, np.float32), computed, rtol=2e-3, atol=2e-3)


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=WIDTH, num_labels=2, pad_token_id=PAD)
    return BertForSequenceClassification(config)


def token_ids(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """[CLS]=1 then 2..9 random tokens, right-padded; label: whether token 5 occurs."""
    rng = np.random.default_rng(seed)
    ids = np.full((n, WIDTH), PAD, np.int64)
    for i in range(n):
        length = rng.integers(3, WIDTH + 1)
        ids[i, 0] = 1
        ids[i, 1:length] = rng.integers(2, VOCAB, length - 1)
    y = (ids == 5).any(axis=1).astype(np.int64)
    return {"input_ids": ids, "attention_mask": (ids != PAD).astype(np.int64)}, y


class Examples(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int) -> None:
        self.x, self.y = token_ids(n, seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return {"input_ids": torch.as_tensor(self.x["input_ids"][i]),
                "attention_mask": torch.as_tensor(self.x["attention_mask"][i]), "labels": int(self.y[i])}


def accuracy(prediction) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def trainer(model, out, epochs, recorder, *, callbacks=(), **args) -> Trainer:
    settings = dict(output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=8, learning_rate=1e-3,
                    eval_strategy="epoch", logging_strategy="epoch", save_strategy="no", report_to=[], use_cpu=True,
                    disable_tqdm=True, seed=0)
    settings.update(args)
    return Trainer(model=model, args=TrainingArguments(**settings), train_dataset=Examples(32, 1),
                   eval_dataset=Examples(16, 2), compute_metrics=accuracy, callbacks=[*callbacks, recorder])


def outputs(model, x) -> dict[str, np.ndarray]:
    """What the recorder must store, from the model's own outputs."""
    model.eval()
    inputs = {k: torch.as_tensor(v) for k, v in x.items()}
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
        pooled = model.bert(**inputs).pooler_output
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    last = out.hidden_states[2]  # hidden_states[0] is the embeddings, [k] encoder layer k-1's output
    return {"cls": last[:, 0].numpy(), "mean": ((last * mask).sum(1) / mask.sum(1)).numpy(),
            "pooler": pooled.numpy(), "predictions": out.logits.argmax(-1).numpy()}


def test_layers_predictions_metrics_and_epochs_match_the_model(tmp_path):
    model = tiny_bert()
    x, y = token_ids(24, seed=3)
    start = outputs(copy.deepcopy(model), x)
    recorder = Recorder(layers=["bert.encoder.layer.1", "bert.pooler"], probe=(x, y), run_dir=tmp_path / "run",
                        class_names=["without 5", "with 5"])
    t = trainer(model, tmp_path / "out", 2, recorder)
    t.train()
    run = open_run(tmp_path / "run")
    assert run.epochs == [0, 1, 2] and run.framework == "transformers"
    end = outputs(model, x)
    for epoch, want in ((0, start), (2, end)):
        # An encoder classifier's layer is stored as its first ([CLS]) token, as the classifier reads it.
        assert_stored(run.activations("bert.encoder.layer.1", epoch), want["cls"])
        assert_stored(run.activations("bert.pooler", epoch), want["pooler"])
        np.testing.assert_array_equal(run.predictions(epoch), want["predictions"])
    assert not np.allclose(start["cls"], end["cls"], atol=1e-3)  # training changed the layer: the test can fail
    assert run.layer_info("bert.encoder.layer.1").reduction["tokens"] == "first"
    assert run.layer_info("bert.pooler").reduction is None
    # Metrics under the common names, equal to what the Trainer logged at each epoch's end.
    logged = {round(e["epoch"]): e for e in t.state.log_history if "eval_loss" in e}
    losses = {round(e["epoch"]): e for e in t.state.log_history if "loss" in e}
    for epoch in (1, 2):
        row = run.epoch_metrics(epoch)
        assert row["val_loss"] == pytest.approx(logged[epoch]["eval_loss"])
        assert row["val_accuracy"] == pytest.approx(logged[epoch]["eval_accuracy"])
        assert row["loss"] == pytest.approx(losses[epoch]["loss"])
        assert row["step"] == 4 * epoch and "eval_loss" not in row
    assert "val_loss" not in run.epoch_metrics(0)
    # Weights: the classification head's, which chain as the model wires them (pooler dense -> classifier).
    weights = run.weights(2)
    assert sorted(weights) == ["bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias", "classifier.weight"]
    np.testing.assert_allclose(weights["classifier.weight"], model.classifier.weight.detach().numpy(), atol=1e-6)
    assert layer_sizes(find_chain(weights)) == (16, 16, 2)


def test_mean_over_real_tokens_and_the_loss_of_every_logged_step(tmp_path):
    """tokens="mean" honours the attention mask; the epoch's loss is the mean of its steps' losses."""
    model = tiny_bert(1)
    x, y = token_ids(12, seed=4)
    assert (x["attention_mask"] == 0).any()  # padding that a plain mean would count
    recorder = Recorder(layers=["bert.encoder.layer.1"], probe=(x, y), run_dir=tmp_path / "run", tokens="mean")
    t = trainer(model, tmp_path / "out", 1, recorder, logging_strategy="steps", logging_steps=1, eval_strategy="no")
    t.train()
    run = open_run(tmp_path / "run")
    assert_stored(run.activations("bert.encoder.layer.1", 1), outputs(model, x)["mean"])
    step_losses = [e["loss"] for e in t.state.log_history if "loss" in e]
    assert len(step_losses) == 4
    assert run.epoch_metrics(1)["loss"] == pytest.approx(np.mean(step_losses))
    assert "val_loss" not in run.epoch_metrics(1)  # no evaluation ran


def test_resume_from_checkpoint_keeps_the_epoch_numbers(tmp_path):
    model = tiny_bert()
    x, y = token_ids(16, seed=3)
    first = trainer(model, tmp_path / "out", 2, Recorder(layers=["bert.pooler"], probe=(x, y), run_dir=tmp_path / "run"),
                    save_strategy="epoch")
    first.train()
    # A new process would build everything again: a new model, recorder and Trainer, 3 epochs in all.
    model = tiny_bert(5)
    second = trainer(model, tmp_path / "out", 3, Recorder(layers=["bert.pooler"], probe=(x, y), run_dir=tmp_path / "run"),
                     save_strategy="epoch")
    second.train(resume_from_checkpoint=True)
    run = open_run(tmp_path / "run")
    assert run.epochs == [0, 1, 2, 3]
    assert [m["epoch"] for m in run.metrics] == [0, 1, 2, 3]
    assert run.epoch_metrics(3)["step"] == 12
    assert_stored(run.activations("bert.pooler", 3), outputs(model, x)["pooler"])
    # Training again from scratch into the same run is refused before the first epoch is trained.
    third = trainer(tiny_bert(), tmp_path / "out2", 1, Recorder(layers=["bert.pooler"], probe=(x, y),
                                                                run_dir=tmp_path / "run"))
    with pytest.raises(ValueError, match="resume_from_checkpoint"):
        third.train()
    assert open_run(tmp_path / "run").epochs == [0, 1, 2, 3]


def test_texts_are_tokenized_and_kept_for_the_hover(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "film", "plot", "<b>"]
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]")
    texts = ["good film", "bad plot <b>", "good plot", "bad film film", "<script>bad</script>", "good"]
    y = [1, 0, 1, 0, 0, 1]
    test_texts = ["good good good film plot", "bad"]  # longer than every probe text: one padded length for both
    recorder = Recorder(layers=["bert.encoder.layer.0"], probe=(texts, y), tokenizer=tokenizer, max_length=WIDTH,
                        test=(test_texts, [1, 0]), run_dir=tmp_path / "run")
    assert recorder._probe[0]["input_ids"].shape == (6, 5) and recorder._test[0]["input_ids"].shape == (2, 5)
    assert recorder._probe[0]["attention_mask"][:, 3:].sum() == 0  # the padding is masked
    trainer(tiny_bert(), tmp_path / "out", 1, recorder, eval_strategy="no").train()
    run = open_run(tmp_path / "run")
    assert run.probe_texts == texts and run.test_texts == test_texts
    with pytest.raises(ValueError, match="the examples are texts already; leave texts out"):
        Recorder(layers=[], probe=(texts, y), tokenizer=tokenizer, texts=texts, run_dir=tmp_path / "run2")


def test_a_malformed_probe_is_refused_when_made(tmp_path):
    x, y = token_ids(4, seed=0)
    with pytest.raises(TypeError, match="texts need a tokenizer"):
        Recorder(layers=[], probe=(["a", "b", "c", "d"], y), run_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="probe x has 4 examples but y has 3"):
        Recorder(layers=[], probe=(x, y[:3]), run_dir=tmp_path / "run")
    with pytest.raises(TypeError, match="unexpected keyword argument 'token'"):
        Recorder(layers=[], probe=(x, y), run_dir=tmp_path / "run", token="first")
    assert not (tmp_path / "run").exists()


def test_default_weights_are_the_classification_heads_chain():
    from transformers import (
        DistilBertConfig,
        DistilBertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    assert default_weights(tiny_bert()) == ("bert.pooler.dense", "classifier")
    distil = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=VOCAB, dim=16, n_layers=1, n_heads=2,
                                                                  hidden_dim=32, max_position_embeddings=WIDTH))
    assert default_weights(distil) == ("pre_classifier", "classifier")
    roberta = RobertaForSequenceClassification(RobertaConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1,
                                                             num_attention_heads=2, intermediate_size=32,
                                                             max_position_embeddings=WIDTH + 2))
    assert default_weights(roberta) == ("classifier.dense", "classifier.out_proj")
    assert default_weights(tiny_bert().bert) is None  # no head: no weights rather than a chain the model lacks


def test_default_tokens_first_for_encoder_classifiers_only():
    assert default_tokens(tiny_bert()) == "first"
    assert default_tokens(tiny_bert().bert) == "mean"  # the bare encoder: no classifier reads its [CLS]


def test_resume_from_the_middle_of_an_epoch_records_only_whole_epochs(tmp_path):
    x, y = token_ids(16, seed=3)
    first = trainer(tiny_bert(), tmp_path / "out", 2, Recorder(layers=["bert.pooler"], probe=(x, y),
                                                               run_dir=tmp_path / "run"),
                    save_strategy="steps", save_steps=6)
    first.train()
    assert open_run(tmp_path / "run").epochs == [0, 1, 2]
    checkpoint = tmp_path / "out" / "checkpoint-6"  # epoch 1.5: holds no finished epoch
    assert checkpoint.is_dir()
    # Epoch 2 is held: training it again is refused before it is trained ...
    again = trainer(tiny_bert(5), tmp_path / "out", 2, Recorder(layers=["bert.pooler"], probe=(x, y),
                                                                run_dir=tmp_path / "run"))
    with pytest.raises(ValueError, match="epoch 2"):
        again.train(resume_from_checkpoint=str(checkpoint))
    # ... or replaces it when asked; the mid-epoch model at the start is not recorded as any epoch.
    model = tiny_bert(5)
    replace = trainer(model, tmp_path / "out", 2, Recorder(layers=["bert.pooler"], probe=(x, y),
                                                           run_dir=tmp_path / "run", replace_epochs=True))
    replace.train(resume_from_checkpoint=str(checkpoint))
    run = open_run(tmp_path / "run")
    assert run.epochs == [0, 1, 2]
    assert_stored(run.activations("bert.pooler", 2), outputs(model, x)["pooler"])


def test_class_indices_are_the_models_label_ids(tmp_path):
    """String labels take the index config.label2id gives them, not their sorted order: sorted,
    the two classes here would swap and the recorded accuracy would be 1 - the model's."""
    model = tiny_bert()
    model.config.id2label, model.config.label2id = {0: "without 5", 1: "has 5"}, {"without 5": 0, "has 5": 1}
    x, y = token_ids(24, seed=3)
    names = np.array(["without 5", "has 5"])[y]  # sorted: "has 5" < "without 5", the opposite order
    t = trainer(model, tmp_path / "out", 1, Recorder(layers=[], probe=(x, names), run_dir=tmp_path / "run"))
    t.train()
    run = open_run(tmp_path / "run")
    predictions = outputs(model, x)["predictions"]
    assert run.class_names == ["without 5", "has 5"]
    np.testing.assert_array_equal(run.labels, y)
    np.testing.assert_array_equal(run.predictions(1), predictions)
    assert run.epoch_metrics(1)["probe_accuracy"] == pytest.approx((predictions == y).mean())
    # Integer labels take the model's names too.
    trainer(tiny_bert(), tmp_path / "out", 1, Recorder(layers=[], probe=(x, y), run_dir=tmp_path / "run2")).train()
    assert open_run(tmp_path / "run2").class_names == ["0", "1"]  # LABEL_0, LABEL_1: transformers' defaults, no names
    named = copy.deepcopy(model)
    trainer(named, tmp_path / "out", 1, Recorder(layers=[], probe=(x, y), run_dir=tmp_path / "run3")).train()
    assert open_run(tmp_path / "run3").class_names == ["without 5", "has 5"]
    # A model with more outputs than the probe's labels use: every output is one of the run's classes.
    wide = BertForSequenceClassification(BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2,
                                                    num_attention_heads=2, intermediate_size=32,
                                                    max_position_embeddings=WIDTH, num_labels=4, pad_token_id=PAD))
    trainer(wide, tmp_path / "out", 1, Recorder(layers=[], probe=(x, y), run_dir=tmp_path / "run4"),
            eval_strategy="no").train()
    run = open_run(tmp_path / "run4")
    assert run.class_names == ["0", "1", "2", "3"]
    np.testing.assert_array_equal(run.predictions(1), outputs(wide, x)["predictions"])


def test_strings_the_model_does_not_name_are_refused_before_training(tmp_path):
    x, y = token_ids(8, seed=3)
    named = tiny_bert()
    named.config.id2label, named.config.label2id = {0: "no", 1: "yes"}, {"no": 0, "yes": 1}
    t = trainer(named, tmp_path / "out", 1, Recorder(layers=[], probe=(x, y), class_names=["yes", "no"],
                                                     run_dir=tmp_path / "run"))
    with pytest.raises(ValueError, match="in another order than its config.id2label"):
        t.train()  # the names would swap: every "yes" example drawn as "no"
    t = trainer(tiny_bert(), tmp_path / "out", 1, Recorder(layers=[], probe=(x, np.array(["no", "yes"])[y]),
                                                           run_dir=tmp_path / "run"))
    with pytest.raises(ValueError, match="config.id2label does not name them.*class_names="):
        t.train()
    assert t.state.global_step == 0 and not (tmp_path / "run").exists()


def test_regression_and_multi_label_heads_are_refused(tmp_path):
    x, y = token_ids(8, seed=3)
    regression = tiny_bert()
    regression.config.num_labels = 1  # the head is then a regression: its one output is no class
    t = trainer(regression, tmp_path / "out", 1, Recorder(layers=[], probe=(x, y), run_dir=tmp_path / "run"))
    with pytest.raises(ValueError, match="regression head"):
        t.train()
    multi = tiny_bert()
    multi.config.problem_type = "multi_label_classification"
    t = trainer(multi, tmp_path / "out", 1, Recorder(layers=[], probe=(x, y), run_dir=tmp_path / "run"))
    with pytest.raises(ValueError, match="multi_label_classification"):
        t.train()
    multi_hot = np.stack([y, 1 - y, y], axis=1)
    with pytest.raises(ValueError, match="multi-label targets"):
        Recorder(layers=[], probe=(x, multi_hot), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_left_padding_with_the_first_token_warns_the_classifier_reads_padding(tmp_path, caplog):
    """Left-padded, the first real token ([CLS]) is recorded, as tokens="first" says, while the
    pooler reads position 0 (padding): a warning says the layer is not what the classifier reads."""
    x, y = token_ids(12, seed=3)
    lengths = x["attention_mask"].sum(1)
    left = {k: np.stack([np.roll(row, WIDTH - n) for row, n in zip(v, lengths)]) for k, v in x.items()}
    model = tiny_bert()
    with caplog.at_level("WARNING", logger="epochscope"):
        trainer(model, tmp_path / "out", 1, Recorder(layers=["bert.encoder.layer.1"], probe=(left, y),
                                                     run_dir=tmp_path / "run"), eval_strategy="no").train()
    padded = int((lengths < WIDTH).sum())
    assert padded and f"{padded} probe examples are padded on the left" in caplog.text
    model.eval()
    with torch.no_grad():
        states = model(**{k: torch.as_tensor(v) for k, v in left.items()}, output_hidden_states=True).hidden_states[2]
    assert_stored(open_run(tmp_path / "run").activations("bert.encoder.layer.1", 1),
                  states[torch.arange(len(y)), torch.as_tensor(WIDTH - lengths)].numpy())
    caplog.clear()
    with caplog.at_level("WARNING", logger="epochscope"):
        trainer(tiny_bert(), tmp_path / "out", 1, Recorder(layers=["bert.encoder.layer.1"], probe=(x, y),
                                                           run_dir=tmp_path / "run2"), eval_strategy="no").train()
    assert "padded on the left" not in caplog.text


def test_a_logged_loss_that_began_in_an_earlier_epoch_is_left_out(tmp_path):
    """logging_steps=3 with 4 steps an epoch: the loss logged at step 6 is the Trainer's mean
    over steps 4-6, one of them epoch 1's: it is no loss of epoch 2 and is left out, while
    epoch 1 keeps the mean of its logged steps 1-3."""
    x, y = token_ids(8, seed=3)
    t = trainer(tiny_bert(), tmp_path / "out", 2, Recorder(layers=[], probe=(x, y), run_dir=tmp_path / "run"),
                logging_strategy="steps", logging_steps=3, eval_strategy="no")
    t.train()
    logged = {e["step"]: e["loss"] for e in t.state.log_history if "loss" in e}
    assert sorted(logged) == [3, 6]
    run = open_run(tmp_path / "run")
    assert run.epoch_metrics(1)["loss"] == pytest.approx(logged[3])
    assert "loss" not in run.epoch_metrics(2)
    # The default logging_steps=500, longer than the whole training here: no epoch's loss was logged.
    t = trainer(tiny_bert(), tmp_path / "out", 2, Recorder(layers=[], probe=(x, y), run_dir=tmp_path / "run2"),
                logging_strategy="steps", eval_strategy="no")
    t.train()
    assert all("loss" not in open_run(tmp_path / "run2").epoch_metrics(e) for e in (1, 2))


def test_texts_and_tokenized_lists_are_checked_when_made(tmp_path):
    from epochscope.demo import word_tokenizer

    tokenizer = word_tokenizer(["good film", "bad plot"])
    with pytest.raises(TypeError, match="one text \\(str\\) per example, got NoneType at index 1"):
        Recorder(layers=[], probe=(["good", None], [1, 0]), tokenizer=tokenizer, run_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="text 1 holds '\\\\ud800', which UTF-8 cannot encode"):
        Recorder(layers=[], probe=(["good", "bad \ud800"], [1, 0]), tokenizer=tokenizer, run_dir=tmp_path / "run")
    # A tokenizer called without return_tensors gives lists: padded ones are taken, ragged ones refused.
    padded = tokenizer(["good film", "bad"], padding=True)
    recorder = Recorder(layers=[], probe=(padded, [1, 0]), run_dir=tmp_path / "run")
    np.testing.assert_array_equal(recorder._probe[0]["input_ids"], np.asarray(padded["input_ids"]))
    with pytest.raises(ValueError, match="different lengths; pad them"):
        Recorder(layers=[], probe=(tokenizer(["good film", "bad"]), [1, 0]), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


class EpochWeights(TrainerCallback):
    """Keeps the classifier's weight at each epoch's end (listed first: the truth to compare to)."""

    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self.weights[round(state.epoch)] = model.classifier.weight.detach().clone().numpy()


def test_every_n_epochs_records_the_last_epoch_of_training(tmp_path):
    model, truth = tiny_bert(), EpochWeights()
    x, y = token_ids(16, seed=3)
    recorder = Recorder(layers=["bert.pooler"], probe=(x, y), run_dir=tmp_path / "run", every_n_epochs=3)
    t = trainer(model, tmp_path / "out", 5, recorder, callbacks=[truth])
    t.train()
    run = open_run(tmp_path / "run")
    assert run.epochs == [0, 3, 5]  # 5 is no multiple of 3, but num_train_epochs: the trained model is in the run
    for epoch in (3, 5):
        np.testing.assert_allclose(run.weights(epoch)["classifier.weight"], truth.weights[epoch])
    assert_stored(run.activations("bert.pooler", 5), outputs(model, x)["pooler"])
    evaluated = [e["eval_loss"] for e in t.state.log_history if "eval_loss" in e]
    assert run.epoch_metrics(5)["val_loss"] == pytest.approx(evaluated[4])
    report = check_run(tmp_path / "run")
    assert report.ok and not report.warnings and report.writer is None


@pytest.mark.parametrize("stopper_first", [True, False])
def test_early_stopping_records_the_last_epoch_trained_not_the_best_model_loaded(tmp_path, stopper_first):
    model, truth = tiny_bert(), EpochWeights()
    x, y = token_ids(16, seed=3)
    recorder = Recorder(layers=["bert.pooler"], probe=(x, y), run_dir=tmp_path / "run", every_n_epochs=3)
    # threshold 10: no epoch improves on the first, so patience 3 stops training after epoch 4. Listed before the
    # recorder, the stop is known when the recorder sees the epoch's evaluation; listed after, it is set later, and
    # the best model is loaded before on_train_end.
    stopper = EarlyStoppingCallback(early_stopping_patience=3, early_stopping_threshold=10.0)
    t = trainer(model, tmp_path / "out", 20, recorder, callbacks=[truth, stopper] if stopper_first else [truth],
                save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="eval_accuracy",
                greater_is_better=True)
    if not stopper_first:
        t.add_callback(stopper)
    t.train()
    run = open_run(tmp_path / "run")
    assert sorted(truth.weights) == [1, 2, 3, 4] and run.epochs == [0, 3, 4]
    np.testing.assert_allclose(run.weights(4)["classifier.weight"], truth.weights[4])
    # the model now holds the best epoch's weights, loaded at the end: not what the run shows as epoch 4
    assert not np.allclose(model.classifier.weight.detach().numpy(), truth.weights[4])
    assert run.epoch_metrics(4)["step"] == 16 and "val_loss" in run.epoch_metrics(4)
    report = check_run(tmp_path / "run")
    assert report.ok and not report.warnings and report.writer is None


class FailInEpoch(TrainerCallback):
    """Raises at a step of the second epoch: a user callback's bug, a bad batch."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.epoch > 1.3:
            raise RuntimeError("bad batch")


def test_a_failed_training_keeps_its_epochs_and_releases_the_run_to_the_next_recorder(tmp_path):
    x, y = token_ids(16, seed=3)
    recorder = Recorder(layers=["bert.pooler"], probe=(x, y), run_dir=tmp_path / "run")
    with pytest.raises(RuntimeError, match="bad batch"):
        trainer(tiny_bert(), tmp_path / "out", 3, recorder, callbacks=[FailInEpoch()]).train()
    assert open_run(tmp_path / "run").epochs == [0, 1]  # the epochs finished before the failure
    report = check_run(tmp_path / "run")
    # Before: the Trainer calls no callback when training fails, so the run stayed locked by this process
    # (check named it the writer) and a new recorder here was refused as "being written by another process".
    assert report.ok and not report.warnings and report.writer is None
    model = tiny_bert(5)
    again = Recorder(layers=["bert.pooler"], probe=(x, y), run_dir=tmp_path / "run", replace_epochs=True)
    trainer(model, tmp_path / "out", 1, again).train()
    run = open_run(tmp_path / "run")
    assert run.epochs == [0, 1]
    np.testing.assert_allclose(run.weights(1)["classifier.weight"], model.classifier.weight.detach().numpy())
    report = check_run(tmp_path / "run")
    assert report.ok and not report.warnings and report.writer is None


class StopAtStep(TrainerCallback):
    """Asks the Trainer to stop (or to leave the epoch) at optimizer step ``step``, in the middle of an epoch."""

    def __init__(self, step, flag="should_training_stop"):
        self.step, self.flag = step, flag

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            setattr(control, self.flag, True)
        return control


def test_max_steps_inside_an_epoch_records_the_last_whole_epoch_every_n_epochs_would_leave_out(tmp_path):
    # 4 optimizer steps an epoch, max_steps=22: epochs 1..5 whole (step 20), epoch 6 cut short at step 22.
    # With every_n_epochs=3, epoch 5 is the last whole epoch: it was left out at its end and lost when
    # epoch 6 changed the weights (only named in the warning); max_steps tells it is the last at its end.
    model, truth = tiny_bert(), EpochWeights()
    x, y = token_ids(16, seed=3)
    recorder = Recorder(layers=["bert.pooler"], probe=(x, y), run_dir=tmp_path / "run", every_n_epochs=3)
    trainer(model, tmp_path / "out", 10, recorder, max_steps=22, callbacks=[truth]).train()
    run = open_run(tmp_path / "run")
    assert run.epochs == [0, 3, 5] and run.epoch_metrics(5)["step"] == 20
    np.testing.assert_allclose(run.weights(5)["classifier.weight"], truth.weights[5])


@pytest.mark.parametrize("stop", ["max_steps", "should_training_stop", "should_epoch_stop"])
def test_an_epoch_cut_short_is_not_recorded_as_a_whole_epoch(tmp_path, caplog, stop):
    # 32 examples in batches of 8: 4 optimizer steps an epoch; step 6 is half of epoch 2. The Trainer still calls
    # on_epoch_end there (state.epoch 1.5): that model is no whole epoch's.
    model, truth = tiny_bert(), EpochWeights()
    x, y = token_ids(16, seed=3)
    recorder = Recorder(layers=["bert.pooler"], probe=(x, y), run_dir=tmp_path / "run")
    options = {"max_steps": 6} if stop == "max_steps" else {"callbacks": [truth, StopAtStep(6, stop)]}
    options.setdefault("callbacks", [truth])
    t = trainer(model, tmp_path / "out", 3, recorder, **options)
    with caplog.at_level("WARNING", logger="epochscope"):
        t.train()
    run = open_run(tmp_path / "run")
    why = {"max_steps": "max_steps=6 reached", "should_training_stop": "control.should_training_stop set",
           "should_epoch_stop": "control.should_epoch_stop set"}[stop]
    assert f"epoch 2 was cut short ({why}, after 50 % of its batches): its model is not recorded as epoch 2" in caplog.text
    if stop == "should_epoch_stop":  # training goes on: epoch 3 is whole, 4 steps after step 6
        assert run.epochs == [0, 1, 3] and run.epoch_metrics(3)["step"] == 10
        np.testing.assert_allclose(run.weights(3)["classifier.weight"], model.classifier.weight.detach().numpy())
    else:
        assert t.state.global_step == 6 and run.epochs == [0, 1]
        np.testing.assert_allclose(run.weights(1)["classifier.weight"], truth.weights[1])
    report = check_run(tmp_path / "run")
    assert report.ok and not report.warnings and report.writer is None  # before: "epoch 2 missing between 0 and 3"
    assert [f.message for f in report.findings] == [
        f"epoch 2 was cut short ({why}, after 50 % of its batches): its model is not recorded, as it is no whole epoch's"]

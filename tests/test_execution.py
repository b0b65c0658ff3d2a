"""The GPU fast path (dsvdd_repro/core/execution.py): defaults harmless on a CPU, bf16 close to float32,
splits copied to the device gather the same images."""

import numpy as np
import pytest
import torch

from dsvdd_repro.core.evaluation import auroc
from dsvdd_repro.core.execution import Execution
from dsvdd_repro.core.schema import ConfigError
from dsvdd_repro.runs.config import TrainerConfig
from tests.nodes import deep_svdd, noise, resnet18
from tests.test_trainer import tiny_splits

CPU = torch.device("cpu")


def test_the_defaults_change_nothing_on_a_cpu():
    execution = Execution.resolve(TrainerConfig(), CPU)
    assert (execution.precision, execution.channels_last, execution.cudnn_benchmark, execution.data_on_device,
            execution.eval_batch_size) == ("float32", False, False, False, 500)
    chosen = Execution.resolve(TrainerConfig(precision="bf16", channels_last=True, eval_batch_size=64), CPU)
    assert (chosen.precision, chosen.channels_last, chosen.eval_batch_size) == ("bf16", True, 64)


def test_an_unknown_precision_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"precision.*fp8.*auto, float32, bf16"):
        TrainerConfig(precision="fp8")


def train(precision: str, channels_last: bool = False):
    torch.manual_seed(0)
    execution = Execution(CPU, precision=precision, channels_last=channels_last)
    detector = deep_svdd(resnet18(bias=True), regularizer=noise(512, k=5, seed=0), epochs=3, batch_size=12, lr=1e-3,
                         seed=0, progress=False, execution=execution)
    splits = tiny_splits(0)
    summary = detector.fit(splits.train, splits.val)
    scores = detector.score(splits.test)
    assert scores.dtype == np.float64
    return [h["loss_svdd"] for h in summary["history"]], auroc(splits.test.labels, scores)


@pytest.mark.slow
def test_bf16_autocast_agrees_with_float32_in_loss_and_auc():
    # Stated tolerance: every epoch's SVDD loss within 1% (relative), the test AUC within 0.05 on this
    # 30-row test set (measured: losses 0.04-0.4% apart, AUC 0.815 vs 0.795). Losses and scores are
    # float32 in both runs: only the network's forward pass is bf16.
    loss32, auc32 = train("float32")
    loss16, auc16 = train("bf16")
    np.testing.assert_allclose(loss16, loss32, rtol=0.01)
    assert abs(auc16 - auc32) <= 0.05
    assert loss16 != loss32  # bf16 really ran


@pytest.mark.slow
def test_channels_last_is_the_same_computation_in_another_memory_format():
    loss_default, auc_default = train("float32")
    loss_nhwc, auc_nhwc = train("float32", channels_last=True)
    np.testing.assert_allclose(loss_nhwc, loss_default, rtol=1e-4)
    assert abs(auc_nhwc - auc_default) <= 0.02


def test_splits_on_the_device_hold_only_their_images_and_gather_the_same_batches():
    splits = tiny_splits(0)
    moved = splits.to(CPU)
    for before, after in ((splits.train, moved.train), (splits.val, moved.val), (splits.test, moved.test)):
        assert len(after.pool) == len(np.unique(before.keys)) <= len(before.pool)
        np.testing.assert_array_equal(after.keys, before.keys)  # the natural image index is unchanged
        order = np.random.default_rng(0).permutation(len(before))
        for (rows_a, a), (rows_b, b) in zip(before.iter_batches(7, order), after.iter_batches(7, order), strict=True):
            np.testing.assert_array_equal(rows_a, rows_b)
            assert torch.equal(a, b)
    assert len(moved.train.pool) < len(splits.train.pool)  # the training rows are a part of the pool

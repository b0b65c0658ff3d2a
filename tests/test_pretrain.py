"""Autoencoder pretraining and the learning-rate schedule of the original deep SVDD protocol."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dsvdd_repro.data import protocols
from dsvdd_repro.data.fake import make_fake
from dsvdd_repro.methods.deep_svdd.pretrain import AutoencoderConfig
from dsvdd_repro.methods.deep_svdd.trainer import _schedule
from dsvdd_repro.methods.optim import MultiStepConfig
from tests.nodes import deep_svdd, from_node, lenet


def pretraining(**keys):
    return from_node(AutoencoderConfig(**keys))


def fit_inputs(net, split):
    """The network's preprocessing fitted on the split's images (as the trainer hands them over)."""
    return net.fit_inputs(images for _, images in split.iter_batches(len(split)))


def splits(train_fraction):
    images = make_fake(n_classes=2, n_train_per_class=40, n_test_per_class=10, image_size=32)
    return protocols.one_vs_all(images, normal_class=0, seed=0, train_fraction=train_fraction)


@pytest.mark.slow
def test_pretraining_lowers_the_reconstruction_error_and_changes_the_encoder():
    torch.manual_seed(0)
    net = lenet()
    train = splits(1.0).train
    fit_inputs(net, train)
    before = [p.detach().clone() for p in net.parameters()]
    summary = pretraining(epochs=4, lr=1e-3, milestones=[3])(net, train, 10, torch.device("cpu"), 0, False)
    assert len(summary["loss"]) == 4 and summary["loss"][-1] < summary["loss"][0]
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_the_published_protocol_scores_the_last_epoch_with_the_scheduled_learning_rate():
    """train_fraction=1: validation holds anomalies only, so no epoch can be chosen on it."""
    torch.manual_seed(0)
    data = splits(1.0)
    assert set(np.unique(data.val.labels)) == {1} and len(data.train) == 40
    schedule = OmegaConf.structured(MultiStepConfig(milestones=[2]))
    detector = deep_svdd(lenet(), lr=1e-3, epochs=3, backbone_lr_factor=1.0, batch_size=10, progress=False,
                         lr_schedule=lambda optimizer: _schedule(schedule, optimizer),
                         pretrain=pretraining(epochs=1, milestones=[]))
    summary = detector.fit(data.train, data.val)
    assert [entry["lr"] for entry in summary["history"]] == [1e-3, 1e-3, 1e-4]  # / 10 at the milestone
    assert summary["best_epoch"] == 3 and summary["val_auc"] is None
    # the model scored is the last epoch's, as it stands
    assert all(torch.equal(value, detector.net.state_dict()[key]) for key, value in detector.best_state.items())
    assert all(entry["val_auc"] is None for entry in summary["history"])
    assert summary["inputs"]["fitted_on"] == 40 and len(summary["pretrain"]["loss"]) == 1
    assert np.std(detector.score(data.test)) > 0


def test_the_original_protocol_variants_initialise_as_the_authors_and_stay_float32_on_a_gpu():
    from dsvdd_repro.core.execution import Execution
    from tests.conftest import compose_config

    for variant in ("dsvdd_ruff2018", "dsvdd_ruff2018_val"):
        cfg = compose_config([f"variant={variant}", "dataset=cifar10", "trainer.device=cuda"])
        execution = Execution.resolve(cfg.trainer, torch.device("cuda"))  # resolving touches no GPU
        assert (cfg.model.init, execution.precision, execution.channels_last) == ("xavier_leaky_relu", "float32", True)
    # elsewhere the LeNet keeps PyTorch's default (the authors' deep SVDD net when not pretrained)
    assert compose_config(["model=lenet_cifar10"]).model.init == "torch"


def test_pretraining_in_bf16_autocast_takes_the_error_in_float32():
    from dsvdd_repro.core.execution import Execution

    train = splits(1.0).train
    losses = {}
    for precision in ("float32", "bf16"):
        torch.manual_seed(0)
        net = lenet(init="xavier_leaky_relu")
        fit_inputs(net, train)
        execution = Execution(torch.device("cpu"), precision=precision)
        losses[precision] = pretraining(epochs=2, lr=1e-3, milestones=[])(
            net, train, 10, torch.device("cpu"), 0, False, execution=execution)["loss"]
    assert losses["bf16"] != losses["float32"]  # autocast really ran
    np.testing.assert_allclose(losses["bf16"], losses["float32"], rtol=0.02)

"""Masked partial-label loss."""

import torch

from mome.training.loss import MaskedBCEDiceLoss


def test_unlabelled_classes_get_exactly_zero_gradient():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, 8, requires_grad=True)
    target = (torch.rand(2, 4, 8, 8, 8) > 0.5).float()
    labelled = torch.tensor([[True, False, True, False], [False, False, True, True]])
    loss = MaskedBCEDiceLoss()(logits, target, labelled)
    loss.backward()
    grad_norm = logits.grad.abs().flatten(2).sum(-1)
    assert (grad_norm[~labelled] == 0).all()
    assert (grad_norm[labelled] > 0).all()


def test_loss_ignores_targets_of_unlabelled_classes_and_rewards_good_predictions():
    target = torch.zeros(1, 2, 8, 8, 8)
    target[0, 0, 2:6, 2:6, 2:6] = 1
    labelled = torch.tensor([[True, False]])
    good = (target * 20 - 10).clone()
    loss_fn = MaskedBCEDiceLoss()
    base = loss_fn(good, target, labelled)
    scrambled = target.clone()
    scrambled[0, 1] = torch.rand(8, 8, 8).round()
    assert loss_fn(good, scrambled, labelled) == base
    assert base < 0.01
    assert loss_fn(-good, target, labelled) > 1.0


def test_no_labelled_pair_gives_connected_zero():
    logits = torch.randn(1, 2, 4, 4, 4, requires_grad=True)
    loss = MaskedBCEDiceLoss()(logits, torch.zeros_like(logits), torch.zeros(1, 2, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0 and logits.grad is not None and logits.grad.abs().sum() == 0

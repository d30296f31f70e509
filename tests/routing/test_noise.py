"""Training noise through the routing core: seeded, forces and switches off experts like steering, and
leaves nothing behind."""

from __future__ import annotations

import torch

from moeguard import RoutingRecorder
from moeguard.routing import RoutingNoise


def router_indices(model, ids) -> dict[int, torch.Tensor]:
    recorder = RoutingRecorder(model, counts=False, traces=True)
    with recorder:
        recorder.run(ids)
    trace = recorder.trace()
    return {layer: trace.indices[:, p] for p, layer in enumerate(trace.layers)}


def test_noise_forces_and_switches_off_experts(load_tiny):
    model, _ = load_tiny("olmoe")
    ids = torch.randint(0, model.config.vocab_size, (2, 9))
    plain = router_indices(model, ids)
    with RoutingNoise(model, p=0.0, seed=0, force=1.0) as noise:
        noise.resample()
        forced = {layer: noise.masks[layer][1] for layer in noise.masks}
        for layer, indices in router_indices(model, ids).items():
            assert (indices == forced[layer]).any(dim=-1).all(), layer  # in every token's top-k
        noise.switch_off([(layer, forced[layer]) for layer in forced])
        for layer, indices in router_indices(model, ids).items():
            assert not (indices == forced[layer]).any(), layer
    after = router_indices(model, ids)
    assert all(torch.equal(plain[layer], after[layer]) for layer in plain)  # edits gone


def test_style_routing_and_clear(load_tiny):
    model, _ = load_tiny("olmoe")
    ids = torch.randint(0, model.config.vocab_size, (2, 9))
    plain = router_indices(model, ids)
    with RoutingNoise(model, p=0.0, seed=0) as noise:
        noise.route(forced=[(0, 1), (1, 0)], off=[(0, 2), (1, 3)])
        seen = router_indices(model, ids)
        assert (seen[0] == 1).any(dim=-1).all() and (seen[1] == 0).any(dim=-1).all()
        assert not (seen[0] == 2).any() and not (seen[1] == 3).any()
        noise.resample()  # the next step is back to the random noise (here: none)
        assert all(torch.equal(plain[layer], idx) for layer, idx in router_indices(model, ids).items())
        noise.route(forced=[(0, 1)], off=[])
        noise.clear()
        assert all(torch.equal(plain[layer], idx) for layer, idx in router_indices(model, ids).items())


def test_noise_is_seeded_and_drops_about_p(load_tiny):
    model, _ = load_tiny("olmoe")
    draws = []
    for seed in (3, 3, 4):
        noise = RoutingNoise(model, p=0.25, seed=seed, force=0.5)
        steps = []
        for _ in range(200):
            noise.resample()
            steps.append(torch.stack([noise.masks[layer][0] for layer in sorted(noise.masks)]))
        draws.append(torch.stack(steps))
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    assert 0.18 < draws[0].float().mean().item() < 0.27  # p=0.25 minus the forced expert's exemptions

"""Fitting the latent critic (phase 2 of ``edsc train critic``).

Adam on :func:`critic_loss` (standardised attribute and descriptor errors plus
the error of the base-to-variant descriptor distances), checkpointed through
:class:`~editable_deepsc.train.loop.ResumableRun`; the held-out groups give the
residuals stored with the weights (:func:`critic_errors`, :func:`set_residuals`),
in whose units the instant preset aims past each goal.
"""

from __future__ import annotations

from pathlib import Path

import torch

from editable_deepsc.editing.critic import LatentCritic
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.train.critic_data import CriticData
from editable_deepsc.train.loop import ResumableRun, cosine_decay


def critic_loss(
    critic: LatentCritic, w: torch.Tensor, y: torch.Tensor, e: torch.Tensor, dist_weight: float = 1.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss on a batch of groups: standardised attribute and descriptor MSE + base-to-variant distance MSE.

    ``w`` (B, V, num_ws, w_dim), ``y`` (B, V, A), ``e`` (B, V, 128).
    """
    b, v = w.shape[:2]
    g_hat, e_hat = critic(w.reshape(b * v, *w.shape[2:]))
    a = len(critic.attributes)
    y_std, e_std = critic.y_std[:a], critic.y_std[a:]
    l_attr = ((g_hat - y.reshape(b * v, -1)) / y_std).pow(2).mean()
    l_emb = ((e_hat - e.reshape(b * v, -1)) / e_std).pow(2).mean()
    e_hat = e_hat.reshape(b, v, -1)
    d_hat = (e_hat[:, 1:] - e_hat[:, :1]).norm(dim=-1)
    d = (e[:, 1:] - e[:, :1]).norm(dim=-1)
    l_dist = (d_hat - d).pow(2).mean() / d.var().clamp_min(1e-6)
    loss = l_attr + l_emb + dist_weight * l_dist
    return loss, {"attr": float(l_attr.detach()), "emb": float(l_emb.detach()), "dist": float(l_dist.detach())}


@torch.no_grad()
def critic_errors(critic: LatentCritic, data: CriticData, batch_size: int = 256) -> dict:
    """Held-out quality: per-attribute R² and residual std, descriptor-distance residual std and correlation."""
    g_all, e_all = [], []
    for w in data.w_plus.split(batch_size):
        b, v = w.shape[:2]
        g_hat, e_hat = critic(w.reshape(b * v, *w.shape[2:]))
        g_all.append(g_hat.reshape(b, v, -1))
        e_all.append(e_hat.reshape(b, v, -1))
    g_hat, e_hat = torch.cat(g_all), torch.cat(e_all)
    y = data.targets
    res = (g_hat - y).reshape(-1, y.shape[-1])
    var = y.reshape(-1, y.shape[-1]).var(0).clamp_min(1e-9)
    d_hat = (e_hat[:, 1:] - e_hat[:, :1]).norm(dim=-1).flatten()
    d = (data.embedding[:, 1:] - data.embedding[:, :1]).norm(dim=-1).flatten()
    corr = torch.corrcoef(torch.stack([d_hat, d]))[0, 1]
    out = {
        "attributes": {
            a: {"r2": float(1 - res[:, i].pow(2).mean() / var[i]), "residual_std": float(res[:, i].std())}
            for i, a in enumerate(critic.attributes)
        },
        "distance": {"residual_std": float((d_hat - d).std()), "corr": float(corr),
                     "mean": float(d.mean()), "bias": float((d_hat - d).mean())},
    }  # fmt: skip
    return out


def set_normalisation(critic: LatentCritic, data: CriticData) -> None:
    """Fit the critic's input and output standardisation on ``data`` (in place)."""
    w = data.w_plus.reshape(-1, critic.num_ws * critic.w_dim)
    y = torch.cat([data.targets, data.embedding], -1).reshape(-1, critic.y_mean.numel())
    critic.w_mean.copy_(w.mean(0))
    critic.w_std.copy_(w.std(0).clamp_min(1e-4))
    critic.y_mean.copy_(y.mean(0))
    critic.y_std.copy_(y.std(0).clamp_min(1e-4))


def set_residuals(critic: LatentCritic, errors: dict) -> None:
    """Store held-out residual stds (from :func:`critic_errors`) in the critic."""
    r = [errors["attributes"][a]["residual_std"] for a in critic.attributes] + [errors["distance"]["residual_std"]]
    critic.residual_std.copy_(torch.tensor(r))


def new_critic(num_ws: int, w_dim: int, hidden: int, depth: int, seed: int) -> LatentCritic:
    """An untrained :class:`LatentCritic` for W+ (num_ws, w_dim), initialised from ``seed``
    (seeds torch's global generator, as ``edsc train critic`` does)."""
    torch.manual_seed(derive_seed(seed, "critic-init") % (2**31))
    return LatentCritic(num_ws, w_dim, hidden, depth)


def fit(
    data: CriticData, critic: LatentCritic, steps: int, batch: int, lr: float, n_val: int, seed: int,
    checkpoint: str | Path, progress: bool = True, weight_decay: float = 0.1,
) -> dict:  # fmt: skip
    """Train ``critic`` on ``data`` (last ``n_val`` groups held out) with AdamW; return the held-out errors."""
    train, val = data.split(n_val)
    set_normalisation(critic, train)
    opt = torch.optim.AdamW(critic.parameters(), lr=lr, weight_decay=weight_decay)
    run = ResumableRun(checkpoint, {"critic": critic}, {"opt": opt})
    rng = make_generator(derive_seed(seed, "critic-fit"))
    for _ in range(run.start):  # the batches already drawn before a resumption
        torch.randint(len(train), (batch,), generator=rng)
    critic.train()
    bar = run.steps(steps, steps, "fit critic", progress)
    for step in bar:
        for pg in opt.param_groups:
            pg["lr"] = cosine_decay(step / steps, lr, 0.02 * lr)
        idx = torch.randint(len(train), (batch,), generator=rng)
        loss, parts = critic_loss(critic, train.w_plus[idx], train.targets[idx], train.embedding[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", dist=f"{parts['dist']:.3f}")
        if (step + 1) % 1000 == 0 or step + 1 == steps:
            run.save(step + 1)
    critic.eval()
    errors = critic_errors(critic, val)
    set_residuals(critic, errors)
    errors["seconds"] = run.elapsed()
    return errors

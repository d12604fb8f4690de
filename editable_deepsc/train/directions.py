"""Fitting the per-attribute W+ directions of the fast editing preset (``edsc train directions``).

Fitting (:func:`fit_directions`):

1. sample latents from the generator with *training* seeds
   (:func:`~editable_deepsc.train.latents.sample_latents`): ``w = mapping(z)``,
   broadcast to every layer, and — for ``mode="layerwise"`` — style-mixed
   latents (a random crossover layer, as in StyleGAN training), so that each
   layer's contribution is identifiable;
2. score their images with the guidance's face nets (``measure``,
   :func:`~editable_deepsc.train.latents.score_latents`);
3. fit a ridge regression of each attribute on the flattened W+ latent
   (probabilities on the logit scale, other attributes in their units);
4. normalise: the stored vector ``d_a`` is the unit regression direction times
   the standard deviation of the latents projected on it, so a step ``α = 1``
   moves a face by one typical spread along that axis;
5. calibrate the slope *causally*: move held-out latents by ``±α_cal`` along
   ``d_a``, re-score, and store the mean change per unit α (linear fits on
   observational scores usually over- or under-estimate it);
6. optionally make the direction *identity-aware*: with the identity metric
   ``M = E[Jᵀ J]`` of the face descriptor ``e(G(w))`` (``J`` its Jacobian with
   respect to the latent, estimated from random probes ``∇_w (v·e)``,
   ``v ~ N(0, I)``, by :func:`identity_metric`), the direction that changes the
   attribute by a given amount with the least first-order descriptor change,
   kept close to the regression direction, is ``(M/m̄ + μ I)⁻¹ β`` (``m̄`` the
   mean eigenvalue of ``M``). ``μ`` is picked per attribute from
   :data:`IDENTITY_MU_GRID` (``∞`` = the plain regression direction) by the
   mean descriptor distance of held-out faces moved by the same attribute
   change; the chosen vector is scaled to the plain direction's causal slope,
   so ``α`` keeps its meaning in attribute units.

The result (:class:`~editable_deepsc.editing.directions.AttributeDirections`) is
saved as safetensors in the zoo (``<generator>-directions``) with a card naming
the command and the generator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from editable_deepsc.editing.criteria import PROBABILITY_ATTRIBUTES, UNIT_EDIT
from editable_deepsc.editing.directions import AttributeDirections, directions_name, regression_target
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.rng import make_generator
from editable_deepsc.train.latents import sample_latents, score_latents
from editable_deepsc.zoo import registry

DIRECTION_ATTRIBUTES: tuple[str, ...] = (
    "neutral", "happy", "sad", "angry", "surprised",
    "age", "gender", "yaw", "pitch", "mouth_open", "eyes_open",
)  # fmt: skip
"""Attributes a direction is fitted for by default."""


def ridge(x: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """Ridge coefficients ``β`` (D,) of centred ``y`` (M,) on centred ``x`` (M, D), penalty ``lam·M``."""
    x = x.double()
    y = y.double()
    xc = x - x.mean(0)
    yc = y - y.mean()
    a = xc.T @ xc + lam * x.shape[0] * torch.eye(x.shape[1], dtype=torch.float64)
    return torch.linalg.solve(a, xc.T @ yc).float()


LAMBDA_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
"""Ridge penalties tried when none is given."""


def _r2(x, y, fit_i, val_i, x_std, lam) -> float:
    beta = ridge(x[fit_i] / x_std, y[fit_i], lam) / x_std
    pred = (x[val_i] - x[fit_i].mean(0)) @ beta + y[fit_i].mean()
    return float(1.0 - ((y[val_i] - pred) ** 2).mean() / y[val_i].var().clamp_min(1e-12))


IDENTITY_MU_GRID: tuple[float, ...] = (10.0, 3.0, 1.0, 0.3)
"""Regularisation ``μ`` of the identity-aware directions tried per attribute (besides the plain one)."""

SELECTION_CHANGE_LOGIT = 1.5
"""Attribute change (logit) at which identity-aware candidates are compared, for probabilities;
continuous attributes use 1.2 × their unit edit (:data:`~editable_deepsc.editing.criteria.UNIT_EDIT`)."""

Embed = Callable[[torch.Tensor], torch.Tensor]
"""``embed(images) -> (N, E)`` face descriptors (differentiable), e.g. ``FaceNetGuidance.embedding``."""


def _coordinates(w_plus: torch.Tensor, mode: str) -> torch.Tensor:
    """The fit's latent coordinates: flattened W+ (``layerwise``) or the layer mean (``shared``)."""
    return w_plus.reshape(w_plus.shape[0], -1) if mode == "layerwise" else w_plus.mean(1)


def identity_metric(
    generator: StyleGenerator,
    embed: Embed,
    w_plus: torch.Tensor,
    mode: str = "shared",
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """Identity metric ``M = E[Jᵀ J]`` in the fit's latent coordinates, float64 (D, D).

    ``J`` is the Jacobian of the face descriptor ``embed(G(w))`` with respect to
    the latent coordinates (``D = w_dim`` for ``shared``, ``num_ws·w_dim`` for
    ``layerwise``). One random probe per latent: with ``v ~ N(0, I)``,
    ``g = ∇ (v·e) = Jᵀ v`` and ``E[g gᵀ] = Jᵀ J``; faces in a batch are
    independent, so one backward pass gives a probe for each.

    Parameters
    ----------
    w_plus : Tensor, float32, (M, num_ws, w_dim)
        Latents at which ``J`` is sampled (``shared``: identical layers).
    """
    dev = next(generator.parameters()).device
    rng = make_generator(seed)
    dim = generator.w_dim if mode == "shared" else generator.num_ws * generator.w_dim
    metric = torch.zeros(dim, dim, dtype=torch.float64)
    chunks = list(w_plus.split(batch_size))
    it = chunks
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(chunks, desc="identity metric")
    for c in it:
        with torch.enable_grad():
            x = _coordinates(c, mode).to(dev).clone().requires_grad_(True)
            wp = generator.broadcast(x) if mode == "shared" else x.reshape(c.shape)
            e = embed(generator.synthesis(wp))
            v = torch.randn(e.shape, generator=rng).to(e)
            (grad,) = torch.autograd.grad((e * v).sum(), x)
        g = grad.detach().double().cpu()
        metric += g.T @ g
    return metric / w_plus.shape[0]


def identity_aware(beta: torch.Tensor, metric: torch.Tensor, mu: float) -> torch.Tensor:
    """Unit vector along ``(M/m̄ + μ I)⁻¹ β`` (D,), float32; ``m̄`` = mean eigenvalue of ``metric``."""
    m = metric.double()
    a = m / (m.trace() / m.shape[0]).clamp_min(1e-30) + mu * torch.eye(m.shape[0], dtype=torch.float64)
    d = torch.linalg.solve(a, beta.double())
    return (d / d.norm().clamp_min(1e-30)).float()


def _causal_slope(generator, guidance, cal, vec, attribute, alpha_cal, batch_size) -> float:
    wp = torch.cat([cal + alpha_cal * vec, cal - alpha_cal * vec])
    y = regression_target(attribute, score_latents(generator, guidance, wp, (attribute,), batch_size)[attribute])
    k = cal.shape[0]
    return float((y[:k] - y[k:]).mean() / (2 * alpha_cal))


@torch.no_grad()
def _identity_cost(generator, embed, cal, ref_emb, vec, slope, attribute, batch_size) -> float:
    """Mean descriptor distance of ``cal`` moved along ``vec`` by the selection change of ``attribute``."""
    change = SELECTION_CHANGE_LOGIT if attribute in PROBABILITY_ATTRIBUTES else 1.2 * UNIT_EDIT[attribute]
    alpha = change / slope if abs(slope) > 1e-8 else 0.0
    moved = cal + alpha * vec
    emb = torch.cat([embed(generator.synthesis(c)) for c in moved.split(batch_size)])
    return float((emb.cpu() - ref_emb).norm(dim=1).mean())


def _identity_aware_vector(
    generator, guidance, embed, metric, cal, ref_emb, attribute, plain, plain_slope, mode, mus, alpha_cal, batch_size
) -> tuple[torch.Tensor, dict]:
    """Step 6 of the module docstring for one attribute: the chosen vector (num_ws, w_dim) and its stats.

    Candidates are the plain vector and ``(M/m̄ + μ I)⁻¹ β`` for each ``μ`` (at the
    plain vector's norm); the one moving the descriptors of ``cal`` least for the
    selection change wins (among those whose causal slope keeps the plain sign)
    and is rescaled to the plain causal slope.
    """
    beta = _coordinates(plain[None], mode)[0]
    cands = [(None, plain, plain_slope)]
    for mu in mus:
        u = identity_aware(beta, metric, mu)
        u = u if float(u @ beta) >= 0 else -u
        vec = u.reshape(plain.shape) if mode == "layerwise" else u[None].repeat(plain.shape[0], 1)
        vec = vec * plain.norm()
        cands.append((mu, vec, _causal_slope(generator, guidance, cal, vec, attribute, alpha_cal, batch_size)))
    costs = [_identity_cost(generator, embed, cal, ref_emb, v, sl, attribute, batch_size) for _, v, sl in cands]
    best = min(range(len(cands)), key=lambda i: costs[i] if cands[i][2] * plain_slope > 0 else float("inf"))
    mu, vec, slope = cands[best]
    vec = (vec * (plain_slope / slope)).float()  # same attribute change per unit alpha as the plain direction
    return vec, {"identity_mu": mu, "identity_cost_plain": costs[0], "identity_cost": costs[best],
                 "norm_ratio": float(vec.norm() / plain.norm())}  # fmt: skip


def fit_directions(
    generator: StyleGenerator,
    guidance,
    n: int = 4000,
    seed: int = 0,
    attributes: tuple[str, ...] = DIRECTION_ATTRIBUTES,
    mode: str = "layerwise",
    ridge_lambda: float | None = None,
    holdout: float = 0.2,
    alpha_cal: float = 1.5,
    n_cal: int = 96,
    batch_size: int = 64,
    scores: dict[str, torch.Tensor] | None = None,
    w_plus: torch.Tensor | None = None,
    embed: Embed | None = None,
    identity_mu: tuple[float, ...] = IDENTITY_MU_GRID,
    n_metric: int = 2048,
    progress: bool = False,
) -> AttributeDirections:
    """Fit one direction per attribute (see the module docstring).

    Parameters
    ----------
    generator : StyleGenerator
    guidance : MeasuringGuidance
        Provides ``measure(images, attributes)``.
    n : int
        Latents sampled for the fit.
    seed : int
        Seed of the latent sampling (training seeds only).
    attributes : tuple of str
    mode : {"layerwise", "shared"}
        ``layerwise``: one regression on the flattened W+ (a per-layer direction);
        ``shared``: one w-space direction applied to every layer (broadcast samples).
    ridge_lambda : float or None
        Ridge penalty (relative to the sample count, on standardised inputs);
        ``None`` picks it per attribute from :data:`LAMBDA_GRID` on a validation split.
    holdout : float
        Fraction kept out of the fit to report R².
    alpha_cal : float
        Step used to calibrate the slope.
    n_cal : int
        Held-out latents used for the calibration.
    scores, w_plus : optional
        Precomputed latents and their scores (resume); sampled and scored if omitted.
    embed : callable, optional
        Face descriptor ``embed(images) -> (N, E)``: makes the directions
        identity-aware (step 6 of the module docstring); ``None``: plain directions.
    identity_mu : tuple of float
        Candidate ``μ`` values of the identity-aware directions.
    n_metric : int
        Training latents used to estimate the identity metric.

    Returns
    -------
    AttributeDirections
    """
    if mode not in ("layerwise", "shared"):
        raise BadInput(f"mode must be 'layerwise' or 'shared', got {mode!r}")
    if n < 20:
        raise BadInput(f"need at least 20 latents to fit directions, got {n}")
    if w_plus is None:
        w_plus = sample_latents(generator, n, make_generator(seed), mix_prob=0.5 if mode == "layerwise" else 0.0)
    if scores is None:
        scores = score_latents(generator, guidance, w_plus, attributes, batch_size, progress)
    m = w_plus.shape[0]
    n_test = max(2, int(round(holdout * m)))
    perm = torch.randperm(m, generator=make_generator(seed + 1))
    tr, te = perm[n_test:], perm[:n_test]
    x = _coordinates(w_plus, mode)
    x_std = x[tr].std(0).clamp_min(1e-6)
    vectors, slopes, stats = {}, {}, {}
    n_val = max(2, len(tr) // 5)
    fit_i, val_i = tr[n_val:], tr[:n_val]
    for a in attributes:
        y = regression_target(a, scores[a])
        lam = ridge_lambda
        if lam is None:  # pick the penalty on a validation split of the training part
            lam = max(LAMBDA_GRID, key=lambda la: _r2(x, y, fit_i, val_i, x_std, la))
        beta_s = ridge(x[tr] / x_std, y[tr], lam)
        beta = beta_s / x_std  # coefficients in latent units
        pred = (x[te] - x[tr].mean(0)) @ beta + y[tr].mean()
        resid = ((y[te] - pred) ** 2).mean()
        r2 = float(1.0 - resid / y[te].var().clamp_min(1e-12))
        u = beta / beta.norm().clamp_min(1e-12)
        spread = float(((x[tr] - x[tr].mean(0)) @ u).std())
        d = u * spread
        vec = d.reshape(generator.num_ws, generator.w_dim) if mode == "layerwise" else d[None].repeat(
            generator.num_ws, 1
        )
        vectors[a] = vec.float()
        stats[a] = {
            "r2": r2,
            "ridge_lambda": float(lam),
            "fit_slope": float(beta @ d),
            "value_mean": float(scores[a].mean()),
            "value_std": float(scores[a].std()),
        }
    # causal slope: move held-out latents along each direction and re-score
    cal = w_plus[te[:n_cal]]
    for a in attributes:
        slopes[a] = _causal_slope(generator, guidance, cal, vectors[a], a, alpha_cal, batch_size)
        stats[a]["causal_slope"] = slopes[a]
    meta_extra: dict = {}
    if embed is not None:
        metric = identity_metric(generator, embed, w_plus[tr[:n_metric]], mode, batch_size, seed + 2, progress)
        with torch.no_grad():
            ref_emb = torch.cat([embed(generator.synthesis(c)).cpu() for c in cal.split(batch_size)])
        for a in attributes:
            vectors[a], chosen = _identity_aware_vector(
                generator, guidance, embed, metric, cal, ref_emb, a, vectors[a], slopes[a], mode, identity_mu,
                alpha_cal, batch_size,
            )
            stats[a].update(chosen)
        meta_extra = {"identity_aware": True, "identity_mu_grid": list(identity_mu),
                      "n_metric": int(min(n_metric, len(tr)))}  # fmt: skip
    return AttributeDirections(
        generator=getattr(generator, "name", "unnamed"),
        num_ws=generator.num_ws,
        w_dim=generator.w_dim,
        vectors=vectors,
        slopes=slopes,
        stats=stats,
        meta={"n": int(m), "seed": int(seed), "mode": mode, "alpha_cal": alpha_cal, **meta_extra},
    )


def export_directions(d: AttributeDirections, command: str, guidance_name: str,
                      licence: str = "MIT (fitted by this project from its own generator and the face-api nets)") -> Path:
    """Save ``d`` to the zoo as ``<generator>-directions`` and register its card; return the file path."""
    gen_sha = registry.sha256_of(d.generator)
    return registry.publish(
        directions_name(d.generator),
        d.state_dict(),
        kind="directions",
        licence=licence,
        source=f"`{command}` (seed {d.meta.get('seed')}, {d.meta.get('n')} training-seed latents, "
        f"scored by {guidance_name})",
        resolution=None,
        description=f"Per-attribute W+ directions of {d.generator} for the fast editing preset",
        config={
            "generator": d.generator,
            "generator_sha256": gen_sha,
            "num_ws": d.num_ws,
            "w_dim": d.w_dim,
            "attributes": list(d.attributes),
            **d.meta,
        },
        metadata=d.metadata(),
    )


def directions_markdown(d: AttributeDirections) -> str:
    """Markdown table of the fit statistics of ``d`` (held-out R², fitted and causal slopes, spread)."""
    aware = bool(d.meta.get("identity_aware"))
    head = "| attribute | held-out R² | ridge λ | fitted slope / α | causal slope / α | value mean | value std |"
    if aware:
        head += " identity μ | id-dist plain | id-dist chosen |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for a in DIRECTION_ATTRIBUTES:
        if a not in d.stats:
            continue
        s = d.stats[a]
        unit = " (logit)" if a in PROBABILITY_ATTRIBUTES else ""
        lines.append(
            f"| {a} | {s['r2']:.3f} | {s.get('ridge_lambda', float('nan')):g} | {s['fit_slope']:.3f}{unit} "
            f"| {s['causal_slope']:.3f}{unit} | {s['value_mean']:.3f} | {s['value_std']:.3f} |"
            + (
                f" {'plain' if s.get('identity_mu') is None else format(s['identity_mu'], 'g')} "
                f"| {s['identity_cost_plain']:.3f} | {s['identity_cost']:.3f} |"
                if aware and "identity_cost" in s
                else ""
            )
        )
    return "\n".join(lines) + "\n"

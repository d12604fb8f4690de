"""Attribute directions restricted to the W+ style groups that carry them (``edsc train directions --models ffhq``).

A direction fitted in w space and applied to every style of W+ moves whatever correlates with
the attribute in the training samples: an age direction greys the hair and changes the
background, a smile direction turns the head. In a style-based generator the coarse, middle and
fine styles (:mod:`editable_deepsc.generator.mixing`) control different scales, so most of that
drag can be cut by applying the direction only where the attribute lives. The fit
(:func:`fit_group_directions`):

1. a ridge regression of each attribute's face-net reading (logit for probabilities) on the
   mapped ``w`` of unmixed samples (:mod:`~editable_deepsc.train.score_store`), the penalty
   picked from :data:`~editable_deepsc.train.directions.LAMBDA_GRID` on a validation split; the
   unit regression vector times the samples' spread along it is ``d`` (w_dim,);
2. for each candidate group set ``S`` of :data:`GROUP_SETS`, ``d`` on the styles of ``S``
   (zero elsewhere) is tried on held-out latents moved by ``±α_cal``, measuring per unit of
   attribute change:

   * the **causal slope** (attribute change per unit α),
   * the **outside-face change**: mean absolute pixel difference (0-255) outside the face
     ellipse (:data:`~editable_deepsc.inversion.ffhq_align.FACE_ELLIPSE`) between the ``+`` and
     ``−`` images, divided by the attribute change between them,
   * the **identity cost**: the face descriptor's distance between them, divided likewise;

3. the chosen set is, among the sets whose slope keeps the whole-W+ sign and reaches
   :data:`MIN_SLOPE_SHARE` of it, the one with the least
   ``outside/outside_all + identity/identity_all``;
4. optionally *identity-aware* bending as in :mod:`~editable_deepsc.train.directions`, with the
   descriptor's metric restricted to the chosen groups (``M_S = Σ_{g,h∈S} M_gh`` from one set
   of probes in group coordinates), kept only when it lowers the identity cost;
5. the stored vector is rescaled so that its causal slope equals the whole-W+ direction's:
   ``α`` means the same attribute change whatever the groups.

Every candidate's numbers are kept in the directions' stats (``groups``), and
:func:`group_table_markdown` renders them for ``docs/editing_ffhq.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from editable_deepsc.editing.criteria import PROBABILITY_ATTRIBUTES
from editable_deepsc.editing.directions import AttributeDirections, regression_target
from editable_deepsc.editing.measure import measure_attributes
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.rng import make_generator
from editable_deepsc.train.directions import LAMBDA_GRID, _r2, identity_aware, ridge
from editable_deepsc.train.score_store import ScoredSamples

GROUP_SETS: tuple[tuple[str, ...], ...] = (("coarse",), ("middle",), ("coarse", "middle"), ("coarse", "middle", "fine"))
"""Candidate style-group sets, the last being the whole W+."""

MIN_SLOPE_SHARE = 0.5
"""A group set must move the attribute at least this share of what the whole-W+ direction does."""

GROUP_MU_GRID: tuple[float, ...] = (3.0, 1.0)
"""Regularisation ``μ`` of the identity-aware candidates (fewer than on faces64: each costs a calibration)."""

MIN_CHANGE = 1e-3
"""Mean attribute change (regression scale) below which a trial counts as not moving the attribute."""

Embed = Callable[[torch.Tensor], torch.Tensor]


def _ratio(a: float, b: float) -> float:
    """``a / b`` for per-unit costs (1 when equal, also when neither moved; NaN when only ``b`` is unusable)."""
    if a == b:
        return 1.0
    return a / b if math.isfinite(b) and b > 0 else float("nan")


def outside_face_mask(size: int) -> torch.Tensor:
    """(size, size) bool: pixels of an FFHQ-aligned image outside the face ellipse (background, hair, neck)."""
    from editable_deepsc.inversion.ffhq_align import FACE_ELLIPSE

    cs, ct, rs, rt = FACE_ELLIPSE
    t = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    tt, ss = torch.meshgrid(t, t, indexing="ij")
    return ((ss - cs) / rs) ** 2 + ((tt - ct) / rt) ** 2 > 1.0


def has_style_groups(generator: StyleGenerator) -> bool:
    """Whether ``generator`` (or the generator an exit view wraps) is a MobileStyleGAN with style groups."""
    return hasattr(getattr(getattr(generator, "base", generator), "config", None), "channels")


def group_masks(generator: StyleGenerator) -> dict[str, torch.Tensor]:
    """``{"coarse"|"middle"|"fine": (num_ws,) bool}`` of a MobileStyleGAN (or a view of one)."""
    from editable_deepsc.generator.mixing import GROUPS, group_mask

    if not has_style_groups(generator):
        raise BadInput(f"{generator.name} has no style groups (group-restricted directions need a MobileStyleGAN)")
    config = getattr(generator, "base", generator).config
    return {g: group_mask(config, g) for g in GROUPS}


def _set_mask(masks: dict[str, torch.Tensor], groups: tuple[str, ...]) -> torch.Tensor:
    m = torch.zeros_like(next(iter(masks.values())))
    for g in groups:
        m |= masks[g]
    return m


def set_label(groups: tuple[str, ...]) -> str:
    """``"coarse+middle"``; the full set is ``"all"``."""
    return "all" if set(groups) == {"coarse", "middle", "fine"} else "+".join(groups)


@torch.no_grad()
def _try_vector(generator, guidance, embed, cal, vec, attribute, alpha_cal, outside, batch_size) -> dict:
    """Move ``cal`` (M, num_ws, w_dim) by ``±alpha_cal·vec``: slope, outside-face change and identity cost."""
    ys, imgs_out, embs = [], [], []
    for sign in (1.0, -1.0):
        y, o, e = [], [], []
        for c in cal.split(batch_size):
            img = generator.synthesis(c + sign * alpha_cal * vec)
            y.append(regression_target(attribute, measure_attributes(guidance, img, (attribute,))[attribute]).cpu())
            e.append(embed(img).float().cpu())
            o.append(((img.clamp(-1, 1) + 1) * 127.5)[:, :, outside].cpu())
        ys.append(torch.cat(y))
        imgs_out.append(torch.cat(o))
        embs.append(torch.cat(e))
    dy = ys[0] - ys[1]
    if float(dy.abs().mean()) < MIN_CHANGE:  # nothing moved (e.g. saturated probabilities): no per-unit cost
        return {"slope": float(dy.mean() / (2 * alpha_cal)), "outside": float("inf"), "identity": float("inf")}
    change = dy.abs().mean()
    return {
        "slope": float(dy.mean() / (2 * alpha_cal)),
        "outside": float((imgs_out[0] - imgs_out[1]).abs().mean() / change),
        "identity": float((embs[0] - embs[1]).norm(dim=1).mean() / change),
    }


def group_identity_metric(generator, embed: Embed, w: torch.Tensor, masks: dict[str, torch.Tensor],
                          batch_size: int = 8, seed: int = 0, progress: bool = False) -> torch.Tensor:  # fmt: skip
    """Identity metric ``E[Jᵀ J]`` in group coordinates, float64 (G·w_dim, G·w_dim).

    The latent is ``w_plus = Σ_g mask_g ⊗ x_g`` with one ``x_g`` (w_dim,) per group (all equal to
    ``w`` at the probe points); ``J`` is the Jacobian of ``embed(G(w_plus))`` with respect to
    ``(x_coarse, x_middle, x_fine)``, probed as in :func:`~editable_deepsc.train.directions.identity_metric`.
    """
    names = list(masks)
    stack = torch.stack([masks[g].float() for g in names])  # (G, num_ws)
    dim = len(names) * generator.w_dim
    rng = make_generator(seed)
    metric = torch.zeros(dim, dim, dtype=torch.float64)
    chunks = list(w.split(batch_size))
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="identity metric")
    for c in chunks:
        with torch.enable_grad():
            x = c[:, None, :].repeat(1, len(names), 1).clone().requires_grad_(True)  # (B, G, w_dim)
            wp = torch.einsum("gl,bgd->bld", stack.to(x), x)
            e = embed(generator.synthesis(wp))
            v = torch.randn(e.shape, generator=rng).to(e)
            (grad,) = torch.autograd.grad((e * v).sum(), x)
        g = grad.reshape(len(c), -1).double()
        metric += g.T @ g
    return metric / len(w)


def _restrict_metric(metric: torch.Tensor, names: list[str], groups: tuple[str, ...], w_dim: int) -> torch.Tensor:
    """``Σ_{g,h ∈ groups} M_gh`` (w_dim, w_dim): the metric of one vector applied to every style of ``groups``."""
    idx = [names.index(g) for g in groups]
    out = torch.zeros(w_dim, w_dim, dtype=torch.float64)
    for i in idx:
        for j in idx:
            out += metric[i * w_dim : (i + 1) * w_dim, j * w_dim : (j + 1) * w_dim]
    return out


def fit_group_directions(
    generator: StyleGenerator,
    guidance,
    samples: ScoredSamples,
    attributes: tuple[str, ...],
    embed: Embed | None = None,
    seed: int = 0,
    holdout: float = 0.1,
    n_cal: int = 32,
    alpha_cal: float = 1.0,
    group_sets: tuple[tuple[str, ...], ...] = GROUP_SETS,
    identity_mu: tuple[float, ...] = GROUP_MU_GRID,
    n_metric: int = 256,
    batch_size: int = 16,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> AttributeDirections:
    """Fit one group-restricted direction per attribute (see the module docstring).

    Parameters
    ----------
    generator : StyleGenerator
        The generator as the editor sees it (e.g. an ``ExitView`` at the set's work size).
    guidance : FaceNetGuidance
        Reads the attributes (through its face view).
    samples : ScoredSamples
        Unmixed latents and their scores (:func:`~editable_deepsc.train.score_store.score_samples`).
    attributes : tuple of str
    embed : callable, optional
        Face descriptor for the identity cost (default ``guidance.embedding``); the bending
        (step 4) runs when ``identity_mu`` is non-empty.
    holdout : float
        Share of the samples kept out of the fit (R² and the calibration latents).
    n_cal : int
        Held-out latents each candidate is tried on.
    alpha_cal : float
        Calibration step, in units of the direction (one spread of the samples).
    """
    if not any(set(g) == {"coarse", "middle", "fine"} for g in group_sets):
        raise BadInput("the group sets must include the whole W+ (coarse, middle, fine): it is the reference")
    embed = embed if embed is not None else guidance.embedding
    say = log or (lambda s: None)
    w = samples.w.float()
    m = w.shape[0]
    if m < 50:
        raise BadInput(f"need at least 50 scored samples, got {m}")
    missing = [a for a in attributes if a not in samples.scores]
    if missing:
        raise BadInput(f"the samples have no scores for {', '.join(missing)}")
    perm = torch.randperm(m, generator=make_generator(seed + 1))
    n_test = max(n_cal, int(round(holdout * m)))
    tr, te = perm[n_test:], perm[:n_test]
    n_val = max(2, len(tr) // 5)
    fit_i, val_i = tr[n_val:], tr[:n_val]
    x_std = w[tr].std(0).clamp_min(1e-6)
    masks = group_masks(generator)
    names = list(masks)
    dev = next(generator.parameters()).device
    cal = generator.broadcast(w[te[:n_cal]]).contiguous().to(dev)
    outside = outside_face_mask(generator.resolution).to(dev)
    metric = None
    if identity_mu:
        metric = group_identity_metric(generator, embed, w[tr[:n_metric]].to(dev), masks, batch_size=8,
                                       seed=seed + 2, progress=progress)  # fmt: skip
    vectors: dict[str, torch.Tensor] = {}
    whole: dict[str, torch.Tensor] = {}
    slopes: dict[str, float] = {}
    stats: dict[str, dict] = {}
    it = list(attributes)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="directions")
    for a in it:
        y = regression_target(a, samples.scores[a].float())
        lam = max(LAMBDA_GRID, key=lambda la: _r2(w, y, fit_i, val_i, x_std, la))
        beta = ridge(w[tr] / x_std, y[tr], lam) / x_std
        pred = (w[te] - w[tr].mean(0)) @ beta + y[tr].mean()
        r2 = float(1.0 - ((y[te] - pred) ** 2).mean() / y[te].var().clamp_min(1e-12))
        u = beta / beta.norm().clamp_min(1e-12)
        d = u * float(((w[tr] - w[tr].mean(0)) @ u).std())
        trials = {}
        for groups in group_sets:
            vec = (_set_mask(masks, groups).float()[:, None] * d[None]).to(dev)
            trials[set_label(groups)] = {"groups": list(groups), "vector": vec,
                                         **_try_vector(generator, guidance, embed, cal, vec, a, alpha_cal, outside,
                                                       batch_size)}  # fmt: skip
        full = trials["all"]
        slope_source = "causal"
        if abs(full["slope"]) < 1e-6:  # the calibration latents did not move (saturated): the fitted slope stands
            full["slope"], slope_source = float(beta @ d), "fitted (calibration saturated)"
        eligible = [k for k, t in trials.items()
                    if t["slope"] * full["slope"] > 0 and abs(t["slope"]) >= MIN_SLOPE_SHARE * abs(full["slope"])]
        if not eligible:  # the attribute does not move reliably: keep the whole-W+ direction
            eligible = ["all"]
            trials["all"]["slope"] = full["slope"]

        def cost(k: str) -> float:
            t = trials[k]
            return _ratio(t["outside"], full["outside"]) + _ratio(t["identity"], full["identity"])

        chosen = min(eligible, key=cost)
        best, mu_used = trials[chosen], None
        if metric is not None:
            m_s = _restrict_metric(metric, names, tuple(best["groups"]), generator.w_dim)
            mask = _set_mask(masks, tuple(best["groups"])).float()[:, None].to(dev)
            plain = best
            for mu in identity_mu:
                v = identity_aware(beta, m_s, mu)
                v = v if float(v @ beta) >= 0 else -v
                cand = mask * (v * d.norm()).to(dev)[None]
                t = {"groups": plain["groups"], "vector": cand,
                     **_try_vector(generator, guidance, embed, cal, cand, a, alpha_cal, outside, batch_size)}
                trials[f"{chosen} μ={mu:g}"] = t
                if (t["slope"] * full["slope"] > 0 and abs(t["slope"]) >= MIN_SLOPE_SHARE * abs(full["slope"])
                        and t["identity"] < best["identity"] and t["outside"] <= 1.1 * plain["outside"]):
                    best, mu_used = t, mu
        vec = best["vector"]
        scale = full["slope"] / best["slope"]
        vectors[a] = (vec * scale).float().cpu()
        whole[a] = d.float().cpu()
        slopes[a] = float(full["slope"])
        stats[a] = {
            "r2": r2, "ridge_lambda": float(lam), "fit_slope": float(beta @ d),
            "causal_slope": float(full["slope"]), "value_mean": float(samples.scores[a].mean()),
            "value_std": float(samples.scores[a].std()), "groups": set_label(tuple(best["groups"])),
            "identity_mu": mu_used, "rescale": float(scale), "slope_source": slope_source,
            "outside_ratio": _ratio(best["outside"], full["outside"]),
            "identity_ratio": _ratio(best["identity"], full["identity"]),
            "trials": {k: {kk: vv for kk, vv in t.items() if kk != "vector"} for k, t in trials.items()},
            "probability": a in PROBABILITY_ATTRIBUTES,
        }  # fmt: skip
        say(f"{a}: R² {r2:.3f}, groups {stats[a]['groups']}"
            f"{'' if mu_used is None else f' (identity-aware μ={mu_used:g})'}, outside-face change "
            f"{stats[a]['outside_ratio']:.2f}× and identity cost {stats[a]['identity_ratio']:.2f}× the whole-W+ direction")
    return AttributeDirections(
        generator=generator.name, num_ws=generator.num_ws, w_dim=generator.w_dim, vectors=vectors, slopes=slopes,
        stats=stats, whole=whole,
        meta={"n": int(m), "seed": int(samples.settings.seed), "mode": "groups", "alpha_cal": alpha_cal,
              "n_cal": int(n_cal), "work_size": int(generator.resolution), "face_view": samples.settings.view,
              "group_sets": [set_label(g) for g in group_sets], "identity_mu_grid": list(identity_mu),
              "n_metric": int(min(n_metric, len(tr))) if identity_mu else 0,
              "min_slope_share": MIN_SLOPE_SHARE, "truncation": samples.settings.truncation},
    )  # fmt: skip


def group_table_markdown(d: AttributeDirections) -> str:
    """Markdown table: per attribute, the fit and every group set tried (slope, outside-face change, identity cost)."""
    sets = d.meta.get("group_sets", [set_label(g) for g in GROUP_SETS])
    head = ("| attribute | held-out R² | chosen | "
            + " | ".join(f"{s}: slope / outside / id" for s in sets)
            + " | outside vs all | identity vs all |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for a, s in d.stats.items():
        cells = []
        for k in sets:
            t = s["trials"].get(k)
            if t is None:
                cells.append("–")
            elif t["outside"] == float("inf"):
                cells.append(f"{t['slope']:.2f} / did not move")
            else:
                cells.append(f"{t['slope']:.2f} / {t['outside']:.1f} / {t['identity']:.3f}")
        chosen = s["groups"] + ("" if s.get("identity_mu") is None else f" (μ={s['identity_mu']:g})")
        lines.append(f"| {a} | {s['r2']:.3f} | {chosen} | " + " | ".join(cells)
                     + f" | {s['outside_ratio']:.2f}× | {s['identity_ratio']:.2f}× |")  # fmt: skip
    return "\n".join(lines) + "\n"

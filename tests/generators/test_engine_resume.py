"""Every family x strategy runs in the one fine-tuning loop, and resuming equals not stopping."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from advsig.errors import ConfigError
from advsig.generators.families import get_family, list_families, register_family
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.position_map import POSITION_MAP_SUFFIXES as MAP_SUFFIXES

CASES = [(f, s) for f in list_families() for s in get_family(f).strategies]
# The recipes that can add a position map first (FinetuneConfig.position_map).
POSITION_MAP_CASES = [
    ("gan", "distill"),
    ("gan", "data"),
    ("pixel", "distill"),
    ("latent", "decoder"),
]
# What each family's map adds that starts at zero (a signature head's map starts random; the
# last convolution that modulates it starts at zero).
HEAD_LAST_CONV = ("signature_head.features.6.weight",)
ZERO_AT_FIRST = {"gan": HEAD_LAST_CONV, "pixel": MAP_SUFFIXES, "latent": HEAD_LAST_CONV}


def _run(family: str, strategy: str, out: Path, kit: Path, **kw) -> Path:
    config = FinetuneConfig(
        model=f"toy:{family}", out=str(out), kit=str(kit), strategy=strategy, code="3c",
        steps=4, batch_size=2, lr=1e-3, ema_decay=0.9, checkpoint_every=2,
        self_samples=4, sample_steps=2, log_every=1, **kw,
    )  # fmt: skip
    # A fresh toy for every run: fine-tuning trains the model it is given in place.
    return finetune_generator(config, model=get_family(family).new_toy(seed=0))


def _saved_tensors(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for path in sorted(folder.rglob("*.safetensors")):
        for key, value in load_file(str(path)).items():
            tensors[f"{path.relative_to(folder)}:{key}"] = value
    return tensors


CASES_AND_MAPS = [(f, s, False) for f, s in CASES] + [(f, s, True) for f, s in POSITION_MAP_CASES]


@pytest.mark.parametrize(
    ("family", "strategy", "position_map"),
    CASES_AND_MAPS,
    ids=[f"{f}-{s}" + ("-position-map" if m else "") for f, s, m in CASES_AND_MAPS],
)
def test_resume_equals_an_uninterrupted_run(family, strategy, position_map, tiny_kit_dir, tmp_path):
    """Stopped after step 2 and resumed, a run saves the weights (the EMA's) of one never stopped."""
    kw = {"position_map": True} if position_map else {}
    full = _run(family, strategy, tmp_path / "full", tiny_kit_dir, **kw)
    # A crash after step 2: only that checkpoint survives; the rerun resumes from it.
    shutil.copytree(
        tmp_path / "full-work" / "checkpoint-2", tmp_path / "resumed-work" / "checkpoint-2"
    )
    resumed = _run(family, strategy, tmp_path / "resumed", tiny_kit_dir, resume="latest", **kw)
    a, b = _saved_tensors(full), _saved_tensors(resumed)
    assert a.keys() == b.keys() and a
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    # And the run trained: its saved weights differ from the untouched toy's.
    untouched = get_family(family).new_toy(seed=0)
    untouched.save(tmp_path / "untouched")
    c = _saved_tensors(tmp_path / "untouched")
    changed = [k for k in a if k in c and not torch.equal(a[k], c[k])]
    if position_map:  # the map was added, trained, saved, and is loaded back
        maps = [k for k in a if k.endswith(MAP_SUFFIXES)]
        moved = [k for k in a if k.endswith(ZERO_AT_FIRST[family])]
        assert maps and moved and all(a[k].abs().sum() > 0 for k in moved)
        loaded = get_family(family).load(full)
        net = {"gan": "generator", "pixel": "unet", "latent": "vae"}[family]
        net = getattr(loaded, net)
        params = {n: p for n, p in net.named_parameters() if n.endswith(MAP_SUFFIXES)}
        assert len(params) == len(maps)
        for name, param in params.items():
            torch.testing.assert_close(param.detach(), a[_key(a, name)])
    else:
        assert changed


def _key(tensors: dict[str, torch.Tensor], name: str) -> str:
    (key,) = [k for k in tensors if k.endswith(":" + name)]
    return key


def test_position_map_is_refused_where_it_has_no_meaning(tiny_kit_dir, tmp_path):
    with pytest.raises(ConfigError, match="position-map"):
        _run("latent", "data", tmp_path / "l", tiny_kit_dir, position_map=True)


def test_a_model_of_another_family_is_refused_by_name(tiny_kit_dir, tmp_path):
    config = FinetuneConfig(model="toy:gan", out=str(tmp_path / "o"), strategy="data", steps=1)
    with pytest.raises(ConfigError, match="gan generator, not a pixel one"):
        finetune_generator(config, model=get_family("gan").new_toy(), family="pixel")
    assert not (tmp_path / "o").exists()


def test_a_new_family_is_one_registration(monkeypatch):
    """A family registered from outside advsig is found, checked and refused like the built-ins."""
    from advsig.generators import families
    from advsig.generators.families import Family

    monkeypatch.setattr(families, "_FAMILIES", dict(families._FAMILIES))  # undone after the test
    family = register_family(
        Family(
            "toy-pixel-copy",
            ("data",),
            loader="advsig.generators.pixel:load_pixel_diffusion",
            recipe="advsig.generators.pixel_finetune:PixelRecipe",
            toy="advsig.generators.pixel:toy_pixel_diffusion",
        )
    )
    assert "toy-pixel-copy" in list_families()
    assert family.new_toy().family == "pixel"
    with pytest.raises(ConfigError, match="toy-pixel-copy generator.*not 'self'"):
        family.check_strategy("self")
    with pytest.raises(ConfigError, match="unknown generator family 'nope'"):
        get_family("nope")

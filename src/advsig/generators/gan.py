"""GANs as advsig generators: any latent-to-image ``nn.Module`` factory with safetensors weights.

An advsig GAN folder::

    generator.json          {"factory": "package.module:function", "kwargs": {...},
                             "latent_dim": 64, "num_classes": null, "sample_size": 32,
                             "output_range": "[-1,1]",
                             "discriminator": {"factory": ..., "kwargs": {...}} or null}
    generator.safetensors   the generator's state dict
    discriminator.safetensors   only when generator.json names a discriminator
    advsig.json             provenance (what advsig did to the model), optional

Loading imports the factory by its import path, builds the network from ``kwargs`` and loads the
weights strictly; nothing is unpickled and no code is read from the folder. The factory must be
an ``nn.Module`` subclass, a function in the ``advsig`` package, or a function marked with
:func:`gan_factory`: a folder cannot make advsig call an arbitrary function (``os:system``).

The network contract: ``module(z)`` or ``module(z, classes)`` with z (B, latent_dim) and classes
(B,) long -> image (B, 3, s, s) in ``output_range``. A module with ``noise_shapes()`` also gets
``noise=[(B, *shape), ...]`` (StyleGAN's per-layer noise), drawn per sample like z.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from advsig.errors import CheckpointError, ConfigError
from advsig.generators.folders import GAN_CONFIG_NAME, PROVENANCE_NAME, resolve_model_path
from advsig.generators.sampling import initial_noise
from advsig.models.modeling_utils import load_weights, save_weights
from advsig.utils import swap_in_dir, temp_sibling_dir

WEIGHTS_NAME = "generator.safetensors"
DISCRIMINATOR_NAME = "discriminator.safetensors"
OUTPUT_RANGES = ("[-1,1]", "[0,1]")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
# Salts that make the noise inputs and classes of sample ``index`` independent of its z.
_NOISE_SALT, _CLASS_SALT = 0x5EED_0001, 0x5EED_0002


def gan_factory(fn):
    """Mark a function as a GAN factory that advsig folders may name (outside the advsig package).

    Example:
        >>> @gan_factory
        ... def my_generator(width: int = 64) -> nn.Module: ...
    """
    fn.__advsig_gan_factory__ = True
    return fn


def import_factory(path: str, *, where: str = "factory"):
    """The callable named by ``"package.module:attribute"``; refuses anything not a net factory."""
    if not isinstance(path, str) or not _FACTORY.match(path):
        raise ConfigError(
            f"{where} {path!r} is not an import path of the form 'package.module:name'"
        )
    module_name, attr = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{where} {path!r}: cannot import module {module_name!r} ({exc})"
        ) from exc
    obj = getattr(module, attr, None)
    if obj is None:
        raise ConfigError(f"{where} {path!r}: module {module_name!r} has no {attr!r}")
    trusted = (
        (inspect.isclass(obj) and issubclass(obj, nn.Module))
        or (inspect.isfunction(obj) and getattr(obj, "__advsig_gan_factory__", False))
        or (inspect.isfunction(obj) and obj.__module__.split(".")[0] == "advsig")
    )
    if not trusted:
        raise ConfigError(
            f"{where} {path!r} is neither an nn.Module class nor a function marked with "
            "advsig.generators.gan.gan_factory; refusing to call it"
        )
    return obj


def build_module(factory: str, kwargs: dict, *, where: str = "factory") -> nn.Module:
    fn = import_factory(factory, where=where)
    try:
        module = fn(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} {factory!r} rejected kwargs {kwargs}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise ConfigError(f"{where} {factory!r} returned {type(module).__name__}, not an nn.Module")
    return module


@dataclass(frozen=True)
class GanSpec:
    """What ``generator.json`` says: how to build the networks and read their output."""

    factory: str
    kwargs: dict
    latent_dim: int
    sample_size: int
    num_classes: int | None = None
    output_range: str = "[-1,1]"
    discriminator: dict | None = None  # {"factory": ..., "kwargs": {...}}

    def __post_init__(self) -> None:
        if not isinstance(self.factory, str) or not _FACTORY.match(self.factory):
            raise ConfigError(
                f"factory {self.factory!r} is not an import path 'package.module:name'"
            )
        if not isinstance(self.kwargs, dict):
            raise ConfigError(f"kwargs must be a JSON object, got {self.kwargs!r}")
        if not isinstance(self.latent_dim, int) or self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be a positive integer, got {self.latent_dim!r}")
        if not isinstance(self.sample_size, int) or self.sample_size < 1:
            raise ConfigError(f"sample_size must be a positive integer, got {self.sample_size!r}")
        if self.num_classes is not None and (
            not isinstance(self.num_classes, int) or self.num_classes < 1
        ):
            raise ConfigError(f"num_classes must be null or >= 1, got {self.num_classes!r}")
        if self.output_range not in OUTPUT_RANGES:
            raise ConfigError(
                f"output_range must be one of {OUTPUT_RANGES}, got {self.output_range!r}"
            )
        d = self.discriminator
        if d is not None and (not isinstance(d, dict) or set(d) != {"factory", "kwargs"}):
            raise ConfigError(f"discriminator must be null or {{factory, kwargs}}, got {d!r}")

    def to_dict(self) -> dict:
        return {
            "advsig_gan": 1,
            "factory": self.factory,
            "kwargs": self.kwargs,
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "sample_size": self.sample_size,
            "output_range": self.output_range,
            "discriminator": self.discriminator,
        }

    @classmethod
    def from_dict(cls, d: dict, *, where: str = GAN_CONFIG_NAME) -> GanSpec:
        known = {"factory", "kwargs", "latent_dim", "num_classes", "sample_size", "output_range",
                 "discriminator"}  # fmt: skip
        missing = {"factory", "latent_dim", "sample_size"} - set(d)
        if missing:
            raise CheckpointError(f"{where}: missing {sorted(missing)}")
        args = {k: d[k] for k in known if k in d}
        args["kwargs"] = args.get("kwargs") or {}
        try:
            return cls(**args)
        except ConfigError as exc:
            raise CheckpointError(f"{where}: {exc}") from exc


@dataclass
class GanModel:
    """A one-step generator (a :class:`advsig.generators.base.GeneratorModel`).

    ``discriminator`` is only there when the folder named one and it was asked for
    (fine-tuning); sampling never needs it.
    """

    family = "gan"
    generator: nn.Module
    spec: GanSpec
    source: str = ""
    provenance: dict | None = None
    discriminator: nn.Module | None = field(default=None, repr=False)

    @property
    def sample_size(self) -> int:
        return self.spec.sample_size

    @property
    def latent_dim(self) -> int:
        return self.spec.latent_dim

    @property
    def num_classes(self) -> int | None:
        return self.spec.num_classes

    @property
    def device(self) -> torch.device:
        tensor = next(self.generator.parameters(), None)
        if tensor is None:
            tensor = next(self.generator.buffers(), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    def noise_shapes(self) -> list[tuple[int, ...]]:
        fn = getattr(self.generator, "noise_shapes", None)
        return [tuple(s) for s in fn()] if callable(fn) else []

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        *,
        factory: str,
        kwargs: dict | None = None,
        latent_dim: int,
        num_classes: int | None = None,
        sample_size: int | None = None,
        output_range: str = "[-1,1]",
        discriminator: nn.Module | None = None,
        discriminator_factory: str | None = None,
        discriminator_kwargs: dict | None = None,
        source: str = "",
    ) -> GanModel:
        """Wrap a built network; ``factory(**kwargs)`` must rebuild it (that is what is saved).

        ``sample_size`` is measured with one forward pass when not given.

        Example:
            >>> from advsig.generators.stylegan import stylegan2_small
            >>> model = GanModel.from_module(stylegan2_small(), latent_dim=64,
            ...     factory="advsig.generators.stylegan:stylegan2_small", kwargs={})
        """
        kwargs = dict(kwargs or {})
        import_factory(factory)  # a folder that cannot load back is refused now, not later
        d_spec = None
        if discriminator is not None:
            if discriminator_factory is None:
                raise ConfigError("a discriminator needs discriminator_factory (its import path)")
            import_factory(discriminator_factory, where="discriminator factory")
            d_spec = {"factory": discriminator_factory, "kwargs": dict(discriminator_kwargs or {})}
        if sample_size is None:
            probe = GanModel(module, GanSpec(factory, kwargs, latent_dim, 1, num_classes,
                                             output_range))  # fmt: skip
            sample_size = int(probe.sample([0]).shape[-1])
        spec = GanSpec(factory, kwargs, latent_dim, sample_size, num_classes, output_range, d_spec)
        return cls(module, spec, source or factory, None, discriminator)

    # ------------------------------------------------------------------ sampling
    def latents(
        self, indices: list[int], *, seed: int = 0, classes: list[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor] | None]:
        """z (N, latent_dim), classes (N,) or None, noise inputs: all fixed by (seed, index)."""
        z = torch.stack([initial_noise(i, seed, (self.latent_dim,)) for i in indices])
        cls = None
        if self.num_classes:
            if classes is None:
                classes = [
                    int(torch.randint(self.num_classes, (1,), generator=_gen(i, seed, _CLASS_SALT)))
                    for i in indices
                ]
            cls = torch.as_tensor(classes, dtype=torch.long)
            if len(cls) != len(indices) or cls.min() < 0 or cls.max() >= self.num_classes:
                raise ConfigError(
                    f"classes must be {len(indices)} values in [0, {self.num_classes})"
                )
        shapes = self.noise_shapes()
        noise = None
        if shapes:
            per_index = []
            for i in indices:
                g = _gen(i, seed, _NOISE_SALT)
                per_index.append([torch.randn(s, generator=g) for s in shapes])
            noise = [torch.stack(layer) for layer in zip(*per_index)]  # [(N, *shape)]
        return z, cls, noise

    def forward(
        self,
        z: torch.Tensor,
        classes: torch.Tensor | None = None,
        noise: list[torch.Tensor] | None = None,
        *,
        generator: nn.Module | None = None,
    ) -> torch.Tensor:
        """Images in [0, 1] scale, not clamped (so training gradients pass): (B, 3, s, s).

        ``generator`` replaces ``self.generator`` (a fine-tuned copy, an Accelerate wrapper).
        """
        net = generator if generator is not None else self.generator
        kw = {"noise": noise} if noise is not None else {}
        x = net(z, classes, **kw) if self.num_classes else net(z, **kw)
        return x / 2 + 0.5 if self.spec.output_range == "[-1,1]" else x

    @torch.inference_mode()
    def sample(
        self,
        indices: list[int],
        *,
        seed: int = 0,
        steps: int = 50,
        batch_size: int = 64,
        classes: list[int] | None = None,
    ) -> torch.Tensor:
        """Float (N, 3, s, s) in [0, 1]; ``steps`` is ignored (one forward pass per batch)."""
        indices = list(indices)
        self.generator.eval()
        device, out = self.device, []
        for k in range(0, len(indices), batch_size):
            chunk = indices[k : k + batch_size]
            cls_chunk = classes[k : k + batch_size] if classes is not None else None
            z, cls, noise = self.latents(chunk, seed=seed, classes=cls_chunk)
            x = self.forward(
                z.to(device),
                cls.to(device) if cls is not None else None,
                [n.to(device) for n in noise] if noise is not None else None,
            )
            out.append(x.clamp(0, 1).float().cpu())
        s = self.sample_size
        return torch.cat(out) if out else torch.empty(0, 3, s, s)

    def save(self, out: str | Path, *, provenance: dict | None = None) -> Path:
        return save_gan(self, out, provenance=provenance)


STYLEGAN_FACTORIES = ("advsig.generators.stylegan:stylegan2_small",
                      "advsig.generators.stylegan:stylegan2_tiny")  # fmt: skip


def with_position_map(model: GanModel) -> GanModel:
    """``model`` with a zero position map in its generator's last styled layer (same function).

    Only the built-in StyleGAN has one (:class:`advsig.generators.stylegan.StyleGANConfig`);
    another factory is refused by name. A generator that has a map already is returned as is.
    """
    return _with_part(model, "position_map", lambda key: key.endswith(".position"))


def with_signature_head(model: GanModel) -> GanModel:
    """``model`` with a :class:`~advsig.generators.position_map.SignatureHead` on its generator's
    8 px features, added to the clamped output (the same samples: the head's modulation starts
    at zero, and sampling clamps anyway)."""
    return _with_part(
        model, ("signature_head", "head_on_clamped"), lambda key: key.startswith("signature_head.")
    )


def _with_part(
    model: GanModel, flags: str | tuple[str, ...], is_new: Callable[[str], bool]
) -> GanModel:
    """``model`` rebuilt with the StyleGAN config ``flags`` on, its weights copied over."""
    flags = (flags,) if isinstance(flags, str) else flags
    flag = flags[0]
    if model.spec.factory not in STYLEGAN_FACTORIES:
        raise ConfigError(
            f"--position-map needs the built-in StyleGAN generator ({' or '.join(STYLEGAN_FACTORIES)}); "
            f"this one is built by {model.spec.factory}"
        )
    if model.spec.kwargs.get(flag):
        return model
    spec = replace(model.spec, kwargs={**model.spec.kwargs, **dict.fromkeys(flags, True)})
    generator = build_module(spec.factory, spec.kwargs)
    missing, unexpected = generator.load_state_dict(model.generator.state_dict(), strict=False)
    if unexpected or not all(is_new(k) for k in missing):
        raise CheckpointError(f"{flag}: unexpected weights {unexpected} / missing {missing}")
    param = next(model.generator.parameters())
    generator = generator.to(device=param.device, dtype=param.dtype)
    generator.train(model.generator.training)
    return replace(model, generator=generator, spec=spec)


def _gen(index: int, seed: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + index) ^ (salt << 32))


def new_gan(
    factory: str,
    kwargs: dict,
    *,
    latent_dim: int,
    num_classes: int | None = None,
    discriminator_factory: str | None = None,
    discriminator_kwargs: dict | None = None,
    output_range: str = "[-1,1]",
    seed: int = 0,
) -> GanModel:
    """Randomly initialised networks (seeded), e.g. for pre-training the demo GAN."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = build_module(factory, kwargs)
        d = (
            build_module(discriminator_factory, discriminator_kwargs or {}, where="discriminator")
            if discriminator_factory
            else None
        )
    return GanModel.from_module(
        g, factory=factory, kwargs=kwargs, latent_dim=latent_dim, num_classes=num_classes,
        output_range=output_range, discriminator=d, discriminator_factory=discriminator_factory,
        discriminator_kwargs=discriminator_kwargs, source=f"new:{factory}",
    )  # fmt: skip


def new_stylegan(resolution: int = 32, *, tiny: bool = False, seed: int = 0, **kwargs) -> GanModel:
    """A random built-in StyleGAN2-style generator with its discriminator."""
    from advsig.generators.stylegan import default_discriminator

    name = "stylegan2_tiny" if tiny else "stylegan2_small"
    factory = f"advsig.generators.stylegan:{name}"
    kwargs = {"resolution": resolution, **kwargs}
    probe = build_module(factory, kwargs)
    d_factory, d_kwargs = default_discriminator(resolution, tiny=tiny)
    if probe.num_classes:
        d_kwargs["num_classes"] = probe.num_classes
    return new_gan(
        factory, kwargs, latent_dim=probe.latent_dim, num_classes=probe.num_classes,
        discriminator_factory=d_factory, discriminator_kwargs=d_kwargs, seed=seed,
    )  # fmt: skip


# ---------------------------------------------------------------------- folders
def read_spec(folder: Path) -> GanSpec:
    path = folder / GAN_CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {GAN_CONFIG_NAME}; not an advsig GAN folder")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from exc
    if not isinstance(d, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return GanSpec.from_dict(d, where=str(path))


def load_gan(
    name_or_path: str | Path,
    *,
    device: str | torch.device = "cpu",
    with_discriminator: bool = False,
) -> GanModel:
    """Load an advsig GAN folder (or shipped name, e.g. ``gan-32``) as :class:`GanModel`.

    The discriminator is loaded only if asked for and named in ``generator.json``.

    Example:
        >>> model = load_gan("gan-32")
        >>> model.sample([0, 1], seed=0).shape
        torch.Size([2, 3, 32, 32])
    """
    source = resolve_model_path(name_or_path)
    folder = Path(source)
    if not folder.is_dir():
        raise CheckpointError(f"{source!r}: GANs load from a local folder or shipped name")
    spec = read_spec(folder)
    where = str(folder / GAN_CONFIG_NAME)
    try:
        generator = build_module(spec.factory, spec.kwargs, where=f"{where}: factory")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from exc
    load_weights(generator, folder / WEIGHTS_NAME)
    discriminator = None
    if with_discriminator and spec.discriminator is not None:
        d = spec.discriminator
        try:
            discriminator = build_module(d["factory"], d["kwargs"], where=f"{where}: discriminator")
        except ConfigError as exc:
            raise CheckpointError(str(exc)) from exc
        load_weights(discriminator, folder / DISCRIMINATOR_NAME)
        discriminator = discriminator.to(device).eval()
    provenance = None
    if (folder / PROVENANCE_NAME).is_file():
        provenance = json.loads((folder / PROVENANCE_NAME).read_text(encoding="utf-8"))
    return GanModel(generator.to(device).eval(), spec, source, provenance, discriminator)


def save_gan(model: GanModel, out: str | Path, *, provenance: dict | None = None) -> Path:
    """Write the folder atomically (temporary sibling, then rename).

    The discriminator is written (and named in ``generator.json``) only when the model has one.
    """
    out = Path(out)
    tmp = temp_sibling_dir(out)
    tmp.mkdir()
    spec = model.spec
    if model.discriminator is None:
        spec = replace(spec, discriminator=None)
    elif spec.discriminator is None:
        raise ConfigError("the model has a discriminator but no factory to rebuild it")
    (tmp / GAN_CONFIG_NAME).write_text(json.dumps(spec.to_dict(), indent=2), encoding="utf-8")
    save_weights(model.generator, tmp / WEIGHTS_NAME)
    if model.discriminator is not None:
        save_weights(model.discriminator, tmp / DISCRIMINATOR_NAME)
    if provenance is not None:
        (tmp / PROVENANCE_NAME).write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    return swap_in_dir(tmp, out)


def toy_gan(*, seed: int = 0) -> GanModel:
    """The tiny built-in StyleGAN2-style generator at 32x32 with its discriminator (tests)."""
    return new_stylegan(32, tiny=True, seed=seed)

"""What one snapshot of a policy's weights is made of."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tipl_opt.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter tensor of a policy in flatten order.

    ``role`` says which part of the agent owns it: ``"actor"``, ``"critic"``, ``"q"`` (a Q-network
    trained on its own), or another adapter-defined word. Target networks are never recorded.
    """

    name: str
    shape: tuple[int, ...]
    role: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "role": self.role}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParamSpec:
        return cls(name=str(data["name"]), shape=tuple(int(d) for d in data["shape"]),
                   role=str(data["role"]))


@dataclass(frozen=True)
class TaggedParam:
    """A live parameter tensor with its name and role, as an adapter hands it over."""

    name: str
    role: str
    tensor: torch.Tensor

    @property
    def spec(self) -> ParamSpec:
        return ParamSpec(self.name, tuple(self.tensor.shape), self.role)


@dataclass(frozen=True)
class Snapshot:
    """The agent's weights at one point of training, with where training stood.

    ``env_steps`` counts training environment steps only; ``eval_steps`` is the running total of
    environment steps spent on evaluation so far, recorded apart. ``return_mean``/``return_std``
    are over deterministic evaluation episodes of the current policy (NaN when not evaluated).
    """

    params: Sequence[TaggedParam]
    env_steps: int
    grad_steps: int
    return_mean: float
    return_std: float
    eval_steps: int = 0


def flatten(params: Sequence[TaggedParam]) -> torch.Tensor:
    """Concatenate the tensors into one detached float32 CPU vector of shape [P]."""
    return torch.cat([p.tensor.detach().reshape(-1).to("cpu", torch.float32) for p in params])


def unflatten(vector: torch.Tensor, specs: Sequence[ParamSpec]) -> dict[str, torch.Tensor]:
    """Split a [P] vector back into named tensors of the spec's shapes."""
    total = sum(s.numel for s in specs)
    if vector.numel() != total:
        raise ValueError(f"vector has {vector.numel()} values but the spec describes {total}")
    out: dict[str, torch.Tensor] = {}
    offset = 0
    for s in specs:
        out[s.name] = vector[offset : offset + s.numel].reshape(s.shape)
        offset += s.numel
    return out


def spec_size(specs: Sequence[ParamSpec]) -> int:
    return sum(s.numel for s in specs)


def role_mask(specs: Sequence[ParamSpec], roles: Sequence[str] | None) -> torch.Tensor | None:
    """Flat bool [P]: True at the parameters whose role is in ``roles`` (``None``: no mask).
    Raises ConfigError when ``roles`` names a role no parameter has."""
    if roles is None:
        return None
    present = {spec.role for spec in specs}
    unknown = sorted(set(roles) - present)
    if unknown:
        raise ConfigError(f"jump roles {unknown} match no parameter of this optimizer; its "
                          f"roles are {sorted(present)}. Leave roles unset to move every "
                          "parameter.")
    return torch.cat([torch.full((math.prod(spec.shape),), spec.role in roles)
                      for spec in specs])


def name_matches(spec_name: str, name: str) -> bool:
    """Whether a parameter called ``spec_name`` is the one ``name`` names: the same name, or
    ``name`` as its last dotted parts (``log_std`` names ``policy.log_std``)."""
    return spec_name == name or spec_name.endswith("." + name)


def value_head(specs: Sequence[ParamSpec]) -> tuple[str, ...]:
    """Names of the critic's value output: the ``critic`` parameters with a single output row,
    a last linear layer's weight [1, H] and bias [1] (SB3 PPO's ``value_net``, Tianshou's
    ``critic.last``); empty when the specs have none."""
    return tuple(spec.name for spec in specs
                 if spec.role == "critic" and spec.shape[:1] == (1,))


def moving_mask(specs: Sequence[ParamSpec], roles: Sequence[str] | None,
                fixed: Sequence[str] = (), fixed_value_head: bool = False
                ) -> torch.Tensor | None:
    """Flat bool [P]: True at the parameters a jump moves, those of ``roles``
    (:func:`role_mask`; ``None``: every role) but not those named in ``fixed``
    (:func:`name_matches`) nor, with ``fixed_value_head``, the critic's value output
    (:func:`value_head`; a warning when there is none); ``None`` when every parameter moves.
    Raises ConfigError when a role or a name matches no parameter."""
    mask = role_mask(specs, roles)
    head: tuple[str, ...] = ()
    if fixed_value_head:
        head = value_head(specs)
        if not head:
            logger.warning("TIPL: value_head=fixed, but no critic parameter has a single "
                           "output row; every critic parameter jumps.")
    if not fixed and not head:
        return mask
    unknown = sorted(n for n in fixed if not any(name_matches(s.name, n) for s in specs))
    if unknown:
        raise ConfigError(f"fixed_params {unknown} name no parameter of this optimizer; its "
                          f"parameters are {[s.name for s in specs]}.")
    kept = torch.cat([torch.full((math.prod(spec.shape),),
                                 spec.name in head
                                 or any(name_matches(spec.name, n) for n in fixed))
                      for spec in specs])
    return ~kept if mask is None else mask & ~kept

"""The TIPL network: a causal Transformer over (time, group) tokens of temporal-SVD coordinates."""

from __future__ import annotations

import torch
from torch import nn

from tipl_opt.predictors.tokens import DESCRIPTOR_DIM


def linear_token_deltas(tokens: torch.Tensor, times: torch.Tensor,
                        horizons: torch.Tensor) -> torch.Tensor:
    """``linear``'s prediction as a change of coordinates from the last snapshot.

    ``tokens`` [B, G, K, r] (centred over time, as temporal-SVD coordinates are), ``times``
    [B, K] (last = 0, in mean intervals), ``horizons`` [H]: [B, G, H, r]. A least-squares line
    per coordinate, evaluated ``h`` intervals after the last snapshot, minus the last
    coordinates; decoded, it is exactly :class:`~tipl_opt.predictors.LinearPredictor` when the
    tokens keep every direction of the window (r = K - 1).
    """
    tc = times - times.mean(dim=-1, keepdim=True)  # [B, K]
    denom = (tc * tc).sum(dim=-1).clamp(min=1e-12)  # [B]
    slope = (tokens * tc[:, None, :, None]).sum(dim=2) / denom[:, None, None]  # [B, G, r]
    mean = tokens.mean(dim=2)  # [B, G, r], 0 for centred coordinates
    at = horizons[None, :] - times.mean(dim=-1, keepdim=True)  # [B, H]
    fit = mean[:, :, None, :] + slope[:, :, None, :] * at[:, None, :, None]
    return fit - tokens[:, :, -1:, :]


class TIPLNet(nn.Module):
    """Maps a batch of tokenised windows to coordinate changes, one per horizon.

    Input ``tokens`` [B, G, K, r] (normalised coordinates), ``times`` [B, K] (snapshot times
    relative to the last, in mean intervals), ``descriptors`` [B, G, D] and ``group_mask``
    [B, G] (True for real groups, False for padding). A token (t, g) attends to every token of
    times <= t (causal in time). Output [B, G, H, r]: the predicted change of each group's
    coordinates from the last snapshot at each horizon. The output layer starts at zero, so an
    untrained model predicts "stay where you are". With ``residual_horizons`` (the horizons,
    in mean intervals, one per head) the output is instead a correction added to ``linear``'s
    extrapolation (:func:`linear_token_deltas`), and an untrained model predicts ``linear``.
    """

    def __init__(self, rank: int, context: int, num_horizons: int, *, d_model: int = 64,
                 layers: int = 2, heads: int = 4, dropout: float = 0.0,
                 residual_horizons: tuple[int, ...] | None = None) -> None:
        super().__init__()
        if residual_horizons is not None and len(residual_horizons) != num_horizons:
            raise ValueError(f"{len(residual_horizons)} residual horizons for {num_horizons} "
                             "heads")
        self.residual = residual_horizons is not None
        self.horizon_values: torch.Tensor
        self.register_buffer("horizon_values", torch.tensor(residual_horizons or (),
                                                            dtype=torch.float32),
                             persistent=False)
        self.rank, self.context, self.num_horizons = rank, context, num_horizons
        self.embed = nn.Linear(rank + 1 + DESCRIPTOR_DIM, d_model)
        self.time_embed = nn.Embedding(context, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model,
                                           dropout=dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_horizons * rank)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, tokens: torch.Tensor, times: torch.Tensor, descriptors: torch.Tensor,
                group_mask: torch.Tensor) -> torch.Tensor:
        b, g, k, r = tokens.shape
        feats = torch.cat([tokens, times[:, None, :, None].expand(b, g, k, 1),
                           descriptors[:, :, None, :].expand(b, g, k, descriptors.shape[-1])],
                          dim=-1)
        x = self.embed(feats) + self.time_embed(torch.arange(k, device=tokens.device))
        x = x.transpose(1, 2).reshape(b, k * g, -1)  # sequence ordered (t, g)
        t_index = torch.arange(k, device=tokens.device).repeat_interleave(g)
        causal = t_index[None, :] > t_index[:, None]  # True = may not attend
        padding = ~group_mask[:, None, :].expand(b, k, g).reshape(b, k * g)
        x = self.encoder(x, mask=causal, src_key_padding_mask=padding)
        last = self.norm(x.reshape(b, k, g, -1)[:, -1])  # [B, G, d]
        out = self.head(last).reshape(b, g, self.num_horizons, r)
        if self.residual:
            out = out + linear_token_deltas(tokens, times, self.horizon_values)
        return out

"""
The policy's inference path on the CPU: TransformerPolicy's function in fewer, faster ops.

At batch 1 a policy's forward is a chain of small products over a handful of rows (the
observation tokens), where PyTorch's default CPU matrix product and the module calls around
it cost more than the arithmetic. Inference (eval mode, no gradients, CPU) therefore runs
this plan, built once from the weights and rebuilt when any of them changes:

- every linear layer's weights packed once for oneDNN (PyTorch's own CPU kernels, the ones
  torch.compile uses for frozen linear layers), the feed-forward GELU fused into its product;
- vector tokens: normalisation folded into the token projections, all keys in one product
  (block-diagonal for one token per key), padded steps replaced by what a zeroed input gives;
- the query side of the first decoder block (LayerNorm and projection of learned queries)
  computed once; the action unnormalisation folded into the action head (predict);
- the blocks as plain functional calls, no module overhead.

Results equal the module path to float rounding (tested within 1e-5, any mask and batch).
Training, gradients, other devices and traced, scripted or exported graphs take the module
path.
"""

from typing import List, Mapping, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

Obs = Mapping[str, torch.Tensor]


def plan_applies(model: nn.Module, device: torch.device) -> bool:
    """Tell whether a call on device may use the plan (inference on the CPU, nothing traced)."""
    weights = model.obs_pos
    return (not model.training and not torch.is_grad_enabled() and device.type == 'cpu'
            and weights.dtype == torch.float32
            # Weights made under torch.inference_mode() keep no version counter to follow.
            and not weights.is_inference()
            and not torch.jit.is_tracing() and not torch.jit.is_scripting()
            and not torch.compiler.is_compiling())


def _onednn() -> bool:
    return (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, '_reorder_linear_weight')
            and hasattr(torch.ops.mkldnn, '_linear_pointwise'))


class Dense:
    """One linear layer (optionally followed by GELU) prepared for inference on the CPU."""

    # Row count the packed layout is tuned for (any count runs): batch 1 x a few tokens.
    ROWS_HINT = 8
    # Smaller weight matrices gain nothing from packing: their call overhead dominates.
    MIN_PACKED = 1 << 16

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, gelu: bool = False) -> None:
        """Pack weight (out, in) for oneDNN where PyTorch has it, else keep it as it is."""
        self.gelu = gelu
        self.bias = bias.detach().contiguous()
        self.packed = weight.numel() >= self.MIN_PACKED and _onednn()
        weight = weight.detach().contiguous()
        self.weight = (torch.ops.mkldnn._reorder_linear_weight(weight, self.ROWS_HINT)
                       if self.packed else weight)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Return x W^T + b (then GELU) over the last dimension of x."""
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(
                x, self.weight, self.bias, 'gelu' if self.gelu else 'none', [],
                'none' if self.gelu else '')
        y = F.linear(x, self.weight, self.bias)
        return F.gelu(y) if self.gelu else y

    @classmethod
    def of(cls, *layers: nn.Linear, gelu: bool = False) -> 'Dense':
        """Prepare layers applied to the same input as one product (outputs concatenated)."""
        return cls(torch.cat([layer.weight for layer in layers]),
                   torch.cat([layer.bias for layer in layers]), gelu)


class _Norm:
    """A LayerNorm's parameters, applied functionally."""

    def __init__(self, norm: nn.LayerNorm) -> None:
        self.shape, self.weight, self.bias, self.eps = (
            tuple(norm.normalized_shape), norm.weight.detach(), norm.bias.detach(), norm.eps)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.shape, self.weight, self.bias, self.eps)


class _Block:
    """A pre-LayerNorm block: attention (self, or over a memory) then a GELU feed-forward."""

    def __init__(self, block: nn.Module, n_heads: int, self_attention: bool) -> None:
        attn = block.attn
        self.heads = n_heads
        self.ln1, self.ln2 = _Norm(block.ln1), _Norm(block.ln2)
        # Self-attention: one product gives queries, keys and values.
        self.qkv = Dense.of(attn.q, attn.kv) if self_attention else None
        self.q = None if self_attention else Dense.of(attn.q)
        self.kv = None if self_attention else Dense.of(attn.kv)
        self.proj = Dense.of(attn.proj)
        self.ff1, self.ff2 = Dense.of(block.mlp[0], gelu=True), Dense.of(block.mlp[2])

    def _heads(self, x: torch.Tensor, parts: int) -> torch.Tensor:
        """(B, T, parts * D) -> (parts, B, heads, T, D / heads)."""
        b, t, d = x.shape
        return x.view(b, t, parts, self.heads, d // parts // self.heads).permute(2, 0, 3, 1, 4)

    def _rest(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Residual attention output y (B, heads, T, Dh) into x, then the feed-forward."""
        b, t, d = x.shape
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.ff2(self.ff1(self.ln2(x)))

    def encode(self, x: torch.Tensor, attend: Optional[torch.Tensor]) -> torch.Tensor:
        """Self-attention block over x (B, T, D); attend (B, 1, 1, T) or None (all valid)."""
        q, k, v = self._heads(self.qkv(self.ln1(x)), 3)
        return self._rest(x, F.scaled_dot_product_attention(q, k, v, attn_mask=attend))

    def decode(self, x: torch.Tensor, memory: torch.Tensor, attend: Optional[torch.Tensor],
               q: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Cross-attention block of x (B, K, D) over memory; q: x's projected queries, if known."""
        q = self._heads(self.q(self.ln1(x)) if q is None else q, 1)[0]
        k, v = self._heads(self.kv(memory), 2)
        y = F.scaled_dot_product_attention(q.expand(k.shape[0], -1, -1, -1), k, v,
                                           attn_mask=attend)
        return self._rest(x.expand(k.shape[0], -1, -1), y)


class InferencePlan:
    """Tensors derived from a TransformerPolicy's weights, and the forward that uses them."""

    def __init__(self, model: nn.Module) -> None:
        """Derive the prepared layers from model's current weights (call under no_grad)."""
        self.model = model
        cfg = model.config
        self.sources = list(model.parameters()) + list(model.buffers())
        self.version = self._version(self.sources)
        self.n_vector_tokens = model.vector_tokens_per_step
        if model.vector_keys:
            weight, bias = self._fold_vector_tokens(model)
            self.tokens = Dense(weight, bias)
            # A padded step's normalised input is zero, so its tokens are the biases.
            self.pad_tokens = bias.view(self.n_vector_tokens, cfg.d_model)
        self.encoder = [_Block(b, cfg.n_heads, True) for b in model.encoder]
        self.ln_enc = _Norm(model.ln_enc)
        self.memory_proj = (None if model.memory_proj is None
                            else Dense.of(model.memory_proj))
        self.decoder = [_Block(b, cfg.n_heads, False) for b in model.decoder]
        self.ln_f = _Norm(model.ln_f)
        # The first decoder block's queries are parameters: their projection is a constant.
        self.queries = model.action_queries.detach()[None]
        self.first_q = self.decoder[0].q(self.decoder[0].ln1(self.queries))
        stats = model.normalizer.stats['action']
        self.head_real = Dense(model.action_head.weight * stats.std[:, None],
                               model.action_head.bias * stats.std + stats.mean)

    @staticmethod
    def _version(tensors: List[torch.Tensor]) -> Tuple[int, ...]:
        # In-place updates (optimizer steps, load_state_dict) bump _version; moving the model
        # to another device or dtype gives new storage.
        return tuple(t._version for t in tensors) + tuple(t.data_ptr() for t in tensors)

    def is_current(self, model: nn.Module) -> bool:
        """Tell whether model still holds the weights the plan was built from."""
        return model is self.model and self._version(self.sources) == self.version

    @staticmethod
    def _fold_vector_tokens(model: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return (W, b): raw concatenated vector keys -> all vector tokens of a step."""
        keys = model.vector_keys
        mean, std = model.normalizer.vector_stats(keys)
        if model.vector_proj is not None:
            weight, bias = model.vector_proj.weight, model.vector_proj.bias
        else:
            # One token per key: a block-diagonal matrix maps all keys at once.
            weight = torch.block_diag(*(model.obs_proj[k].weight for k in keys))
            bias = torch.cat([model.obs_proj[k].bias for k in keys])
        weight = weight / std
        return weight, bias - weight @ mean

    def _vector_tokens(self, obs: Obs, obs_mask: torch.Tensor) -> torch.Tensor:
        b, h = obs_mask.shape
        x = torch.cat([obs[k] for k in self.model.vector_keys], dim=-1).float()
        tokens = self.tokens(x).view(b, h, self.n_vector_tokens, -1)
        # where, not a product: whatever fills a padded step (even NaN) cannot leak.
        return torch.where(obs_mask[..., None, None], tokens, self.pad_tokens)

    def features(self, obs: Obs, obs_mask: torch.Tensor) -> torch.Tensor:
        """Return the features at the action queries, (B, K, decoder_width), of checked inputs."""
        model = self.model
        tokens = [self._vector_tokens(obs, obs_mask)] if model.vector_keys else []
        tokens += model._image_tokens(obs, obs_mask)
        x = (torch.cat(tokens, dim=2) if len(tokens) > 1 else tokens[0]) + model.obs_pos
        x = x.flatten(1, 2)
        attend = None
        if not bool(obs_mask.all()):
            attend = obs_mask.repeat_interleave(model.tokens_per_step, dim=1)[:, None, None]
        for block in self.encoder:
            x = block.encode(x, attend)
        memory = self.ln_enc(x)
        if self.memory_proj is not None:
            memory = self.memory_proj(memory)
            m = model.config.decoder_memory_tokens
            if m > 1:
                # As TransformerPolicy._decode: each token becomes m memory tokens.
                memory = torch.cat(memory.split(model.config.decoder_width, dim=-1), dim=1)
                attend = None if attend is None else attend.repeat(1, 1, 1, m)
        x = self.decoder[0].decode(self.queries, memory, attend, self.first_q)
        for block in self.decoder[1:]:
            x = block.decode(x, memory, attend)
        return self.ln_f(x)

    def predict(self, obs: Obs, obs_mask: torch.Tensor) -> torch.Tensor:
        """Return the chunk (B, K, A) in real units for checked inputs."""
        return self.head_real(self.features(obs, obs_mask))

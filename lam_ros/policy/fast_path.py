"""
The policy's inference path on the CPU: TransformerPolicy's function in fewer ops.

At batch 1 the default-size policy (0.13 M parameters) costs what its ops cost to launch,
not their arithmetic: about 60 ops at 5-7 us each. Inference (eval mode, no gradients, CPU)
therefore runs this plan, built once from the weights and rebuilt when any of them changes:

- vector tokens: normalisation folded into the token projections, all keys in one matrix
  product (block-diagonal for one token per key), padded steps replaced by what a zeroed
  input gives (the bias);
- encoder blocks whose layers are all small run as PyTorch's fused encoder-layer kernel (the
  one nn.TransformerEncoderLayer uses in eval mode: pre-LayerNorm, GELU), one op per block;
  blocks with large layers keep the module path, where Linear's W x^T product is the gain;
- the first decoder block's queries are parameters, so their LayerNorm and query projection
  are computed once;
- predict() folds the action unnormalisation into the action head.

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
    return (not model.training and not torch.is_grad_enabled() and device.type == 'cpu'
            and not torch.jit.is_tracing() and not torch.jit.is_scripting()
            and not torch.compiler.is_compiling())


def _fusable(block: nn.Module) -> bool:
    """Tell whether block runs fused: none of its layers would take Linear's W x^T path."""
    layers = (block.attn.q, block.attn.kv, block.attn.proj, block.mlp[0], block.mlp[2])
    return all(layer.rows_first for layer in layers)


class InferencePlan:
    """Tensors derived from a TransformerPolicy's weights, and the forward that uses them."""

    def __init__(self, model: nn.Module) -> None:
        """Derive the folded tensors from model's current weights (call under no_grad)."""
        self.model = model
        cfg = model.config
        self.sources = self._sources(model)
        self.version = self._version(self.sources)
        self.n_vector_tokens = model.vector_tokens_per_step
        if model.vector_keys:
            self.token_weight, self.token_bias = self._fold_vector_tokens(model)
            # A padded step's normalised input is zero, so its tokens are the biases.
            self.pad_tokens = self.token_bias.view(self.n_vector_tokens, cfg.d_model)
        self.fused = [(torch.cat([b.attn.q.weight, b.attn.kv.weight]),
                       torch.cat([b.attn.q.bias, b.attn.kv.bias])) if _fusable(b) else None
                      for b in model.encoder]
        first = model.decoder[0]
        self.queries = model.action_queries[None]
        self.first_q = first.attn.q(first.ln1(self.queries))
        stats = model.normalizer.stats['action']
        self.head_weight = model.action_head.weight * stats.std[:, None]
        self.head_bias = model.action_head.bias * stats.std + stats.mean

    @staticmethod
    def _sources(model: nn.Module) -> List[torch.Tensor]:
        """Return every tensor the plan derives something from."""
        out = [model.action_queries, model.action_head.weight, model.action_head.bias]
        stats = model.normalizer.stats
        for key in list(model.vector_keys) + ['action']:
            out += [stats[key].mean, stats[key].std]
        projections = (list(model.obs_proj.values()) if model.obs_proj is not None
                       else [model.vector_proj] if model.vector_proj is not None else [])
        for layer in projections:
            out += [layer.weight, layer.bias]
        for block in model.encoder:
            out += [block.attn.q.weight, block.attn.q.bias, block.attn.kv.weight,
                    block.attn.kv.bias]
        first = model.decoder[0]
        return out + [first.ln1.weight, first.ln1.bias, first.attn.q.weight, first.attn.q.bias]

    @staticmethod
    def _version(tensors: List[torch.Tensor]) -> Tuple[int, ...]:
        # In-place updates (optimizer steps, load_state_dict) bump _version; moving the model
        # to another device or dtype gives new storage.
        return tuple(x for t in tensors for x in (t._version, t.data_ptr()))

    def is_current(self, model: nn.Module) -> bool:
        """Tell whether model still holds the weights the plan was built from."""
        return model is self.model and self._version(self.sources) == self.version

    @staticmethod
    def _fold_vector_tokens(model: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return (W, b): raw concatenated vector keys -> all vector tokens of a step."""
        cfg = model.config
        stats = model.normalizer.stats
        keys = model.vector_keys
        mean = torch.cat([stats[k].mean for k in keys])
        std = torch.cat([stats[k].std for k in keys])
        if model.vector_proj is not None:
            weight, bias = model.vector_proj.weight, model.vector_proj.bias
        else:
            # One token per key: a block-diagonal matrix maps all keys at once.
            weight = torch.block_diag(*(model.obs_proj[k].weight for k in keys))
            bias = torch.cat([model.obs_proj[k].bias for k in keys])
        weight = weight / std
        bias = bias - weight @ mean
        assert weight.shape[0] == model.vector_tokens_per_step * cfg.d_model
        return weight.contiguous(), bias

    def _vector_tokens(self, obs: Obs, obs_mask: torch.Tensor) -> torch.Tensor:
        cfg = self.model.config
        b, h = obs_mask.shape
        x = torch.cat([obs[k] for k in self.model.vector_keys], dim=-1)
        x = x.reshape(b * h, -1).to(self.token_weight.dtype)
        tokens = torch.addmm(self.token_bias, x, self.token_weight.t())
        tokens = tokens.view(b, h, self.n_vector_tokens, cfg.d_model)
        # where, not a product: whatever fills a padded step (even NaN) cannot leak.
        return torch.where(obs_mask[..., None, None], tokens, self.pad_tokens)

    def features(self, obs: Obs, obs_mask: torch.Tensor) -> torch.Tensor:
        """Return the features at the action queries, (B, K, decoder_width), of checked inputs."""
        model = self.model
        cfg = model.config
        tokens = [self._vector_tokens(obs, obs_mask)] if model.vector_keys else []
        tokens += model._image_tokens(obs, obs_mask)
        x = (torch.cat(tokens, dim=2) if len(tokens) > 1 else tokens[0]) + model.obs_pos
        x = x.flatten(1, 2)
        padded = None if bool(obs_mask.all()) else ~obs_mask.repeat_interleave(
            model.tokens_per_step, dim=1)
        attend = (torch.ones_like(obs_mask[:, :1]) if padded is None else ~padded)
        attend = attend[:, None, None, :]
        for block, fused in zip(model.encoder, self.fused):
            if fused is None:
                x = block(x, attend)
            else:
                x = _encoder_block(block, fused, x, padded, cfg)
        memory = model.ln_enc(x)
        return self._decode(memory, padded)

    def _decode(self, memory: torch.Tensor, padded: Optional[torch.Tensor]) -> torch.Tensor:
        model = self.model
        cfg = model.config
        dd, m = cfg.decoder_width, cfg.decoder_memory_tokens
        if model.memory_proj is not None:
            memory = model.memory_proj(memory)
            if m > 1:
                memory = torch.cat(memory.split(dd, dim=-1), dim=1)
                padded = None if padded is None else padded.repeat(1, m)
        attend = None if padded is None else ~padded[:, None, None, :]
        first = model.decoder[0]
        b, s, h = memory.shape[0], memory.shape[1], cfg.n_heads
        k, v = first.attn.kv(memory).view(b, s, 2, h, dd // h).permute(2, 0, 3, 1, 4)
        q = self.first_q.view(1, -1, h, dd // h).transpose(1, 2).expand(b, -1, -1, -1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        x = self.queries + first.attn.proj(y.transpose(1, 2).reshape(b, -1, dd))
        x = x + first.mlp(first.ln2(x))
        if len(model.decoder) > 1:
            full = (torch.ones(b, 1, 1, s, dtype=torch.bool, device=memory.device)
                    if attend is None else attend)
            for block in model.decoder[1:]:
                x = block(x, full, memory)
        return model.ln_f(x)

    def predict(self, obs: Obs, obs_mask: torch.Tensor) -> torch.Tensor:
        """Return the chunk (B, K, A) in real units for checked inputs."""
        return F.linear(self.features(obs, obs_mask), self.head_weight, self.head_bias)


def _encoder_block(block: nn.Module, in_proj: Tuple[torch.Tensor, torch.Tensor],
                   x: torch.Tensor, padded: Optional[torch.Tensor], cfg: object) -> torch.Tensor:
    """Run one pre-LayerNorm GELU encoder block as PyTorch's fused kernel."""
    attn, mlp = block.attn, block.mlp
    return torch._transformer_encoder_layer_fwd(
        x, cfg.d_model, cfg.n_heads, in_proj[0], in_proj[1], attn.proj.weight, attn.proj.bias,
        True, True, block.ln1.eps, block.ln1.weight, block.ln1.bias, block.ln2.weight,
        block.ln2.bias, mlp[0].weight, mlp[0].bias, mlp[2].weight, mlp[2].bias,
        padded, None if padded is None else 1)

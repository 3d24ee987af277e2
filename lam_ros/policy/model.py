"""
The Transformer policy: a short observation history in, a chunk of future joint targets out.

Tokens, per history step: one per vector observation key (a linear layer per key), or with
vector_tokens='step' one for all of them together (the normalised keys concatenated, one
linear layer), and a few per camera (lam_ros/policy/vision.py, own weights per camera).
Learned embeddings mark each token's step and type.
An encoder (pre-LayerNorm Transformer blocks, self-attention) runs over the observation tokens
only; a light decoder then lets chunk_size learned action queries attend to the encoder's
output (cross-attention and a narrow feed-forward layer, no self-attention among the queries),
and each query's output is one action of the chunk. The width and depth therefore cost once
per observation token, not once per action, which is what keeps a long chunk cheap. History
steps before the episode start are masked out of attention.

All public methods take observations in real units as a dict key -> (B, H, *shape) tensor
(H = history_len, oldest step first) and an optional obs_mask (B, H) bool, True where the step
exists. Actions are (B, K, A) in real units (K = chunk_size, A = len(joint_names)).
"""

from typing import Dict, List, Mapping, Optional

from lam_ros.policy.config import image_channels, PolicyConfig
from lam_ros.policy.fast_path import InferencePlan, plan_applies
from lam_ros.policy.normalization import Normalizer
from lam_ros.policy.vision import make_image_encoder
import torch
from torch import nn
from torch.nn import functional as F

Obs = Mapping[str, torch.Tensor]


class Attention(nn.Module):
    """
    Multi-head attention of the tokens x over a memory, with a key padding mask.

    Self-attention when memory is x (the encoder); cross-attention when the action queries
    attend to the encoded observations (the decoder).
    """

    def __init__(self, config: PolicyConfig, width: Optional[int] = None) -> None:
        """Create the query, fused key/value and output projections (width: d_model)."""
        super().__init__()
        d = width or config.d_model
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, memory: torch.Tensor,
                attend: torch.Tensor) -> torch.Tensor:
        """Attend from x (B, T, D) over memory (B, S, D); attend (B, 1, 1, S) marks valid keys."""
        b, t, d = x.shape
        h = self.n_heads
        q = self.q(x).view(b, t, h, d // h).transpose(1, 2)
        k, v = (z.reshape(b, -1, h, d // h).transpose(1, 2)
                for z in self.kv(memory).split(d, dim=2))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attend, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """
    Pre-LayerNorm Transformer block: attention then feed-forward, both residual.

    An encoder block attends over its own tokens; a decoder block (memory given) attends over
    the encoder's output only.
    """

    def __init__(self, config: PolicyConfig, ff_mult: int, width: Optional[int] = None) -> None:
        """Create the two sub-layers, width wide (d_model); the feed-forward is ff_mult times."""
        super().__init__()
        d = width or config.d_model
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(config, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, ff_mult * d), nn.GELU(),
                                 nn.Linear(ff_mult * d, d), nn.Dropout(config.dropout))

    def forward(self, x: torch.Tensor, attend: torch.Tensor,
                memory: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Apply the block to x (B, T, D), over memory (B, S, D) when given."""
        y = self.ln1(x)
        x = x + self.attn(y, y if memory is None else memory, attend)
        return x + self.mlp(self.ln2(x))


class TransformerPolicy(nn.Module):
    """Observation history -> chunk of future joint targets (regression or Gaussian head)."""

    def __init__(self, config: PolicyConfig) -> None:
        """Build the network for config; normalisation starts as identity until fitted."""
        super().__init__()
        self.config = config
        d = config.d_model
        self.normalizer = Normalizer(config)
        self.vector_keys = config.lowdim_keys
        self._make_vector_proj(config)
        self.image_enc = self._image_encoders(config)
        self.tokens_per_step = self.vector_tokens_per_step + sum(
            enc.num_tokens for enc in self.image_enc.values())
        # One embedding per (history step, token slot) encodes both time and token type.
        self.obs_pos = nn.Parameter(torch.zeros(config.history_len, self.tokens_per_step, d))
        self.drop = nn.Dropout(config.dropout)
        self.encoder = nn.ModuleList(Block(config, config.ff_mult)
                                     for _ in range(config.n_layers))
        self.ln_enc = nn.LayerNorm(d)
        self._make_decoder(config)
        if config.head == 'gaussian':
            # State-independent log-std per chunk position and joint, as in CleanRL's PPO.
            self.log_std = nn.Parameter(
                torch.full((config.chunk_size, config.action_dim), config.init_log_std))
        self.apply(self._init_weights)
        nn.init.normal_(self.obs_pos, std=0.02)
        nn.init.normal_(self.action_queries, std=0.02)

    def _make_decoder(self, config: PolicyConfig) -> None:
        # The decoder runs once per action query, so it may be narrower than the encoder: the
        # encoded observations are projected to its width (a few rows) and the chunk_size
        # queries then cost decoder_width**2, not d_model**2, each. Each encoded token may
        # also become several memory tokens, so that few observation tokens still give the
        # queries several keys to choose from.
        dd, m = config.decoder_width, config.decoder_memory_tokens
        self.memory_proj = (nn.Linear(config.d_model, m * dd)
                            if dd != config.d_model or m > 1 else None)
        self.action_queries = nn.Parameter(torch.zeros(config.chunk_size, dd))
        self.decoder = nn.ModuleList(Block(config, config.decoder_ff_mult, dd)
                                     for _ in range(config.n_decoder_layers))
        self.ln_f = nn.LayerNorm(dd)
        self.action_head = nn.Linear(dd, config.action_dim)

    def _decode(self, memory: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        if self.memory_proj is not None:
            m = self.config.decoder_memory_tokens
            memory = self.memory_proj(memory)
            if m > 1:
                # (B, S, m * dd) -> (B, m * S, dd): the decoder has no positions, so the order
                # of its memory does not matter, only that the mask follows it.
                memory = torch.cat(memory.split(self.config.decoder_width, dim=-1), dim=1)
                attend = attend.repeat(1, 1, 1, m)
        q = self.action_queries.expand(memory.shape[0], -1, -1)
        if self.training:
            q = self.drop(q)
        for block in self.decoder:
            q = block(q, attend, memory)
        return self.ln_f(q)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Count parameters (normalisation buffers are not parameters)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # Observation checks and tokenisation.

    def _check(self, obs: Obs, obs_mask: Optional[torch.Tensor]) -> torch.Tensor:
        cfg = self.config
        missing = [k for k in cfg.obs_spec if k not in obs]
        if missing:
            raise ValueError(f'observation lacks keys {missing}; the policy observes '
                             f'{sorted(cfg.obs_spec)}')
        batch = None
        for key, shape in cfg.obs_spec.items():
            x = obs[key]
            if not isinstance(x, torch.Tensor):
                raise ValueError(f'obs[{key!r}] must be a torch.Tensor, got {type(x).__name__}')
            batch = x.shape[0] if batch is None and x.dim() else batch
            want = (batch, cfg.history_len) + tuple(shape)
            if tuple(x.shape) != want:
                raise ValueError(f'obs[{key!r}] has shape {tuple(x.shape)}, expected {want} '
                                 '(batch, history_len, *obs_spec shape)')
        if obs_mask is None:
            return torch.ones(batch, cfg.history_len, dtype=torch.bool, device=self.obs_pos.device)
        if obs_mask.dtype != torch.bool or tuple(obs_mask.shape) != (batch, cfg.history_len):
            raise ValueError(f'obs_mask must be a bool tensor of shape {(batch, cfg.history_len)}'
                             f', got {obs_mask.dtype} {tuple(obs_mask.shape)}')
        if not bool(obs_mask.any(dim=1).all()):
            raise ValueError('obs_mask has a sample with no valid history step; the current '
                             '(last) step must always be valid')
        return obs_mask

    # Vector observations: one token per key and step ('key'), or one per step ('step').

    def _make_vector_proj(self, config: PolicyConfig) -> None:
        keys = self.vector_keys
        self.obs_proj = self.vector_proj = None
        if config.vector_tokens == 'key':
            self.obs_proj = nn.ModuleDict(
                {k: nn.Linear(config.obs_spec[k][0], config.d_model) for k in keys})
        elif keys:
            self.vector_proj = nn.Linear(sum(config.obs_spec[k][0] for k in keys), config.d_model)

    @property
    def vector_tokens_per_step(self) -> int:
        """Tokens per history step for the vector observations."""
        if self.config.vector_tokens == 'key':
            return len(self.vector_keys)
        return 1 if self.vector_keys else 0

    def _vector_tokens(self, obs: Obs, obs_mask: torch.Tensor) -> List[torch.Tensor]:
        if not self.vector_keys:
            return []
        # All vector keys in one tensor: normalised and masked by a few ops, not a few per key
        # (at batch 1 each op costs more than its arithmetic). Padded steps are zeroed so that
        # whatever filled them (even NaN) cannot leak.
        x = self.normalizer.normalize_vectors(self.vector_keys, obs)
        x = torch.where(obs_mask[..., None], x, 0.0)
        if self.vector_proj is not None:
            # One token per step: the width and depth cost once per step, not per key and step.
            return [self.vector_proj(x)[:, :, None]]
        parts = x.split([self.config.obs_spec[k][0] for k in self.vector_keys], dim=2)
        return [torch.stack([self.obs_proj[k](part)
                             for k, part in zip(self.vector_keys, parts)], dim=2)]

    def _tokens(self, obs: Obs, obs_mask: torch.Tensor) -> torch.Tensor:
        tokens = self._vector_tokens(obs, obs_mask) + self._image_tokens(obs, obs_mask)
        return (torch.cat(tokens, dim=2) + self.obs_pos).flatten(1, 2)

    # Camera observations: one encoder (own weights) and one set of tokens per image key.

    @staticmethod
    def _image_encoders(config: PolicyConfig) -> nn.ModuleDict:
        return nn.ModuleDict(
            {k: make_image_encoder(image_channels(k), config.obs_spec[k][:2], config)
             for k in config.image_keys})

    def _image_tokens(self, obs: Obs, obs_mask: torch.Tensor) -> List[torch.Tensor]:
        """Return one (B, H, tokens, d_model) tensor per image key, in config.image_keys order."""
        cfg = self.config
        b, h = obs_mask.shape
        tokens = []
        for key in cfg.image_keys:
            x = self.normalizer.normalize(key, obs[key])
            x = torch.where(obs_mask[..., None, None, None], x, torch.zeros_like(x))
            # Static image dims (from the config) keep the graph exportable with a free batch.
            x = x.reshape((-1,) + cfg.obs_spec[key]).permute(0, 3, 1, 2)  # (B*H, C, Hi, Wi)
            tokens.append(self.image_enc[key](x).view(b, h, -1, cfg.d_model))
        return tokens

    def features(self, obs: Obs, obs_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the final hidden state at each action query, (B, K, decoder_width)."""
        obs_mask = self._check(obs, obs_mask)
        plan = self.inference_plan(obs_mask.device)
        return self._features(obs, obs_mask) if plan is None else plan.features(obs, obs_mask)

    def __getstate__(self) -> dict:
        """Copy or pickle the module without its inference plan (rebuilt on demand)."""
        state = self.__dict__.copy()
        state.pop('_plan', None)
        return state

    def inference_plan(self, device: torch.device) -> Optional[InferencePlan]:
        """Return the inference plan (policy/fast_path.py) if it applies on device, else None."""
        if not plan_applies(self, device):
            return None
        plan = self.__dict__.get('_plan')
        if plan is None or not plan.is_current(self):
            plan = self.__dict__['_plan'] = InferencePlan(self)
        return plan

    def _features(self, obs: Obs, obs_mask: torch.Tensor) -> torch.Tensor:
        # Unchecked (traceable, exportable) path: obs and obs_mask are already validated.
        x = self.drop(self._tokens(obs, obs_mask))
        attend = obs_mask.repeat_interleave(self.tokens_per_step, dim=1)[:, None, None, :]
        for block in self.encoder:
            x = block(x, attend)
        return self._decode(self.ln_enc(x), attend)

    def forward(self, obs: Obs, obs_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return the predicted chunk (B, K, A) in normalised action units (the mean)."""
        return self.action_head(self.features(obs, obs_mask))

    # Actions: real units <-> the normalised units the network works in.

    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Real-unit actions (..., A) -> normalised actions."""
        return self.normalizer.normalize('action', actions)

    def unnormalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Normalised actions (..., A) -> real units (rad, m)."""
        return self.normalizer.unnormalize('action', actions)

    def _normal(self, mean: torch.Tensor) -> torch.distributions.Normal:
        if self.config.head != 'gaussian':
            raise ValueError("distribution/log_prob need a policy built with head='gaussian', "
                             f'this one has head={self.config.head!r}')
        log_std = self.log_std.clamp(self.config.log_std_min, self.config.log_std_max)
        return torch.distributions.Normal(mean, log_std.exp().expand_as(mean))

    def distribution(self, obs: Obs,
                     obs_mask: Optional[torch.Tensor] = None) -> torch.distributions.Normal:
        """
        Return the Gaussian over the chunk (B, K, A) in normalised action units.

        Sample it and map with unnormalize_actions to get joint targets.
        """
        return self._normal(self(obs, obs_mask))

    def log_prob(self, obs: Obs, obs_mask: Optional[torch.Tensor], actions: torch.Tensor,
                 action_mask: Optional[torch.Tensor] = None,
                 normalized: bool = False) -> torch.Tensor:
        """
        Log-likelihood (B,) of action chunks, summed over valid chunk steps and joints.

        Densities are in normalised action units, which shifts every value by the same
        constant as in real units, so likelihood ratios (PPO) are unaffected.
        """
        actions = self._check_actions(actions)
        target = actions if normalized else self.normalize_actions(actions)
        if action_mask is None:
            return self.distribution(obs, obs_mask).log_prob(target).sum(dim=(1, 2))
        valid = self._check_action_mask(action_mask, target)[..., None]
        # Chunk steps past the episode end may hold anything (even NaN); keep them out.
        target = torch.where(valid, target, torch.zeros_like(target))
        logp = self.distribution(obs, obs_mask).log_prob(target)
        return torch.where(valid, logp, torch.zeros_like(logp)).sum(dim=(1, 2))

    @torch.no_grad()
    def predict(self, obs: Obs, obs_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Return the chunk (B, K, A) in real units (the mean for the gaussian head).

        Call model.eval() first so that dropout is off.
        """
        return self._predict(obs, self._check(obs, obs_mask))

    def _predict(self, obs: Obs, obs_mask: torch.Tensor) -> torch.Tensor:
        # Unchecked: the inference plan where it applies (never in traced or exported graphs).
        plan = self.inference_plan(obs_mask.device)
        if plan is not None:
            return plan.predict(obs, obs_mask)
        return self.unnormalize_actions(self.action_head(self._features(obs, obs_mask)))

    def loss(self, obs: Obs, obs_mask: Optional[torch.Tensor], actions: torch.Tensor,
             action_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """
        Behaviour-cloning loss on normalised actions over valid chunk steps.

        Returns 'loss' (to minimise: L1/MSE or Gaussian NLL) and detached 'l1' and 'mse'
        (and 'nll', 'std' for the gaussian head) for logging.
        """
        target = self.normalize_actions(self._check_actions(actions))
        if action_mask is None:
            valid = torch.ones(target.shape[:2], dtype=torch.bool, device=target.device)
        else:
            valid = self._check_action_mask(action_mask, target)
        w = valid[..., None].to(target.dtype)
        # Chunk steps past the episode end may hold anything (even NaN); keep them out.
        target = torch.where(valid[..., None], target, torch.zeros_like(target))
        mean = self(obs, obs_mask)
        count = (w.sum() * target.shape[-1]).clamp(min=1.0)
        err = mean - target
        out = {'l1': (err.abs() * w).sum() / count, 'mse': (err.pow(2) * w).sum() / count}
        if self.config.head == 'gaussian':
            dist = self._normal(mean)
            out['nll'] = -(dist.log_prob(target) * w).sum() / count
            out['loss'] = out['nll']
            out['std'] = dist.stddev.mean().detach()
        else:
            out['loss'] = out[self.config.regression_loss]
        return {k: v if k == 'loss' else v.detach() for k, v in out.items()}

    def _check_actions(self, actions: torch.Tensor) -> torch.Tensor:
        want = (self.config.chunk_size, self.config.action_dim)
        if actions.dim() != 3 or tuple(actions.shape[1:]) != want:
            raise ValueError(f'actions must have shape (batch, {want[0]}, {want[1]}) = (batch, '
                             f'chunk_size, len(joint_names)), got {tuple(actions.shape)}')
        return actions

    @staticmethod
    def _check_action_mask(action_mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if action_mask.dtype != torch.bool or action_mask.shape != target.shape[:2]:
            raise ValueError(f'action_mask must be a bool tensor of shape '
                             f'{tuple(target.shape[:2])}, got {action_mask.dtype} '
                             f'{tuple(action_mask.shape)}')
        return action_mask

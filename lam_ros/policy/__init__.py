"""
The Transformer policy, its normalisation and checkpoints (torch only).

Typical use::

    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec={'joint_pos': (8,)})
    model = TransformerPolicy(config)
    model.normalizer.fit(compute_stats({'joint_pos': pos, 'action': actions}))
    losses = model.loss(obs, obs_mask, chunks, chunk_mask)   # behaviour cloning
    save_checkpoint('ckpt', model, {'task': 'lift'})
    model, metadata = load_checkpoint('ckpt', device='auto', expected_joint_names=JOINT_NAMES)
    chunk = model.predict(obs, obs_mask)                     # (B, chunk_size, n_joints)
"""

from lam_ros.policy.checkpoint import (
    CheckpointError, load_checkpoint, read_checkpoint_config, resolve_device, save_checkpoint)
from lam_ros.policy.config import (
    camera_name, image_channels, image_key, image_kind, PolicyConfig)
from lam_ros.policy.model import TransformerPolicy
from lam_ros.policy.normalization import compute_stats, Normalizer

__all__ = ['camera_name', 'CheckpointError', 'compute_stats', 'image_channels', 'image_key',
           'image_kind', 'load_checkpoint', 'Normalizer', 'PolicyConfig',
           'read_checkpoint_config', 'resolve_device', 'save_checkpoint', 'TransformerPolicy']

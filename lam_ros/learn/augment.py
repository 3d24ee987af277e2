"""
Image augmentation for behaviour cloning: random shifts of whole batches, in torch.

A policy trained from scratch on ~100 demonstrations memorises the exact pixels of its
training images; shifting each image by a few pixels (the random shift of DrQ, the random
crop of robomimic and Diffusion Policy) forces it to read positions relative to what it
sees, which is what transfers to unseen episodes. Images stay uint8 throughout: the shift
is a gather with clamped indices (edge pixels repeat, as with replicate padding), so it
costs one copy of the batch.
"""

from typing import Dict, Iterable

import torch


def random_shift(images: torch.Tensor, max_shift: int,
                 generator: torch.Generator) -> torch.Tensor:
    """
    Shift each sample of images (B, T, H, W, C) by up to max_shift pixels in x and y.

    All T steps of a sample move together (one shift per sample), so a history sees a still
    camera. Returns a new tensor of the same shape and dtype; max_shift 0 returns images.
    """
    if images.dim() != 5:
        raise ValueError(f'images must be (batch, steps, height, width, channels), got shape '
                         f'{tuple(images.shape)}')
    if max_shift < 0:
        raise ValueError(f'max_shift must be >= 0, got {max_shift}')
    if max_shift == 0:
        return images
    b, _, h, w, _ = images.shape
    device = images.device
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, b), generator=generator,
                           device=generator.device).to(device)
    rows = (torch.arange(h, device=device)[None] + dy[:, None]).clamp(0, h - 1)  # (B, H)
    cols = (torch.arange(w, device=device)[None] + dx[:, None]).clamp(0, w - 1)  # (B, W)
    batch = torch.arange(b, device=device)[:, None, None]
    moved = images.permute(0, 2, 3, 1, 4)[batch, rows[:, :, None], cols[:, None, :]]
    return moved.permute(0, 3, 1, 2, 4).contiguous()  # back to (B, T, H, W, C)


def augment_images(obs: Dict[str, torch.Tensor], keys: Iterable[str], max_shift: int,
                   generator: torch.Generator) -> None:
    """Randomly shift obs[key] in place of each image key (each camera its own shift)."""
    for key in keys:
        obs[key] = random_shift(obs[key], max_shift, generator)

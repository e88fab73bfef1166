"""Feature maps F(x) of a frozen backbone, computed once per image and reused by every head."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm


def stack_labels(dataset: Dataset) -> torch.Tensor:
    """All labels of ``dataset`` as an int64 tensor (N,), without loading images where possible."""
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return torch.as_tensor(labels, dtype=torch.long)
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.long)


def stack_images(dataset: Dataset) -> torch.Tensor:
    """All images of an in-memory dataset as one tensor (N, C, H, W)."""
    images = getattr(dataset, "images", None)
    if images is not None:
        return images
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


@torch.no_grad()
def compute_features(
    backbone: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 64, desc: str = "features"
) -> torch.Tensor:
    """F(x) for every image of ``dataset`` in order, as a float32 CPU tensor (N, C, h, w)."""
    backbone.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    chunks = [
        backbone(images.to(device)).float().cpu()
        for images, _ in tqdm(loader, desc=desc, leave=False, unit="batch")
    ]
    return torch.cat(chunks)

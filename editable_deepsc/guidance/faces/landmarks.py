"""face-api's ``FaceLandmark68Net``: 68 facial landmarks (iBUG 300-W order) from a 112×112 face."""

from __future__ import annotations

import torch
import torch.nn as nn

from editable_deepsc.guidance.faces.feature_extractor import FEATURE_DIM, INPUT_SIZE, FaceFeatureExtractor
from editable_deepsc.guidance.faces.layers import FullyConnected

NUM_LANDMARKS = 68


class FaceLandmark68Net(nn.Module):
    """(N, 3, 112, 112) images in [-1, 1] → (N, 68, 2) landmarks as (x, y) fractions of the input
    side (0 = left/top edge, 1 = right/bottom edge); multiply by the side length for pixels."""

    input_size = INPUT_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.features = FaceFeatureExtractor()
        self.fc = FullyConnected(FEATURE_DIM, 2 * NUM_LANDMARKS)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images)).view(-1, NUM_LANDMARKS, 2)

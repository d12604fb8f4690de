"""face-api's ``FaceExpressionNet``: 7 expression probabilities from a 112×112 face."""

from __future__ import annotations

import torch
import torch.nn as nn

from editable_deepsc.guidance.faces.feature_extractor import FEATURE_DIM, INPUT_SIZE, FaceFeatureExtractor
from editable_deepsc.guidance.faces.layers import FullyConnected
from editable_deepsc.text.targets import EXPRESSIONS

FACEAPI_EXPRESSION_LABELS: tuple[str, ...] = (
    "neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised",
)  # fmt: skip
"""face-api's ``FACE_EXPRESSION_LABELS``, its output order (identical to ``text.targets.EXPRESSIONS``)."""

assert FACEAPI_EXPRESSION_LABELS == EXPRESSIONS


class FaceExpressionNet(nn.Module):
    """(N, 3, 112, 112) images in [-1, 1] → (N, 7) logits; softmax gives the probabilities in
    :data:`FACEAPI_EXPRESSION_LABELS` order."""

    input_size = INPUT_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.features = FaceFeatureExtractor()
        self.fc = FullyConnected(FEATURE_DIM, len(FACEAPI_EXPRESSION_LABELS))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images))

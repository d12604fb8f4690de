"""guidance: what the editor optimises (attribute scores and identity from the face-api nets)."""

from editable_deepsc.guidance.attributes import AttributeGuidance
from editable_deepsc.guidance.identity import IdentityLoss, identity_distance, identity_similarity

__all__ = ["AttributeGuidance", "IdentityLoss", "identity_distance", "identity_similarity"]

"""moeguard: expert-level control of Mixture-of-Experts language models.

Capture routing, detect behaviour-linked experts (SteerMoE), steer them at inference, measure routing
drift and fine-tune with routing alignment (SafeMoE) on Hugging Face transformers models.
"""

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.detect import DetectionResult, detect_experts, select_experts
from moeguard.errors import MoeguardError
from moeguard.routing.recorder import RoutingRecorder
from moeguard.steer import SteeringSpec

__version__ = "0.1.0"

__all__ = [
    "DetectionResult",
    "MoEModel",
    "MoeguardError",
    "RoutingRecorder",
    "SteeringSpec",
    "__version__",
    "detect_experts",
    "inspect_moe",
    "select_experts",
]

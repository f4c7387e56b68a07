"""CNNs jaqmoo searches: the model registry and the elastic architecture spaces.

* :mod:`~jaqmoo.models.registry` -- :data:`MODELS`, :func:`build_model`, :func:`model_workload`;
* :mod:`~jaqmoo.models.references` -- ``torchvision:<name>`` and a user's ``package.module:callable``;
* :mod:`~jaqmoo.models.zoo` -- the built-in models (torchvision's MobileNetV2, ResNet-18,
  MobileNetV3-Small; our MobileNetV1 and ``simple_cnn``), registered where defined;
* :mod:`~jaqmoo.models.elastic_space` -- the elastic architecture space, over a family:
  :mod:`~jaqmoo.models.elastic_mbv2` and :mod:`~jaqmoo.models.elastic_mbv1` (each registers itself).
"""

from jaqmoo.models import elastic_mbv1, elastic_mbv2, zoo  # noqa: F401  (each registers its entries)
from jaqmoo.models.mobilenet_v1 import MobileNetV1
from jaqmoo.models.registry import (
           MODELS,
           SMALL_INPUT_BELOW,
           build_model,
           check_model_name,
           model_workload,
)
from jaqmoo.models.simple_cnn import SimpleCNN

__all__ = ["MODELS", "SMALL_INPUT_BELOW", "MobileNetV1", "SimpleCNN", "build_model", "check_model_name",
           "model_workload"]

"""Author-checkpoint models: ESPNet / ESPNet-C (Mehta et al. ECCV 2018) and ESPNetv2 (Mehta et al. CVPR 2019).

Both load the authors' published checkpoints (``load_pretrained``) and carry the authors' input convention
in their model config (:class:`InputConvention`).
"""

from models.espnet.common import InputConvention
from models.espnet.espnet import ESPNet
from models.espnet.espnetv2 import ESPNetv2

__all__ = ["ESPNet", "ESPNetv2", "InputConvention"]

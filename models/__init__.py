"""Segmentation models behind the segbench model contract.

Contract (see ``../shared/DESIGN.md``): ``forward(x: float[N,3,H,W]) -> dict[str, float[N,K,h,w]]`` of
logits; key ``"out"`` is the prediction used for metrics and inference; the model declares its outputs
in order as ``output_names``. Outputs may be smaller than the input; losses and inference resize.

Every model is built from its ``config/model/*.yaml`` by ``hydra.utils.instantiate`` (``_target_``);
``model=<name>`` on the command line picks the config file.
"""

from models.espnet import ESPNet, ESPNetv2
from models.mmseg import MMSegModel
from models.smp import SMP_ARCHITECTURES, SMPModel

__all__ = ["SMP_ARCHITECTURES", "SMPModel"]
__all__ += ["ESPNet", "ESPNetv2", "MMSegModel"]
from models.hrnet import HRNetMSOCR, HRNetOCR, HRNetOCRASPP, HRNetV2  # noqa: E402

__all__ += ["HRNetMSOCR", "HRNetOCR", "HRNetOCRASPP", "HRNetV2"]
from models.segman import SegMAN  # noqa: E402

__all__ += ["SegMAN"]

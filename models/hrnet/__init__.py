"""HRNet family on one shared HRNetV2 backbone: HRNetV2, HRNet-OCR, OCR+ASPP, MS-OCR.

``model=hrnet|hrnet_ocr|hrnet_ocr_aspp|hrnet_ocr_ms`` (``config/model/``), ``model.width=18|48``,
``model.pretrained=null|ImageNet|Paddle|Mapillary|<path>``. See README "Models: HRNet family".
"""

from models.hrnet.backbone import HRNET_WIDTHS, HRNetBackbone
from models.hrnet.models import HRNetMSOCR, HRNetOCR, HRNetOCRASPP, HRNetSegmentationBase, HRNetV2
from models.hrnet.weights import LoadReport, load_hrnet_state, map_key, resolve_weights

__all__ = [
    "HRNET_WIDTHS",
    "HRNetBackbone",
    "HRNetMSOCR",
    "HRNetOCR",
    "HRNetOCRASPP",
    "HRNetSegmentationBase",
    "HRNetV2",
    "LoadReport",
    "load_hrnet_state",
    "map_key",
    "resolve_weights",
]

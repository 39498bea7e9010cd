"""Loss functions behind one registry: ``build_loss(name, ...)`` and ``MultiOutputLoss``.

Registered names (``lossfunction=[...]``): CE, wCE (``losses.ce``); RMI, wRMI (``losses.rmi``);
DC+CE (alias DC_CE), TOPK, DC+TOPK (alias DC_TOPK) (``losses.nnunet``); DC, Jaccard, Focal, Lovasz
(``losses.smp_losses``). Importing this package registers every loss module listed below.
"""

from losses import ce, nnunet, rmi, smp_losses  # noqa: F401  (register the losses)
from losses.common import SegLoss
from losses.registry import (
    ALIASES,
    LOSSES,
    MultiOutputLoss,
    build_loss,
    canonical_name,
    loss_params_for,
    register_loss,
    resize_to,
)

__all__ = [
    "ALIASES",
    "LOSSES",
    "MultiOutputLoss",
    "SegLoss",
    "build_loss",
    "canonical_name",
    "loss_params_for",
    "register_loss",
    "resize_to",
]

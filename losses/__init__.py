"""Loss functions behind one registry: ``build_loss(name, ...)`` and ``MultiOutputLoss``.

Importing this package registers every loss module listed below.
"""
from losses import ce  # noqa: F401  (registers CE, wCE)
from losses.registry import LOSSES, MultiOutputLoss, build_loss, register_loss, resize_to

__all__ = ["LOSSES", "MultiOutputLoss", "build_loss", "register_loss", "resize_to"]

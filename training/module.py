"""The LightningModule: model + losses + optimizer/poly LR + confusion-matrix metrics.

Built entirely from the composed config (``config/train.yaml``): ``model`` (instantiated), one loss per
model output (``lossfunction``/``lossweight``, see :class:`losses.MultiOutputLoss`), ``optimizer``
(``_partial_``), ``lr_scheduler`` (stepped per iteration). Validation uses the inference engine in
``whole`` mode so that validation.py reproduces it exactly.
"""

from __future__ import annotations

import logging
import math

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from inference import InferenceSettings, infer
from inference.visualize import comparison_grid
from losses import MultiOutputLoss
from metrics import SegmentationMetrics, metrics_from_confusion
from metrics.aggregations import PerImageMIoU, aggregations
from metrics.calibration import SegmentationCalibration
from models.build import build_model

log = logging.getLogger("segbench")


def native_loss_of(model, lossfunction) -> bool:
    """True for ``lossfunction=[native]``: training calls ``model.native_loss(images, target)`` (the segmentor's own
    loss, e.g. :meth:`models.mmseg.MMSegModel.native_loss`) instead of segbench's per-output losses.

    Raises:
        ValueError: ``native`` beside other losses, or a model without a loss of its own (one line naming both).
    """
    names = [str(n) for n in ([lossfunction] if isinstance(lossfunction, str) else lossfunction)]
    if "native" not in names:
        return False
    if names != ["native"]:
        raise ValueError(f"lossfunction={names}: 'native' (the model's own loss) stands alone: lossfunction=[native]")
    if not callable(getattr(model, "native_loss", None)):
        raise ValueError(
            f"lossfunction=[native]: {type(model).__name__} has no loss of its own (model=mmseg segmentors have one)"
        )
    return True


class SegmentationModule(pl.LightningModule):
    """Semantic segmentation training/validation for any segbench model.

    Logs ``train/loss`` (+ one ``train/loss_<output>`` per output), ``val/mIoU``, ``val/aAcc``, ``val/mAcc``,
    ``val/IoU_<class>``, ``val/loss`` (unweighted CE of the ``out`` prediction at label size), the aggregations
    ``val/mIoU_image``, ``val/fwIoU``, ``val/IoU_micro`` (:mod:`metrics.aggregations`), the calibration errors
    ``val/ECE``, ``val/MCE`` of the probabilities (fractions, :mod:`metrics.calibration`) and, for TensorBoard, a
    grid of (image | label | prediction) each epoch.
    ``self.best_confmat`` holds the int64 (K, K) confusion matrix of the best epoch, ``self.best_calibration`` its
    ``{"ECE", "MCE"}``.
    """

    def __init__(self, cfg: DictConfig):
        super().__init__()
        cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        self.save_hyperparameters({"cfg": OmegaConf.to_container(cfg, resolve=True)}, logger=False)
        self.cfg = OmegaConf.create(self.hparams["cfg"])
        d = self.cfg.dataset
        self.model = build_model(self.cfg.model)
        self.output_names = tuple(self.model.output_names)
        self.native_loss = native_loss_of(self.model, self.cfg.lossfunction)
        self.criterion = (
            None
            if self.native_loss
            else MultiOutputLoss(
                self.output_names,
                self.cfg.lossfunction,
                self.cfg.lossweight,
                num_classes=d.num_classes,
                ignore_index=d.ignore_index,
                class_weights=d.get("class_weights"),
                params=OmegaConf.to_container(self.cfg.get("loss_params", OmegaConf.create({}))),
            )
        )
        self.val_metrics = SegmentationMetrics(d.num_classes, d.ignore_index)
        self.val_image_miou = PerImageMIoU(d.num_classes, d.ignore_index)
        self.val_calibration = SegmentationCalibration(d.ignore_index)
        self.val_settings = InferenceSettings(mode="whole", resize=(d.get("test") or {}).get("resize"))
        self.channels_last = bool(self.cfg.get("channels_last", False))
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.best_miou = -math.inf
        self.best_confmat: torch.Tensor | None = None
        self.best_epoch = -1
        self.best_calibration: dict[str, float] = {}
        self.best_confmat_path = None  # set by training.train: the run folder's ConfusionMatrix.pt

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def training_step(self, batch, batch_idx):
        if self.native_loss:  # the model's own loss on the images (lossfunction=[native])
            x = batch["image"]
            x = x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
            loss, parts = self.model.native_loss(x, batch["mask"])
        else:
            loss, parts = self.criterion(self(batch["image"]), batch["mask"])
        self.last_loss_parts = {k: v.detach() for k, v in parts.items()}  # named by training.guards on NaN/inf
        bs = batch["image"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        if (
            "skipped" in batch
        ):  # dataset.skip_corrupt=true: corrupt files skipped to build this batch (datasets/base.py)
            self.log(
                "data/skipped_corrupt",
                batch["skipped"].sum().float(),
                reduce_fx="sum",
                on_step=False,
                on_epoch=True,
                batch_size=bs,
            )
        if len(parts) > 1:
            for name, value in parts.items():
                self.log(f"train/loss_{name}", value, batch_size=bs)
        # Lightning divides "loss" by accumulate_grad_batches in the outputs callbacks see; "batch_loss" is the
        # loss of this batch as computed (summary.json's train_loss)
        return {"loss": loss, "batch_loss": loss.detach()}

    def validation_step(self, batch, batch_idx):
        images, target = batch["image"], batch["mask"]
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        probs = infer(self.model, images, self.val_settings, out_size=target.shape[-2:])
        pred = probs.argmax(1)
        self.val_metrics.update(pred, target)
        self.val_image_miou.update(pred, target)
        self.val_calibration.update(probs, target)
        # CE of the `out` prediction: NLL of the log of its softmax at label size (= F.cross_entropy of the logits)
        logp = probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
        ignore = int(self.cfg.dataset.ignore_index)
        if bool((target != ignore).any()):
            ce = torch.nn.functional.nll_loss(logp, target, ignore_index=ignore)
            self.log("val/loss", ce, on_epoch=True, batch_size=images.shape[0], sync_dist=True)
        if batch_idx == 0 and self.cfg.get("num_vis", 0) and self.global_rank == 0:
            self._log_images(images, target, pred)

    def on_validation_epoch_end(self) -> None:
        confmat = self.val_metrics.confusion()
        self.val_metrics.reset()
        m = metrics_from_confusion(confmat)
        m.update(aggregations(confmat, float(self.val_image_miou.compute())))
        self.val_image_miou.reset()
        calibration = {k: v for k, v in self.val_calibration.compute().items() if k in ("ECE", "MCE")}
        self.val_calibration.reset()
        names = list(self.cfg.dataset.get("class_names") or range(len(m["IoU"])))
        self.log("val/mIoU", m["mIoU"], prog_bar=True, sync_dist=False)
        self.log("val/aAcc", m["aAcc"])
        self.log("val/mAcc", m["mAcc"])
        for key in ("mIoU_image", "fwIoU", "IoU_micro"):
            self.log(f"val/{key}", m[key])
        for key, value in calibration.items():
            self.log(f"val/{key}", value)
        for name, iou in zip(names, m["IoU"]):
            if not math.isnan(iou):
                self.log(f"val/IoU_{name}", iou)
        if self.trainer.sanity_checking:
            return
        if m["mIoU"] > self.best_miou:
            self.best_miou, self.best_epoch, self.best_confmat = m["mIoU"], self.current_epoch, confmat.cpu()
            self.best_calibration = calibration
            if self.best_confmat_path is not None and self.global_rank == 0:
                torch.save(self.best_confmat, self.best_confmat_path)
        if self.global_rank == 0:
            log.info(
                f"Epoch {self.current_epoch}: val mIoU={m['mIoU']:.4f} aAcc={m['aAcc']:.4f} "
                f"mAcc={m['mAcc']:.4f} (best {self.best_miou:.4f} @ epoch {self.best_epoch})"
            )

    def _log_images(self, images, target, pred) -> None:
        n = int(self.cfg.num_vis)
        for lg in self.loggers:
            exp = getattr(lg, "experiment", None)
            if hasattr(exp, "add_image"):
                d = self.cfg.dataset
                grid = comparison_grid(images[:n], target[:n], pred[:n], d.palette, d.mean, d.std, d.ignore_index)
                exp.add_image("val/prediction", grid, self.current_epoch)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = instantiate(self.cfg.optimizer)(params=params)
        sched_cfg = self.cfg.get("lr_scheduler")
        if not sched_cfg:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = instantiate(sched_cfg.scheduler)(optimizer, **{sched_cfg.total_steps_arg: max(total, 1)})
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": sched_cfg.get("interval", "step")},
        }

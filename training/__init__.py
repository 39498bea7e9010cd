"""Training: the LightningModule, the DataModule and ``train(cfg)`` behind main.py."""

"""cryptopredict: a self-retraining crypto price-forecast service (train heavy, serve light)."""

__version__ = "0.1.0"

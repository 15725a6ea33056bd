"""The data loop: dataset formats, splitting, frame sampling, retraining capture."""

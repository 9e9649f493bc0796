"""Keras callbacks the recorder tests stop training with (import only where keras is installed)."""

import keras


class StopAfter(keras.callbacks.Callback):
    """Sets ``stop_training`` after ``n`` batches of a fit in all (Keras leaves the epoch after that
    batch, then still calls on_epoch_end)."""

    def __init__(self, n):
        super().__init__()
        self.n, self.batches = n, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches >= self.n:
            self.model.stop_training = True

//! firth's neural core: kernels, layers with forward/backward, optimizers, checkpoints.

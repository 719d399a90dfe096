//! Affine layer y = x·Wᵀ + b, with W stored (O, I) as in PyTorch so that an output layer can
//! share its matrix with a (V, E) embedding table (tied embeddings).

use crate::gemm::gemm;
use crate::kernels;
use crate::param::{Param, ParamSet};
use crate::{Real, Rng};

#[derive(Clone, Debug)]
pub struct Linear<T> {
    pub weight: Param<T>,       // (O, I)
    pub bias: Option<Param<T>>, // (O)
}

impl<T: Real> Linear<T> {
    pub fn new(
        name: &str,
        input: usize,
        output: usize,
        bias: bool,
        init_range: f64,
        rng: &mut Rng,
    ) -> Self {
        Linear {
            weight: Param::uniform(&format!("{name}.weight"), &[output, input], init_range, rng),
            bias: bias.then(|| Param::uniform(&format!("{name}.bias"), &[output], init_range, rng)),
        }
    }

    pub fn input(&self) -> usize {
        self.weight.shape[1]
    }

    pub fn output(&self) -> usize {
        self.weight.shape[0]
    }

    /// y (N, O) = x (N, I)·Wᵀ + b.
    pub fn forward(&self, x: &[T], y: &mut [T]) {
        affine_forward(
            x,
            &self.weight.value,
            self.bias.as_ref().map(|b| &b.value[..]),
            y,
            self.input(),
            self.output(),
        );
    }

    /// dW += dyᵀ·x, db += Σ_rows dy, dx += dy·W.
    pub fn backward(&mut self, x: &[T], dy: &[T], dx: Option<&mut [T]>) {
        let (i, o) = (self.input(), self.output());
        affine_backward(
            x,
            dy,
            &self.weight.value,
            &mut self.weight.grad,
            self.bias.as_mut().map(|b| &mut b.grad[..]),
            dx,
            i,
            o,
        );
    }
}

/// y (N, O) = x (N, I)·Wᵀ + b with W (O, I).
pub fn affine_forward<T: Real>(x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T], i: usize, o: usize) {
    let n = x.len() / i;
    gemm(y, x, w, n, o, i, false, true, false);
    if let Some(b) = b {
        crate::par::for_rows(y, o, |_, rows| kernels::add_bias(rows, b));
    }
}

/// The gradients of [`affine_forward`]: dW (O, I) += dyᵀ·x, db += Σ_rows dy, dx (N, I) += dy·W.
#[allow(clippy::too_many_arguments)]
pub fn affine_backward<T: Real>(
    x: &[T],
    dy: &[T],
    w: &[T],
    dw: &mut [T],
    db: Option<&mut [T]>,
    dx: Option<&mut [T]>,
    i: usize,
    o: usize,
) {
    let n = x.len() / i;
    gemm(dw, dy, x, o, i, n, true, false, true);
    if let Some(db) = db {
        kernels::sum_rows_into(dy, db);
    }
    if let Some(dx) = dx {
        gemm(dx, dy, w, n, i, o, false, false, true);
    }
}

impl<T: Real> ParamSet<T> for Linear<T> {
    fn params(&self) -> Vec<&Param<T>> {
        let mut v = vec![&self.weight];
        v.extend(self.bias.as_ref());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = vec![&mut self.weight];
        v.extend(self.bias.as_mut());
        v
    }
}

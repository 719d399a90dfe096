//! Parameters: a value buffer, its gradient, and which rows the gradient touched.

use crate::Real;

/// One named weight tensor and its gradient, both row-major with the same `shape`.
///
/// `sparse` parameters (embedding tables) record the rows their gradient touched since the
/// last [`Param::zero_grad`], so zeroing, norms and SGD updates cost O(rows used) rather
/// than O(vocabulary).
#[derive(Clone, Debug)]
pub struct Param<T> {
    pub name: String,
    pub shape: Vec<usize>,
    pub value: Vec<T>,
    pub grad: Vec<T>,
    pub sparse: bool,
    /// Rows with a possibly non-zero gradient (only kept when `sparse`); may repeat.
    pub touched: Vec<u32>,
    /// True once a dense gradient was added to a sparse parameter (a tied output layer).
    pub dense_grad: bool,
}

impl<T: Real> Param<T> {
    pub fn zeros(name: &str, shape: &[usize]) -> Param<T> {
        let n = shape.iter().product();
        Param {
            name: name.to_string(),
            shape: shape.to_vec(),
            value: vec![T::ZERO; n],
            grad: vec![T::ZERO; n],
            sparse: false,
            touched: Vec::new(),
            dense_grad: false,
        }
    }

    /// Uniform in [-r, r].
    pub fn uniform(name: &str, shape: &[usize], r: f64, rng: &mut crate::Rng) -> Param<T> {
        let mut p = Param::zeros(name, shape);
        for v in &mut p.value {
            *v = T::from_f64((2.0 * rng.uniform() - 1.0) * r);
        }
        p
    }

    pub fn len(&self) -> usize {
        self.value.len()
    }

    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// Width of a row (the last dimension).
    pub fn row_len(&self) -> usize {
        *self.shape.last().unwrap_or(&1)
    }

    /// Rows to visit for gradient work, or `None` meaning all of them.
    pub fn grad_rows(&mut self) -> Option<&[u32]> {
        if self.sparse && !self.dense_grad {
            self.touched.sort_unstable();
            self.touched.dedup();
            Some(&self.touched)
        } else {
            None
        }
    }

    pub fn zero_grad(&mut self) {
        let w = self.row_len();
        if let Some(rows) = self.grad_rows() {
            let rows = rows.to_vec();
            for r in rows {
                let r = r as usize;
                self.grad[r * w..(r + 1) * w].fill(T::ZERO);
            }
        } else {
            self.grad.fill(T::ZERO);
        }
        self.touched.clear();
        self.dense_grad = false;
    }

    /// Σ g², over touched rows only for sparse gradients.
    pub fn grad_sq_norm(&mut self) -> f64 {
        let w = self.row_len();
        let sq = |s: &[T]| sum_squares(s);
        match self.grad_rows() {
            Some(rows) => {
                let rows = rows.to_vec();
                rows.iter()
                    .map(|&r| sq(&self.grad[r as usize * w..(r as usize + 1) * w]))
                    .sum()
            }
            None => sum_squares_chunked(&self.grad),
        }
    }

    /// Applies `f(value, grad)` to each element the gradient may touch.
    pub fn for_each_grad(&mut self, mut f: impl FnMut(&mut [T], &mut [T])) {
        let w = self.row_len();
        match self.grad_rows() {
            Some(rows) => {
                let rows = rows.to_vec();
                for r in rows {
                    let r = r as usize;
                    f(
                        &mut self.value[r * w..(r + 1) * w],
                        &mut self.grad[r * w..(r + 1) * w],
                    );
                }
            }
            None => f(&mut self.value, &mut self.grad),
        }
    }
}

/// Anything that owns parameters: layers and models expose them in a fixed order, which is
/// the order of checkpoints and optimizer state.
pub trait ParamSet<T> {
    fn params(&self) -> Vec<&Param<T>>;
    fn params_mut(&mut self) -> Vec<&mut Param<T>>;

    fn zero_grad(&mut self)
    where
        T: Real,
    {
        for p in self.params_mut() {
            p.zero_grad();
        }
    }

    fn num_params(&self) -> usize {
        self.params().iter().map(|p| p.value.len()).sum()
    }
}

/// Σ x² in f64, with 8 independent partial sums so the loop vectorises (a single running sum
/// would force the compiler to keep the additions in order).
/// Σ x² of a large buffer in fixed pieces of [`NORM_CHUNK`] summed in order: the pieces may run
/// on any thread, and the result is the same for every thread count.
fn sum_squares_chunked<T: Real>(s: &[T]) -> f64 {
    use rayon::prelude::*;
    if s.len() <= NORM_CHUNK || crate::par::threads() == 1 {
        return s.chunks(NORM_CHUNK).map(sum_squares).sum();
    }
    let parts: Vec<f64> = s.par_chunks(NORM_CHUNK).map(sum_squares).collect();
    parts.iter().sum()
}

const NORM_CHUNK: usize = 1 << 15;

pub(crate) fn sum_squares<T: Real>(s: &[T]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            let v = c[i].to_f64();
            acc[i] += v * v;
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| v.to_f64() * v.to_f64())
        .sum();
    acc.iter().sum::<f64>() + tail
}

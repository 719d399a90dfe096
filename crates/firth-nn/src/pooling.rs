//! Pooling: one vector per sequence from the hidden states of a sequence encoder.
//!
//! Input `x` is time-major (L, B, D) with per-sequence `lengths` (B); positions t ≥ len_b of
//! sequence b are padding and never read. Output `y` is (B, D). Four ways, the lecture's
//! discussion question of how to turn a sequence of states into a sentence vector:
//!
//! * **Last state.** A left-to-right RNN has read the whole sentence at its *last valid* step,
//!   t = len_b − 1 (not at L − 1, which is padding for shorter sequences). A right-to-left RNN
//!   has read the whole sentence at position **0**, its last step in its own reading order. So
//!   for a bidirectional encoder, whose D = 2H features are [forward H | backward H], "last
//!   state" is y_b = [x_fwd(len_b − 1, b) | x_bwd(0, b)]: each direction's final summary.
//!   (Taking x(len_b − 1) for both halves would give the backward RNN's state after reading one
//!   word.) Gradient: the selected rows receive dy, every other position gets nothing.
//! * **Mean.** y_b = (1/len_b) Σ_{t<len_b} x_t; dx_t += dy / len_b for t < len_b.
//! * **Max.** y_bd = max_{t<len_b} x_tbd; the gradient goes to the arg-max position only
//!   (the first one on ties), a subgradient like ReLU's.
//! * **Attention** with a learned query u (D): s_t = u·x_t, α = softmax over t < len_b,
//!   y = Σ_t α_t x_t. With g = dy:
//!   dy/dx_t has the direct term α_t g, and through α: ∂y/∂s_t = α_t (x_t − y), so
//!   dL/ds_t = α_t (g·x_t − g·y) =: e_t. Then dx_t += α_t g + e_t u and du += Σ_t e_t x_t.
//!
//! `forward` caches what `backward` needs (arg-max indices, attention weights); `backward`
//! accumulates (`+=`) into `dx` and into the query's gradient.

use crate::param::{Param, ParamSet};
use crate::{Real, Rng};
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    Last,
    Mean,
    Max,
    Attention,
}

impl PoolKind {
    pub fn parse(s: &str) -> Option<PoolKind> {
        match s {
            "last" => Some(PoolKind::Last),
            "mean" => Some(PoolKind::Mean),
            "max" => Some(PoolKind::Max),
            "attention" => Some(PoolKind::Attention),
            _ => None,
        }
    }
}

/// A pooling layer over (L, B, D) states with lengths.
#[derive(Clone, Debug)]
pub struct Pooling<T> {
    pub kind: PoolKind,
    pub dim: usize,
    /// The features are [forward | backward] halves (affects `Last` only).
    pub bidirectional: bool,
    /// Attention only: the query u (D).
    pub query: Option<Param<T>>,
    steps: usize,
    batch: usize,
    lengths: Vec<usize>,
    argmax: Vec<u32>, // (B, D), Max only
    alpha: Vec<T>,    // (L, B), Attention only; 0 at padding
    y: Vec<T>,        // (B, D)
}

impl<T: Real> Pooling<T> {
    pub fn new(
        name: &str,
        kind: PoolKind,
        dim: usize,
        bidirectional: bool,
        init_range: f64,
        rng: &mut Rng,
    ) -> Self {
        assert!(
            !bidirectional || dim % 2 == 0,
            "bidirectional states have an even width"
        );
        Pooling {
            kind,
            dim,
            bidirectional,
            query: (kind == PoolKind::Attention)
                .then(|| Param::uniform(&format!("{name}.query"), &[dim], init_range, rng)),
            steps: 0,
            batch: 0,
            lengths: Vec::new(),
            argmax: Vec::new(),
            alpha: Vec::new(),
            y: Vec::new(),
        }
    }

    /// y (B, D) from x (L, B, D). Every length must be in 1..=L.
    pub fn forward(&mut self, x: &[T], steps: usize, batch: usize, lengths: &[usize]) -> &[T] {
        let d = self.dim;
        assert_eq!(x.len(), steps * batch * d, "pooling input is not (L, B, D)");
        assert_eq!(lengths.len(), batch, "one length per sequence");
        assert!(
            lengths.iter().all(|&n| n >= 1 && n <= steps),
            "lengths must be in 1..=L"
        );
        self.steps = steps;
        self.batch = batch;
        self.lengths.clear();
        self.lengths.extend_from_slice(lengths);
        self.y.clear();
        self.y.resize(batch * d, T::ZERO);
        let row = |t: usize, b: usize| &x[(t * batch + b) * d..(t * batch + b + 1) * d];
        match self.kind {
            PoolKind::Last => {
                let h = if self.bidirectional { d / 2 } else { d };
                for (b, &n) in lengths.iter().enumerate() {
                    let y = &mut self.y[b * d..(b + 1) * d];
                    y[..h].copy_from_slice(&row(n - 1, b)[..h]);
                    if self.bidirectional {
                        y[h..].copy_from_slice(&row(0, b)[h..]);
                    }
                }
            }
            PoolKind::Mean => {
                for (b, &n) in lengths.iter().enumerate() {
                    let y = &mut self.y[b * d..(b + 1) * d];
                    for t in 0..n {
                        for (a, &v) in y.iter_mut().zip(row(t, b)) {
                            *a += v;
                        }
                    }
                    let inv = T::from_f64(1.0 / n as f64);
                    y.iter_mut().for_each(|a| *a *= inv);
                }
            }
            PoolKind::Max => {
                self.argmax.clear();
                self.argmax.resize(batch * d, 0);
                for (b, &n) in lengths.iter().enumerate() {
                    let y = &mut self.y[b * d..(b + 1) * d];
                    let arg = &mut self.argmax[b * d..(b + 1) * d];
                    y.copy_from_slice(row(0, b));
                    for t in 1..n {
                        for ((a, i), &v) in y.iter_mut().zip(arg.iter_mut()).zip(row(t, b)) {
                            if v > *a {
                                *a = v;
                                *i = t as u32;
                            }
                        }
                    }
                }
            }
            PoolKind::Attention => {
                let u = &self.query.as_ref().expect("attention has a query").value;
                self.alpha.clear();
                self.alpha.resize(steps * batch, T::ZERO);
                for (b, &n) in lengths.iter().enumerate() {
                    // s_t = u·x_t, then a max-shifted softmax over the valid steps.
                    let mut m = T::from_f64(f64::NEG_INFINITY);
                    for t in 0..n {
                        let s = dot(u, row(t, b));
                        self.alpha[t * batch + b] = s;
                        m = m.max(s);
                    }
                    let mut z = T::ZERO;
                    for t in 0..n {
                        let e = (self.alpha[t * batch + b] - m).exp();
                        self.alpha[t * batch + b] = e;
                        z += e;
                    }
                    let y = &mut self.y[b * d..(b + 1) * d];
                    for t in 0..n {
                        let a = self.alpha[t * batch + b] / z;
                        self.alpha[t * batch + b] = a;
                        for (o, &v) in y.iter_mut().zip(row(t, b)) {
                            *o += a * v;
                        }
                    }
                }
            }
        }
        &self.y
    }

    /// The output of the last forward, (B, D).
    pub fn output(&self) -> &[T] {
        &self.y
    }

    /// Attention weights of the last forward, (L, B) (empty for other kinds).
    pub fn attention(&self) -> &[T] {
        &self.alpha
    }

    /// dx (L, B, D) += dL/dx given dy (B, D); the query's gradient += dL/du (attention).
    /// `x` must be the input of the last forward.
    pub fn backward(&mut self, x: &[T], dy: &[T], dx: &mut [T]) {
        let (batch, d) = (self.batch, self.dim);
        assert_eq!(dy.len(), batch * d, "pooling output gradient is not (B, D)");
        assert_eq!(dx.len(), self.steps * batch * d, "dx is not (L, B, D)");
        let at = |t: usize, b: usize| (t * batch + b) * d;
        match self.kind {
            PoolKind::Last => {
                let h = if self.bidirectional { d / 2 } else { d };
                for (b, &n) in self.lengths.iter().enumerate() {
                    let g = &dy[b * d..(b + 1) * d];
                    let o = at(n - 1, b);
                    for (a, &v) in dx[o..o + h].iter_mut().zip(&g[..h]) {
                        *a += v;
                    }
                    if self.bidirectional {
                        let o = at(0, b);
                        for (a, &v) in dx[o + h..o + d].iter_mut().zip(&g[h..]) {
                            *a += v;
                        }
                    }
                }
            }
            PoolKind::Mean => {
                for (b, &n) in self.lengths.iter().enumerate() {
                    let g = &dy[b * d..(b + 1) * d];
                    let inv = T::from_f64(1.0 / n as f64);
                    for t in 0..n {
                        let o = at(t, b);
                        for (a, &v) in dx[o..o + d].iter_mut().zip(g) {
                            *a += v * inv;
                        }
                    }
                }
            }
            PoolKind::Max => {
                for b in 0..batch {
                    for k in 0..d {
                        let t = self.argmax[b * d + k] as usize;
                        dx[at(t, b) + k] += dy[b * d + k];
                    }
                }
            }
            PoolKind::Attention => {
                let q = self.query.as_mut().expect("attention has a query");
                for (b, &n) in self.lengths.iter().enumerate() {
                    let g = &dy[b * d..(b + 1) * d];
                    let gy = dot(g, &self.y[b * d..(b + 1) * d]);
                    for t in 0..n {
                        let o = at(t, b);
                        let xt = &x[o..o + d];
                        let a = self.alpha[t * batch + b];
                        // e_t = α_t (g·x_t − g·y)
                        let e = a * (dot(g, xt) - gy);
                        for ((dxv, &gv), &uv) in dx[o..o + d].iter_mut().zip(g).zip(&q.value) {
                            *dxv += a * gv + e * uv;
                        }
                        for (du, &xv) in q.grad.iter_mut().zip(xt) {
                            *du += e * xv;
                        }
                    }
                }
            }
        }
    }
}

fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::ZERO, |s, (&x, &y)| s + x * y)
}

impl<T: Real> ParamSet<T> for Pooling<T> {
    fn params(&self) -> Vec<&Param<T>> {
        self.query.iter().collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        self.query.iter_mut().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check_input, check_params};

    const L: usize = 4;
    const B: usize = 3;
    const D: usize = 6;
    const LENS: [usize; B] = [4, 1, 3];

    fn input(rng: &mut Rng) -> Vec<f64> {
        (0..L * B * D).map(|_| rng.normal()).collect()
    }

    /// Loss Σ w ⊙ y with fixed random weights, so every output element matters.
    fn weights(rng: &mut Rng) -> Vec<f64> {
        (0..B * D).map(|_| rng.normal()).collect()
    }

    fn loss(p: &mut Pooling<f64>, x: &[f64], w: &[f64]) -> f64 {
        let y = p.forward(x, L, B, &LENS);
        y.iter().zip(w).map(|(a, b)| a * b).sum()
    }

    fn check(kind: PoolKind, bidirectional: bool) {
        let mut rng = Rng::new(11);
        let x = input(&mut rng);
        let w = weights(&mut rng);
        let mut p = Pooling::<f64>::new("pool", kind, D, bidirectional, 0.5, &mut rng);
        loss(&mut p, &x, &w);
        let mut dx = vec![0.0; x.len()];
        p.backward(&x, &w, &mut dx);
        // Padding positions never receive gradient.
        for (b, &n) in LENS.iter().enumerate() {
            for t in n..L {
                let o = (t * B + b) * D;
                assert!(
                    dx[o..o + D].iter().all(|&v| v == 0.0),
                    "padding got gradient"
                );
            }
        }
        let mut q = p.clone();
        let err = check_input(&x, &dx, |xx| loss(&mut q, xx, &w));
        assert!(err < 1e-6, "{kind:?} input gradient: relative error {err}");
        let (err, at) = check_params(
            &mut p,
            |m| {
                let v = loss(m, &x, &w);
                let mut dx = vec![0.0; x.len()];
                m.backward(&x, &w, &mut dx);
                v
            },
            |m| loss(m, &x, &w),
            50,
        );
        assert!(err < 1e-6, "{kind:?} parameter gradient: {err} at {at}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        for kind in [
            PoolKind::Last,
            PoolKind::Mean,
            PoolKind::Max,
            PoolKind::Attention,
        ] {
            check(kind, false);
        }
        check(PoolKind::Last, true);
    }

    #[test]
    fn hand_computed_values() {
        // L = 3, B = 2, D = 2; sequence 0 has length 3, sequence 1 length 2 (t = 2 is padding,
        // filled with 100 so that reading it would show).
        let x = vec![
            1.0, 2.0, /* b1 */ 5.0, -1.0, // t = 0
            3.0, 0.0, /* b1 */ 7.0, 4.0, // t = 1
            -2.0, 8.0, /* b1 */ 100.0, 100.0, // t = 2
        ];
        let lens = [3, 2];
        let mut rng = Rng::new(1);
        let mut p = Pooling::<f64>::new("p", PoolKind::Last, 2, false, 0.1, &mut rng);
        assert_eq!(p.forward(&x, 3, 2, &lens), &[-2.0, 8.0, 7.0, 4.0]);
        // Bidirectional: forward half from len-1, backward half from position 0.
        let mut p = Pooling::<f64>::new("p", PoolKind::Last, 2, true, 0.1, &mut rng);
        assert_eq!(p.forward(&x, 3, 2, &lens), &[-2.0, 2.0, 7.0, -1.0]);
        let mut p = Pooling::<f64>::new("p", PoolKind::Mean, 2, false, 0.1, &mut rng);
        let y = p.forward(&x, 3, 2, &lens).to_vec();
        for (a, b) in y.iter().zip([2.0 / 3.0, 10.0 / 3.0, 6.0, 1.5]) {
            assert!((a - b).abs() < 1e-12, "{y:?}");
        }
        let mut p = Pooling::<f64>::new("p", PoolKind::Max, 2, false, 0.1, &mut rng);
        assert_eq!(p.forward(&x, 3, 2, &lens), &[3.0, 8.0, 7.0, 4.0]);
        // Attention with u = 0 weighs valid steps equally: the mean.
        let mut p = Pooling::<f64>::new("p", PoolKind::Attention, 2, false, 0.1, &mut rng);
        p.query.as_mut().unwrap().value.fill(0.0);
        let y = p.forward(&x, 3, 2, &lens).to_vec();
        for (a, b) in y.iter().zip([2.0 / 3.0, 10.0 / 3.0, 6.0, 1.5]) {
            assert!((a - b).abs() < 1e-12, "{y:?}");
        }
        assert_eq!(p.attention()[2 * 2 + 1], 0.0, "padding has no weight");
    }
}

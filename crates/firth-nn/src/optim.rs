//! Optimizers and gradient clipping.

use crate::param::Param;
use crate::Real;
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    /// θ ← θ - lr·g. Sparse (embedding) gradients update only the rows they touched.
    Sgd,
    /// Adam (Kingma & Ba) with L2 weight decay added to the gradient.
    Adam,
    /// Adam with decoupled weight decay (Loshchilov & Hutter).
    #[cfg_attr(feature = "clap", value(name = "adamw"))]
    AdamW,
    /// Adam that updates only the rows of a sparse (embedding) parameter its gradient touched,
    /// moments included, as TensorFlow's LazyAdam and PyTorch's SparseAdam do: a row unseen
    /// for a while keeps its stale moments instead of drifting on them. Dense parameters get
    /// plain Adam. Costs O(rows used) per step instead of O(vocabulary).
    #[cfg_attr(feature = "clap", value(name = "lazy-adam"))]
    #[serde(rename = "lazy-adam")]
    LazyAdam,
}

/// An optimizer and its per-parameter state. State vectors are indexed like the parameter
/// list the model hands over, which is fixed, so they can be saved and restored by position.
#[derive(Clone, Debug)]
pub struct Optimizer<T> {
    pub kind: OptimKind,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Updates done so far (Adam's bias correction needs it).
    pub steps: u64,
    pub m: Vec<Vec<T>>,
    pub v: Vec<Vec<T>>,
}

impl<T: Real> Optimizer<T> {
    pub fn new(kind: OptimKind, weight_decay: f64) -> Self {
        Optimizer {
            kind,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            steps: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// One update of every parameter with its accumulated gradient.
    pub fn step(&mut self, params: &mut [&mut Param<T>], lr: f64) {
        self.step_scaled(params, lr, 1.0);
    }

    /// One update with every gradient multiplied by `grad_scale` on the fly: clipping by
    /// global norm (scale = clip / norm) then costs no pass of its own over the gradients.
    pub fn step_scaled(&mut self, params: &mut [&mut Param<T>], lr: f64, grad_scale: f64) {
        self.steps += 1;
        let s = T::from_f64(grad_scale);
        match self.kind {
            OptimKind::Sgd => {
                let lr = T::from_f64(lr);
                let wd = T::from_f64(self.weight_decay);
                let update = |w: &mut [T], g: &mut [T]| {
                    for (w, &g) in w.iter_mut().zip(g.iter()) {
                        *w -= lr * (g * s + wd * *w);
                    }
                };
                for p in params.iter_mut() {
                    if p.grad_rows().is_some() {
                        p.for_each_grad(update);
                    } else {
                        crate::par::for_rows2(&mut p.value, 1, &mut p.grad, 1, |_, w, g| {
                            update(w, g)
                        });
                    }
                }
            }
            OptimKind::Adam | OptimKind::AdamW | OptimKind::LazyAdam => {
                if self.m.len() != params.len() {
                    self.m = params.iter().map(|p| vec![T::ZERO; p.len()]).collect();
                    self.v = params.iter().map(|p| vec![T::ZERO; p.len()]).collect();
                }
                let (b1, b2) = (self.beta1, self.beta2);
                let c1 = 1.0 - b1.powi(self.steps as i32);
                let c2 = 1.0 - b2.powi(self.steps as i32);
                let step = T::from_f64(lr * c2.sqrt() / c1);
                let eps = T::from_f64(self.eps * c2.sqrt());
                let (b1t, b2t) = (T::from_f64(b1), T::from_f64(b2));
                let (ob1, ob2) = (T::from_f64(1.0 - b1), T::from_f64(1.0 - b2));
                let l2 = T::from_f64(if self.kind == OptimKind::Adam {
                    self.weight_decay
                } else {
                    0.0
                });
                let decay = T::from_f64(if self.kind == OptimKind::AdamW {
                    1.0 - lr * self.weight_decay
                } else {
                    1.0
                });
                // m ← β1 m + (1-β1) g, v ← β2 v + (1-β2) g², w ← w·decay - step·m / (√v + ε),
                // with the bias corrections folded into `step` and `eps`.
                let update = |w: &mut [T], g: &[T], m: &mut [T], v: &mut [T]| {
                    for i in 0..w.len() {
                        let g = g[i] * s + l2 * w[i];
                        m[i] = b1t * m[i] + ob1 * g;
                        v[i] = b2t * v[i] + ob2 * g * g;
                        w[i] = w[i] * decay - step * m[i] / (v[i].sqrt() + eps);
                    }
                };
                for (k, p) in params.iter_mut().enumerate() {
                    let (m, v) = (&mut self.m[k], &mut self.v[k]);
                    if self.kind == OptimKind::LazyAdam {
                        let w = p.row_len();
                        if let Some(rows) = p.grad_rows() {
                            let rows = rows.to_vec();
                            for r in rows {
                                let at = r as usize * w..(r as usize + 1) * w;
                                update(
                                    &mut p.value[at.clone()],
                                    &p.grad[at.clone()],
                                    &mut m[at.clone()],
                                    &mut v[at],
                                );
                            }
                            continue;
                        }
                    }
                    if crate::par::threads() == 1 || p.value.len() < crate::par::MIN_PARALLEL {
                        update(&mut p.value, &p.grad, m, v);
                        continue;
                    }
                    use rayon::prelude::*;
                    const PIECE: usize = 1 << 14;
                    p.value
                        .par_chunks_mut(PIECE)
                        .zip(p.grad.par_chunks(PIECE))
                        .zip(m.par_chunks_mut(PIECE))
                        .zip(v.par_chunks_mut(PIECE))
                        .for_each(|(((w, g), m), v)| update(w, g, m, v));
                }
            }
        }
    }
}

/// The factor that brings a gradient of norm `norm` down to `max_norm` (1 when it is already
/// within it or clipping is off).
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / norm
    } else {
        1.0
    }
}

pub fn grad_norm<T: Real>(params: &mut [&mut Param<T>]) -> f64 {
    params
        .iter_mut()
        .map(|p| p.grad_sq_norm())
        .sum::<f64>()
        .sqrt()
}

/// Clipping by global norm (Pascanu et al., the lecture's algorithm): if ‖g‖ > max, scale every
/// gradient by max/‖g‖. Returns the norm before clipping.
pub fn clip_grad_norm<T: Real>(params: &mut [&mut Param<T>], max_norm: f64) -> f64 {
    let norm = grad_norm(params);
    if norm > max_norm {
        let s = T::from_f64(max_norm / norm);
        for p in params.iter_mut() {
            p.for_each_grad(|_, g| g.iter_mut().for_each(|g| *g *= s));
        }
    }
    norm
}

/// Clipping by value: every gradient element into [-c, c].
pub fn clip_grad_value<T: Real>(params: &mut [&mut Param<T>], c: f64) {
    let (lo, hi) = (T::from_f64(-c), T::from_f64(c));
    for p in params.iter_mut() {
        p.for_each_grad(|_, g| g.iter_mut().for_each(|g| *g = g.max(lo).min(hi)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_scales_to_max_norm() {
        let mut a = Param::<f64>::zeros("a", &[2]);
        a.grad = vec![3.0, 4.0];
        let norm = clip_grad_norm(&mut [&mut a], 1.0);
        assert_eq!(norm, 5.0);
        assert!((a.grad[0] - 0.6).abs() < 1e-12 && (a.grad[1] - 0.8).abs() < 1e-12);
    }

    #[test]
    fn sparse_sgd_touches_only_used_rows() {
        let mut e = Param::<f64>::zeros("e", &[3, 2]);
        e.sparse = true;
        e.grad[2] = 1.0;
        e.grad[3] = 2.0;
        e.touched = vec![1, 1];
        Optimizer::new(OptimKind::Sgd, 0.0).step(&mut [&mut e], 0.5);
        assert_eq!(e.value, vec![0.0, 0.0, -0.5, -1.0, 0.0, 0.0]);
        e.zero_grad();
        assert!(e.grad.iter().all(|&g| g == 0.0));
    }

    #[test]
    fn lazy_adam_moves_touched_rows_as_adam_and_leaves_the_rest() {
        // Two steps: row 1 touched both times, row 0 only the first time. Adam keeps moving
        // row 0 on its momentum at step 2; lazy Adam leaves it, and agrees on row 1.
        let run = |kind| {
            let mut e = Param::<f64>::zeros("e", &[3, 2]);
            e.sparse = true;
            let mut opt = Optimizer::new(kind, 0.0);
            for (step, rows) in [vec![0u32, 1], vec![1]].into_iter().enumerate() {
                for &r in &rows {
                    let r = r as usize;
                    e.grad[2 * r] = 0.5 + step as f64;
                    e.grad[2 * r + 1] = -1.0;
                }
                e.touched = rows;
                opt.step(&mut [&mut e], 0.1);
                e.zero_grad();
            }
            (e.value, opt.m[0].clone())
        };
        let (dense, dense_m) = run(OptimKind::Adam);
        let (lazy, lazy_m) = run(OptimKind::LazyAdam);
        assert_eq!(lazy[2..4], dense[2..4], "the row touched every step");
        assert_eq!(lazy[4..6], [0.0, 0.0], "never touched: no update");
        assert_eq!(dense[4..6], [0.0, 0.0]);
        // Row 0 after one lazy step: -lr·sign(g) (up to ε); dense Adam moved it further.
        assert!((lazy[0] + 0.1).abs() < 1e-6 && (lazy[1] - 0.1).abs() < 1e-6);
        assert!(dense[0] < lazy[0] - 0.01, "{} vs {}", dense[0], lazy[0]);
        assert!((lazy_m[0] - 0.1 * 0.5).abs() < 1e-12, "stale moment kept");
        assert!((dense_m[0] - 0.9 * 0.1 * 0.5).abs() < 1e-12, "decayed");
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        // With bias correction the first Adam step is lr·g/|g| (up to ε).
        let mut p = Param::<f64>::zeros("p", &[2]);
        p.grad = vec![0.3, -2.0];
        Optimizer::new(OptimKind::Adam, 0.0).step(&mut [&mut p], 0.01);
        assert!(
            (p.value[0] + 0.01).abs() < 1e-6 && (p.value[1] - 0.01).abs() < 1e-6,
            "{:?}",
            p.value
        );
    }
}

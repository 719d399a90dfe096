//! Embedding lookup with a sparse gradient.

use crate::param::{Param, ParamSet};
use crate::{Real, Rng};

/// A (V, E) table; forward copies rows, backward adds into the rows that were used.
#[derive(Clone, Debug)]
pub struct Embedding<T> {
    pub weight: Param<T>, // (V, E)
}

impl<T: Real> Embedding<T> {
    pub fn new(name: &str, vocab: usize, dim: usize, init_range: f64, rng: &mut Rng) -> Self {
        let mut weight = Param::uniform(&format!("{name}.weight"), &[vocab, dim], init_range, rng);
        weight.sparse = true;
        Embedding { weight }
    }

    pub fn dim(&self) -> usize {
        self.weight.shape[1]
    }

    pub fn vocab(&self) -> usize {
        self.weight.shape[0]
    }

    /// out (N, E) = rows `ids` of the table.
    pub fn forward(&self, ids: &[u32], out: &mut [T]) {
        let e = self.dim();
        assert_eq!(out.len(), ids.len() * e);
        for (row, &id) in out.chunks_exact_mut(e).zip(ids) {
            let id = id as usize;
            row.copy_from_slice(&self.weight.value[id * e..(id + 1) * e]);
        }
    }

    /// dW[id] += dout row, for each position. Only the touched rows are recorded, so the
    /// optimizer and the gradient norm visit those and not the whole vocabulary.
    pub fn backward(&mut self, ids: &[u32], dout: &[T]) {
        let e = self.dim();
        for (row, &id) in dout.chunks_exact(e).zip(ids) {
            let id = id as usize;
            for (g, &d) in self.weight.grad[id * e..(id + 1) * e].iter_mut().zip(row) {
                *g += d;
            }
        }
        self.weight.touched.extend_from_slice(ids);
    }
}

impl<T: Real> ParamSet<T> for Embedding<T> {
    fn params(&self) -> Vec<&Param<T>> {
        vec![&self.weight]
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        vec![&mut self.weight]
    }
}

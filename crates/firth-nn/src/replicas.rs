//! Data-parallel training: K replicas of a model each take B/K of the batch's columns, run
//! forward and backward on a thread of their own, and their gradients are summed into the
//! first replica, which takes the optimizer step; the new weights are then copied back.
//!
//! Every replica differentiates the loss scaled for the whole batch (1/B, not 1/(B/K)), so the
//! summed gradient is the full batch's gradient, and clipping and the update see exactly what
//! one model on the whole batch would (up to the order of floating-point additions).

use crate::param::Param;
use crate::Real;

/// dst.grad += src.grad for each pair of matching parameters. A sparse gradient (embedding
/// rows) adds only its touched rows and records them as touched in `dst`.
pub fn add_grads<T: Real>(dst: &mut [&mut Param<T>], src: &mut [&mut Param<T>]) {
    assert_eq!(
        dst.len(),
        src.len(),
        "replicas have different parameter lists"
    );
    for (d, s) in dst.iter_mut().zip(src.iter_mut()) {
        assert_eq!(
            d.shape, s.shape,
            "replica parameter {} differs in shape",
            d.name
        );
        let w = s.row_len();
        match s.grad_rows() {
            Some(rows) => {
                let rows = rows.to_vec();
                for &r in &rows {
                    let r = r as usize;
                    let (dr, sr) = (&mut d.grad[r * w..(r + 1) * w], &s.grad[r * w..(r + 1) * w]);
                    crate::kernels::add_into(dr, sr);
                }
                d.touched.extend_from_slice(&rows);
            }
            None => {
                // A dense gradient in `src` makes `dst`'s dense too; untouched rows of a
                // sparse `dst` are zero, so its whole buffer is already a valid gradient.
                d.dense_grad |= d.sparse;
                crate::par::for_rows2(&mut d.grad, 1, &mut s.grad, 1, |_, a, b| {
                    crate::kernels::add_into(a, b)
                });
            }
        }
    }
}

/// dst.value = src.value. With `touched_only`, a sparse parameter copies just the rows that
/// `src`'s last gradient touched: after a sparse SGD step those are the only rows that moved.
pub fn copy_values<T: Real>(
    dst: &mut [&mut Param<T>],
    src: &mut [&mut Param<T>],
    touched_only: bool,
) {
    assert_eq!(
        dst.len(),
        src.len(),
        "replicas have different parameter lists"
    );
    for (d, s) in dst.iter_mut().zip(src.iter_mut()) {
        let w = s.row_len();
        match s.grad_rows().map(<[u32]>::to_vec) {
            Some(rows) if touched_only => {
                for &r in &rows {
                    let r = r as usize;
                    d.value[r * w..(r + 1) * w].copy_from_slice(&s.value[r * w..(r + 1) * w]);
                }
            }
            _ => crate::par::for_rows2(&mut d.value, 1, &mut s.value, 1, |_, a, b| {
                a.copy_from_slice(b)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_and_dense_gradients_add_up() {
        let mut a = Param::<f64>::zeros("e", &[3, 2]);
        a.sparse = true;
        let mut b = a.clone();
        a.grad[0] = 1.0;
        a.touched = vec![0];
        b.grad[4] = 2.0;
        b.grad[5] = 3.0;
        b.touched = vec![2];
        add_grads(&mut [&mut a], &mut [&mut b]);
        assert_eq!(a.grad, vec![1.0, 0.0, 0.0, 0.0, 2.0, 3.0]);
        assert_eq!(a.grad_rows().unwrap(), &[0, 2]);

        let mut d = Param::<f64>::zeros("w", &[2]);
        let mut e = d.clone();
        d.grad = vec![1.0, 2.0];
        e.grad = vec![0.5, -2.0];
        add_grads(&mut [&mut d], &mut [&mut e]);
        assert_eq!(d.grad, vec![1.5, 0.0]);
    }

    #[test]
    fn copies_touched_rows_or_everything() {
        let mut src = Param::<f64>::zeros("e", &[3, 1]);
        src.sparse = true;
        src.value = vec![1.0, 2.0, 3.0];
        src.touched = vec![1];
        let mut dst = Param::<f64>::zeros("e", &[3, 1]);
        copy_values(&mut [&mut dst], &mut [&mut src], true);
        assert_eq!(dst.value, vec![0.0, 2.0, 0.0]);
        copy_values(&mut [&mut dst], &mut [&mut src], false);
        assert_eq!(dst.value, vec![1.0, 2.0, 3.0]);
    }
}

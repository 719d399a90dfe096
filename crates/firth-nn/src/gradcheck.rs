//! Finite-difference gradient checks in f64, for tests of every layer and model.

use crate::param::ParamSet;

/// Compares analytic parameter gradients with central differences
/// (L(θ+ε) - L(θ-ε)) / 2ε. `forward_backward` must zero nothing itself: it runs a forward
/// and backward pass that adds gradients into the parameters; `loss` runs a forward pass only.
/// At most `max_per_param` elements of each parameter are checked (spread evenly).
/// Returns the worst relative error |a - n| / max(|a| + |n|, 1e-4) and where it occurred.
pub fn check_params<M: ParamSet<f64>>(
    model: &mut M,
    mut forward_backward: impl FnMut(&mut M) -> f64,
    mut loss: impl FnMut(&mut M) -> f64,
    max_per_param: usize,
) -> (f64, String) {
    model.zero_grad();
    forward_backward(model);
    let analytic: Vec<Vec<f64>> = model.params().iter().map(|p| p.grad.clone()).collect();
    let names: Vec<String> = model.params().iter().map(|p| p.name.clone()).collect();
    let mut worst = (0.0, String::new());
    for (k, grads) in analytic.iter().enumerate() {
        let n = grads.len();
        let stride = (n / max_per_param.max(1)).max(1);
        for i in (0..n).step_by(stride) {
            let num = central_difference(
                model,
                |m| &mut m.params_mut().swap_remove(k).value[i],
                &mut loss,
            );
            let err = relative_error(grads[i], num);
            if err > worst.0 {
                worst = (
                    err,
                    format!(
                        "{}[{i}]: analytic {:.6e} numeric {:.6e}",
                        names[k], grads[i], num
                    ),
                );
            }
        }
    }
    worst
}

/// (L(x+ε) - L(x-ε)) / 2ε for the scalar `slot` selects, restoring it afterwards.
pub fn central_difference<M>(
    model: &mut M,
    slot: impl Fn(&mut M) -> &mut f64,
    loss: &mut impl FnMut(&mut M) -> f64,
) -> f64 {
    let eps = 1e-5;
    let orig = *slot(model);
    *slot(model) = orig + eps;
    let lp = loss(model);
    *slot(model) = orig - eps;
    let lm = loss(model);
    *slot(model) = orig;
    (lp - lm) / (2.0 * eps)
}

pub fn relative_error(a: f64, n: f64) -> f64 {
    (a - n).abs() / (a.abs() + n.abs()).max(1e-4)
}

/// Checks a gradient with respect to an input vector: `f` maps the input to the loss, and
/// `analytic` is the gradient the backward pass produced. Returns the worst relative error.
pub fn check_input(x: &[f64], analytic: &[f64], mut f: impl FnMut(&[f64]) -> f64) -> f64 {
    let mut x = x.to_vec();
    let mut worst: f64 = 0.0;
    for i in 0..x.len() {
        let num = central_difference(&mut x, |x| &mut x[i], &mut |x: &mut Vec<f64>| f(x));
        worst = worst.max(relative_error(analytic[i], num));
    }
    worst
}

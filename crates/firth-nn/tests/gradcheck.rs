//! Every layer's backward pass against central finite differences, in f64.

use firth_nn::dropout::{Dropout, DropoutKind};
use firth_nn::embedding::Embedding;
use firth_nn::gradcheck::{check_input, check_params};
use firth_nn::linear::Linear;
use firth_nn::param::{Param, ParamSet};
use firth_nn::recurrent::{CellKind, Recurrent};
use firth_nn::softmax::{softmax_cross_entropy, softmax_cross_entropy_backward};
use firth_nn::Rng;

const TOL: f64 = 1e-6;

fn random(n: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

/// L = Σ y ⊙ R for a fixed random R, so dL/dy = R.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn check_recurrent(kind: CellKind) {
    let (t, b, i, h) = (5, 3, 4, 6);
    let mut rng = Rng::new(11);
    let mut layer = Recurrent::<f64>::new("l", kind, i, h, 0.5, 1.0, &mut rng);
    let x = random(t * b * i, &mut rng);
    let h0 = random(b * h, &mut rng);
    let c0 = random(b * h, &mut rng);
    let r = random(t * b * h, &mut rng);
    let loss = |l: &mut Recurrent<f64>, x: &[f64], h0: &[f64], c0: &[f64]| {
        dot(l.forward(x, t, b, h0, c0), &r)
    };
    let (worst, at) = check_params(
        &mut layer,
        |l| {
            let v = loss(l, &x, &h0, &c0);
            l.backward(&x, &r, None);
            v
        },
        |l| loss(l, &x, &h0, &c0),
        1000,
    );
    assert!(
        worst < TOL,
        "{kind:?} parameter gradient off: {worst:e} at {at}"
    );

    // Input and initial-state gradients.
    let mut dx = vec![0.0; x.len()];
    loss(&mut layer, &x, &h0, &c0);
    layer.backward(&x, &r, Some(&mut dx));
    let dh0 = layer.d_h0().to_vec();
    let dc0 = layer.d_c0().to_vec();
    let mut probe = layer.clone();
    let e = check_input(&x, &dx, |xp| loss(&mut probe, xp, &h0, &c0));
    assert!(e < TOL, "{kind:?} dx off: {e:e}");
    let e = check_input(&h0, &dh0, |hp| loss(&mut probe, &x, hp, &c0));
    assert!(e < TOL, "{kind:?} dh0 off: {e:e}");
    if kind == CellKind::Lstm {
        let e = check_input(&c0, &dc0, |cp| loss(&mut probe, &x, &h0, cp));
        assert!(e < TOL, "LSTM dc0 off: {e:e}");
    }
}

#[test]
fn lstm_gradients() {
    check_recurrent(CellKind::Lstm);
}

#[test]
fn gru_gradients() {
    check_recurrent(CellKind::Gru);
}

#[test]
fn rnn_tanh_gradients() {
    check_recurrent(CellKind::RnnTanh);
}

#[test]
fn rnn_sigmoid_gradients() {
    check_recurrent(CellKind::RnnSigmoid);
}

#[test]
fn linear_gradients() {
    let mut rng = Rng::new(5);
    let (n, i, o) = (4, 3, 5);
    let mut lin = Linear::<f64>::new("lin", i, o, true, 0.7, &mut rng);
    let x = random(n * i, &mut rng);
    let r = random(n * o, &mut rng);
    let fwd = |l: &Linear<f64>, x: &[f64]| {
        let mut y = vec![0.0; n * o];
        l.forward(x, &mut y);
        dot(&y, &r)
    };
    let (worst, at) = check_params(
        &mut lin,
        |l| {
            let v = fwd(l, &x);
            l.backward(&x, &r, None);
            v
        },
        |l| fwd(l, &x),
        100,
    );
    assert!(worst < TOL, "{worst:e} at {at}");
    let mut dx = vec![0.0; n * i];
    lin.backward(&x, &r, Some(&mut dx));
    assert!(check_input(&x, &dx, |xp| fwd(&lin, xp)) < TOL);
}

#[test]
fn embedding_gradients_with_repeated_ids() {
    let mut rng = Rng::new(9);
    let mut emb = Embedding::<f64>::new("emb", 6, 3, 0.5, &mut rng);
    let ids = [2u32, 4, 2, 0];
    let r = random(ids.len() * 3, &mut rng);
    let fwd = |e: &Embedding<f64>| {
        let mut y = vec![0.0; ids.len() * 3];
        e.forward(&ids, &mut y);
        dot(&y, &r)
    };
    let (worst, at) = check_params(
        &mut emb,
        |e| {
            let v = fwd(e);
            e.backward(&ids, &r);
            v
        },
        |e| fwd(e),
        100,
    );
    assert!(worst < TOL, "{worst:e} at {at}");
    // Row 2 collected the gradients of both of its uses; rows 1, 3, 5 nothing.
    assert!((emb.weight.grad[6] - (r[0] + r[6])).abs() < 1e-12);
    assert_eq!(emb.weight.grad[3..6], [0.0; 3]);
}

#[test]
fn softmax_cross_entropy_gradient() {
    let mut rng = Rng::new(2);
    let (n, v) = (3, 5);
    let z = random(n * v, &mut rng);
    let targets = [1u32, 4, 0];
    let mut nll = Vec::new();
    let loss = |zp: &[f64], nll: &mut Vec<f64>| {
        let mut p = zp.to_vec();
        softmax_cross_entropy(&mut p, &targets, v, nll)
    };
    let mut p = z.clone();
    softmax_cross_entropy(&mut p, &targets, v, &mut nll);
    softmax_cross_entropy_backward(&mut p, &targets, v, 0.5);
    let e = check_input(&z, &p, |zp| 0.5 * loss(zp, &mut Vec::new()));
    assert!(e < TOL, "{e:e}");
}

#[test]
fn dropout_gradient_uses_the_forward_mask() {
    for kind in [DropoutKind::Standard, DropoutKind::Locked] {
        let (t, row) = (3, 4);
        let mut rng = Rng::new(1);
        let x = random(t * row, &mut rng);
        let r = random(t * row, &mut rng);
        let fwd = |xp: &[f64], d: &mut Dropout<f64>| {
            let mut y = xp.to_vec();
            d.forward(&mut y, row, true, &mut Rng::new(77));
            dot(&y, &r)
        };
        let mut d = Dropout::new(0.4, kind);
        fwd(&x, &mut d);
        let mut g = r.clone();
        d.backward(&mut g);
        let e = check_input(&x, &g, |xp| fwd(xp, &mut Dropout::new(0.4, kind)));
        assert!(e < TOL, "{kind:?}: {e:e}");
    }
}

#[test]
fn gradcheck_catches_a_wrong_gradient() {
    // The checker itself must fail on a broken backward pass.
    struct Square(Param<f64>);
    impl ParamSet<f64> for Square {
        fn params(&self) -> Vec<&Param<f64>> {
            vec![&self.0]
        }
        fn params_mut(&mut self) -> Vec<&mut Param<f64>> {
            vec![&mut self.0]
        }
    }
    let mut m = Square(Param::zeros("w", &[2]));
    m.0.value = vec![1.0, 2.0];
    let loss = |m: &mut Square| m.0.value.iter().map(|w| w * w).sum::<f64>();
    let (bad, _) = check_params(
        &mut m,
        |m| {
            let l = loss(m);
            m.0.grad = m.0.value.clone(); // should be 2w
            l
        },
        loss,
        10,
    );
    assert!(bad > 0.1);
    let (good, _) = check_params(
        &mut m,
        |m| {
            let l = loss(m);
            m.0.grad = m.0.value.iter().map(|w| 2.0 * w).collect();
            l
        },
        loss,
        10,
    );
    assert!(good < TOL);
}

/// The f32 layers train through kernels of their own (the packed few-row product for the
/// per-step h·W_h and dG·W_hᵀ on AVX-512 CPUs, the vectorised exp); f64 runs the plain GEMM.
/// Both must compute the same forward and backward: built from the same random stream, their
/// outputs and gradients agree to f32 precision.
#[test]
fn f32_recurrent_layers_agree_with_f64() {
    // H = 70: gate widths 70-280 leave part-filled 64-column panels and vectors.
    let (t, b, i, h) = (6, 5, 7, 70);
    for kind in [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::RnnTanh,
        CellKind::RnnSigmoid,
    ] {
        let mut l64 = Recurrent::<f64>::new("l", kind, i, h, 0.3, 1.0, &mut Rng::new(5));
        let mut l32 = Recurrent::<f32>::new("l", kind, i, h, 0.3, 1.0, &mut Rng::new(5));
        let mut rng = Rng::new(6);
        let x = random(t * b * i, &mut rng);
        let h0 = random(b * h, &mut rng);
        let c0 = random(b * h, &mut rng);
        let dy = random(t * b * h, &mut rng);
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let (x32, h032, c032, dy32) = (f(&x), f(&h0), f(&c0), f(&dy));
        let y64 = l64.forward(&x, t, b, &h0, &c0).to_vec();
        let y32 = l32.forward(&x32, t, b, &h032, &c032).to_vec();
        let (mut dx64, mut dx32) = (vec![0.0f64; x.len()], vec![0.0f32; x.len()]);
        l64.backward(&x, &dy, Some(&mut dx64));
        l32.backward(&x32, &dy32, Some(&mut dx32));
        let close = |what: &str, a: &[f64], b: &[f32]| {
            assert_eq!(a.len(), b.len());
            let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (k, (&u, &v)) in a.iter().zip(b).enumerate() {
                assert!(
                    (u - v as f64).abs() < 1e-4 * scale,
                    "{kind:?} {what}[{k}]: f64 {u} vs f32 {v}"
                );
            }
        };
        close("y", &y64, &y32);
        close("dx", &dx64, &dx32);
        close("dh0", l64.d_h0(), l32.d_h0());
        for (p64, p32) in l64.params().iter().zip(l32.params()) {
            close(&p64.name, &p64.grad, &p32.grad);
        }
    }
}

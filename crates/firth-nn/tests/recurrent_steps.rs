//! Step-wise recurrent passes against the full forward, and gradients into the final state.

use firth_nn::gradcheck::{check_input, check_params};
use firth_nn::param::ParamSet;
use firth_nn::recurrent::{CellKind, Recurrent};
use firth_nn::Rng;

const KINDS: [CellKind; 4] = [
    CellKind::Lstm,
    CellKind::Gru,
    CellKind::RnnTanh,
    CellKind::RnnSigmoid,
];

fn random(n: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn grads(layer: &Recurrent<f64>) -> Vec<f64> {
    layer
        .params()
        .iter()
        .flat_map(|p| p.grad.iter().copied())
        .collect()
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (p, q)) in a.iter().zip(b).enumerate() {
        assert!((p - q).abs() < 1e-12, "{what}[{i}]: {p} vs {q}");
    }
}

#[test]
fn stepping_equals_the_full_forward_and_backward() {
    let (t_n, b_n, i_n, h_n) = (4, 3, 5, 6);
    for kind in KINDS {
        let mut rng = Rng::new(3);
        let mut full = Recurrent::<f64>::new("l", kind, i_n, h_n, 0.5, 1.0, &mut rng);
        let x = random(t_n * b_n * i_n, &mut rng);
        let h0 = random(b_n * h_n, &mut rng);
        let c0 = random(b_n * h_n, &mut rng);
        let dy = random(t_n * b_n * h_n, &mut rng);
        let d_last_h = random(b_n * h_n, &mut rng);
        let d_last_c = random(b_n * h_n, &mut rng);
        let lstm = kind == CellKind::Lstm;
        let mut stepped = full.clone();

        let y_full = full.forward(&x, t_n, b_n, &h0, &c0).to_vec();
        full.add_d_final(&d_last_h, lstm.then_some(&d_last_c[..]));
        let mut dx_full = vec![0.5; x.len()];
        full.backward(&x, &dy, Some(&mut dx_full));

        stepped.begin(b_n, &h0, &c0);
        let mut y_steps = Vec::new();
        for t in 0..t_n {
            let h_t = stepped.step(&x[t * b_n * i_n..(t + 1) * b_n * i_n]);
            assert_eq!(h_t.len(), b_n * h_n);
            y_steps.extend_from_slice(h_t);
        }
        assert_close(&y_steps, &y_full, &format!("{kind:?} outputs"));
        assert_close(stepped.output(), &y_full, &format!("{kind:?} output()"));
        assert_close(stepped.last_h(), full.last_h(), &format!("{kind:?} h_T"));
        assert_close(stepped.last_c(), full.last_c(), &format!("{kind:?} c_T"));
        stepped.add_d_final(&d_last_h, lstm.then_some(&d_last_c[..]));
        let mut dx_steps = vec![0.5; x.len()];
        stepped.backward_steps(&dy, Some(&mut dx_steps));
        assert_close(&grads(&stepped), &grads(&full), &format!("{kind:?} dθ"));
        assert_close(&dx_steps, &dx_full, &format!("{kind:?} dx"));
        assert_close(stepped.d_h0(), full.d_h0(), &format!("{kind:?} dh0"));
        assert_close(stepped.d_c0(), full.d_c0(), &format!("{kind:?} dc0"));

        // The same backward one step at a time (an input-feeding decoder's order).
        let mut one = stepped.clone();
        one.zero_grad();
        one.begin(b_n, &h0, &c0);
        for t in 0..t_n {
            one.step(&x[t * b_n * i_n..(t + 1) * b_n * i_n]);
        }
        one.add_d_final(&d_last_h, lstm.then_some(&d_last_c[..]));
        let mut dx_one = vec![0.5; x.len()];
        one.backward_steps_begin();
        for t in (0..t_n).rev() {
            let at = t * b_n * i_n..(t + 1) * b_n * i_n;
            one.backward_step(
                &dy[t * b_n * h_n..(t + 1) * b_n * h_n],
                Some(&mut dx_one[at]),
            );
        }
        one.backward_steps_end();
        assert_close(
            &grads(&one),
            &grads(&full),
            &format!("{kind:?} step-wise dθ"),
        );
        assert_close(&dx_one, &dx_full, &format!("{kind:?} step-wise dx"));
        assert_close(one.d_h0(), full.d_h0(), &format!("{kind:?} step-wise dh0"));
        assert_close(one.d_c0(), full.d_c0(), &format!("{kind:?} step-wise dc0"));
    }
}

/// L = Σ y ⊙ R + Σ h_T ⊙ P (+ Σ c_T ⊙ Q for an LSTM): every gradient against finite differences.
#[test]
fn gradients_into_the_final_state() {
    let (t_n, b_n, i_n, h_n) = (4, 2, 3, 5);
    for kind in KINDS {
        let mut rng = Rng::new(17);
        let mut layer = Recurrent::<f64>::new("l", kind, i_n, h_n, 0.5, 1.0, &mut rng);
        let lstm = kind == CellKind::Lstm;
        let x = random(t_n * b_n * i_n, &mut rng);
        let h0 = random(b_n * h_n, &mut rng);
        let c0 = random(b_n * h_n, &mut rng);
        let r = random(t_n * b_n * h_n, &mut rng);
        let p = random(b_n * h_n, &mut rng);
        let q = random(b_n * h_n, &mut rng);
        let loss = |l: &mut Recurrent<f64>, x: &[f64], h0: &[f64], c0: &[f64]| {
            let mut v = dot(l.forward(x, t_n, b_n, h0, c0), &r) + dot(l.last_h(), &p);
            if lstm {
                v += dot(l.last_c(), &q);
            }
            v
        };
        let backward = |l: &mut Recurrent<f64>, dx: Option<&mut [f64]>| {
            // Given in two halves: the setter accumulates.
            let half: Vec<f64> = p.iter().map(|v| v / 2.0).collect();
            l.add_d_final(&half, None);
            l.add_d_final(&half, lstm.then_some(&q[..]));
            l.backward(&x, &r, dx);
        };
        let (worst, at) = check_params(
            &mut layer,
            |l| {
                let v = loss(l, &x, &h0, &c0);
                backward(l, None);
                v
            },
            |l| loss(l, &x, &h0, &c0),
            1000,
        );
        assert!(worst < 1e-6, "{kind:?} dθ off: {worst:e} at {at}");
        loss(&mut layer, &x, &h0, &c0);
        let mut dx = vec![0.0; x.len()];
        backward(&mut layer, Some(&mut dx));
        let (dh0, dc0) = (layer.d_h0().to_vec(), layer.d_c0().to_vec());
        let mut probe = layer.clone();
        let e = check_input(&x, &dx, |xp| loss(&mut probe, xp, &h0, &c0));
        assert!(e < 1e-6, "{kind:?} dx off: {e:e}");
        let e = check_input(&h0, &dh0, |hp| loss(&mut probe, &x, hp, &c0));
        assert!(e < 1e-6, "{kind:?} dh0 off: {e:e}");
        if lstm {
            let e = check_input(&c0, &dc0, |cp| loss(&mut probe, &x, &h0, cp));
            assert!(e < 1e-6, "dc0 off: {e:e}");
        }
        // The pending gradient is spent: a second backward without it sees only dy.
        loss(&mut layer, &x, &h0, &c0);
        layer.zero_grad();
        layer.backward(&x, &r, None);
        let plain = grads(&layer);
        loss(&mut layer, &x, &h0, &c0);
        layer.zero_grad();
        backward(&mut layer, None);
        loss(&mut layer, &x, &h0, &c0);
        layer.zero_grad();
        layer.backward(&x, &r, None);
        assert_close(&grads(&layer), &plain, &format!("{kind:?} after spend"));
    }
}

/// f32: a step-wise pass with the weights packed once ([`Recurrent::begin_packed`], the
/// few-row kernel on AVX-512 machines) and its step-wise backward give what the plain GEMMs
/// give, for more rows than the general packing threshold.
#[test]
fn packed_steps_match_plain_steps() {
    let (t_n, b_n, i_n, h_n) = (5, 40, 70, 33);
    for kind in [CellKind::Lstm, CellKind::Gru] {
        let mut rng = Rng::new(8);
        let mut plain = Recurrent::<f32>::new("l", kind, i_n, h_n, 0.3, 1.0, &mut rng);
        let x: Vec<f32> = (0..t_n * b_n * i_n).map(|_| rng.normal() as f32).collect();
        let dy: Vec<f32> = (0..t_n * b_n * h_n).map(|_| rng.normal() as f32).collect();
        let h0 = vec![0.1f32; b_n * h_n];
        let mut packed = plain.clone();
        let run = |l: &mut Recurrent<f32>, pack: bool| -> (Vec<f32>, Vec<f32>, Vec<f32>) {
            if pack {
                l.begin_packed(b_n, &h0, &h0, t_n);
            } else {
                l.begin(b_n, &h0, &h0);
            }
            let mut y = Vec::new();
            for t in 0..t_n {
                y.extend_from_slice(l.step(&x[t * b_n * i_n..(t + 1) * b_n * i_n]));
            }
            let mut dx = vec![0.0f32; x.len()];
            l.backward_steps_begin();
            for t in (0..t_n).rev() {
                let at = t * b_n * i_n..(t + 1) * b_n * i_n;
                l.backward_step(&dy[t * b_n * h_n..(t + 1) * b_n * h_n], Some(&mut dx[at]));
            }
            l.backward_steps_end();
            let g = l.params().iter().flat_map(|p| p.grad.clone()).collect();
            (y, dx, g)
        };
        let a = run(&mut plain, false);
        let b = run(&mut packed, true);
        for (what, p, q) in [("y", &a.0, &b.0), ("dx", &a.1, &b.1), ("dθ", &a.2, &b.2)] {
            for (i, (u, v)) in p.iter().zip(q.iter()).enumerate() {
                assert!(
                    (u - v).abs() <= 1e-4 * (1.0 + u.abs()),
                    "{kind:?} {what}[{i}]: {u} vs {v}"
                );
            }
        }
    }
}

//! Outside references: firth's LSTM, GRU and CRF against values PyTorch computed (nn.LSTM,
//! nn.GRU and pytorch-crf's CRF, all in float64), tensor by tensor: outputs, final states,
//! and the gradients of a fixed loss with respect to inputs, initial states and every
//! parameter. The fixture `reference/torch_lstm_gru_crf.json` is checked in; it was written by
//! `reference/make_torch_reference.py`, which documents what each entry is.
//!
//! Layout differences handled here, and nowhere else: PyTorch stores weight_ih (G·H, I) and
//! weight_hh (G·H, H), firth the transposes (I, G·H) and (H, G·H), with the same gate order
//! (LSTM i, f, g, o; GRU r, z, n). PyTorch's LSTM has two biases that only ever appear summed,
//! firth one (b = b_ih + b_hh, so dL/db equals both of PyTorch's bias gradients); the GRU keeps
//! both, b_hh being firth's `b_h` (its n part inside r ⊙ (W_hn h + b_hn)).

use firth_nn::crf::Crf;
use firth_nn::recurrent::Recurrent;
use firth_nn::{CellKind, Rng};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/torch_lstm_gru_crf.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn floats(v: &Value, key: &str) -> Vec<f64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("fixture has no array {key}"))
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn size(v: &Value, key: &str) -> usize {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("fixture has no {key}")) as usize
}

/// The transpose of a row-major (rows, cols) matrix.
fn transpose(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    assert_eq!(m.len(), rows * cols);
    (0..cols * rows)
        .map(|i| m[(i % rows) * cols + i / rows])
        .collect()
}

/// Both sides are float64 computations of the same formulas in a different order, so they
/// agree to rounding: a relative 1e-12 is far tighter than any layout or formula mistake.
fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
            "{what}[{i}]: firth {g}, PyTorch {w}"
        );
    }
}

fn check_recurrent(kind: CellKind, r: &Value) {
    let (i_n, h_n, t_n, b_n) = (
        size(r, "input"),
        size(r, "hidden"),
        size(r, "steps"),
        size(r, "batch"),
    );
    let g_n = kind.gates() * h_n;
    let name = format!("{kind:?}");
    let mut layer = Recurrent::<f64>::new("l", kind, i_n, h_n, 0.1, 0.0, &mut Rng::new(1));
    layer.w_x.value = transpose(&floats(r, "weight_ih"), g_n, i_n);
    layer.w_h.value = transpose(&floats(r, "weight_hh"), g_n, h_n);
    let (b_ih, b_hh) = (floats(r, "bias_ih"), floats(r, "bias_hh"));
    if kind == CellKind::Gru {
        layer.b.value = b_ih;
        layer.b_h.as_mut().expect("a GRU has b_h").value = b_hh;
    } else {
        layer.b.value = b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect();
        assert!(layer.b_h.is_none());
    }
    let x = floats(r, "x"); // (T, B, I), time-major like PyTorch's default
    let h0 = floats(r, "h0"); // (1, B, H) in PyTorch, (B, H) here
    let c0 = if kind == CellKind::Lstm {
        floats(r, "c0")
    } else {
        vec![]
    };
    let y = layer.forward(&x, t_n, b_n, &h0, &c0).to_vec();
    assert_close(&format!("{name} output"), &y, &floats(r, "output"));
    assert_close(&format!("{name} h_n"), layer.last_h(), &floats(r, "h_n"));
    let dy = floats(r, "dy");
    let loss: f64 = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
    assert!(
        (loss - r["loss"].as_f64().unwrap()).abs() < 1e-12,
        "{name} loss"
    );
    if kind == CellKind::Lstm {
        assert_close(&format!("{name} c_n"), layer.last_c(), &floats(r, "c_n"));
    }

    // L = Σ y ⊙ dy, so dL/dy = dy.
    let mut dx = vec![0.0; x.len()];
    layer.backward(&x, &dy, Some(&mut dx));
    assert_close(&format!("{name} dL/dx"), &dx, &floats(r, "grad_x"));
    assert_close(
        &format!("{name} dL/dh0"),
        layer.d_h0(),
        &floats(r, "grad_h0"),
    );
    if kind == CellKind::Lstm {
        assert_close(
            &format!("{name} dL/dc0"),
            layer.d_c0(),
            &floats(r, "grad_c0"),
        );
    }
    assert_close(
        &format!("{name} dL/dW_x"),
        &layer.w_x.grad,
        &transpose(&floats(r, "grad_weight_ih"), g_n, i_n),
    );
    assert_close(
        &format!("{name} dL/dW_h"),
        &layer.w_h.grad,
        &transpose(&floats(r, "grad_weight_hh"), g_n, h_n),
    );
    assert_close(
        &format!("{name} dL/db"),
        &layer.b.grad,
        &floats(r, "grad_bias_ih"),
    );
    let grad_b_hh = floats(r, "grad_bias_hh");
    match &layer.b_h {
        Some(b_h) => assert_close(&format!("{name} dL/db_h"), &b_h.grad, &grad_b_hh),
        None => assert_close(
            &format!("{name} dL/db (as b_hh)"),
            &layer.b.grad,
            &grad_b_hh,
        ),
    }
}

#[test]
fn lstm_matches_pytorch() {
    check_recurrent(CellKind::Lstm, &fixture()["lstm"]);
}

#[test]
fn gru_matches_pytorch() {
    check_recurrent(CellKind::Gru, &fixture()["gru"]);
}

/// pytorch-crf's conventions are firth's: transitions[i][j] scores tag i followed by tag j,
/// start and end transitions are added at the first and last real position, emissions are
/// time-major (L, B, K) and padded positions are masked out.
#[test]
fn crf_matches_pytorch_crf() {
    let r = &fixture()["crf"];
    let (k_n, l_n, b_n) = (size(r, "tags"), size(r, "steps"), size(r, "batch"));
    let lengths: Vec<usize> = r["lengths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap() as usize)
        .collect();
    let gold: Vec<u32> = r["gold"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let emis = floats(r, "emissions");
    let mut crf = Crf::<f64>::new("crf", k_n, 0.1, &mut Rng::new(1));
    crf.trans.value = floats(r, "transitions");
    crf.start.value = floats(r, "start");
    crf.end.value = floats(r, "end");

    let nll_sum = crf.forward(&emis, l_n, b_n, &lengths, &gold);
    let nll = floats(r, "nll");
    assert_close("CRF summed NLL", &[nll_sum], &[nll.iter().sum()]);
    assert_close("CRF log Z", crf.log_partition(), &floats(r, "log_z"));
    // Each sequence's NLL on its own, through a batch of one.
    for b in 0..b_n {
        let one_emis: Vec<f64> = (0..l_n)
            .flat_map(|t| emis[(t * b_n + b) * k_n..(t * b_n + b + 1) * k_n].to_vec())
            .collect();
        let one_gold: Vec<u32> = (0..l_n).map(|t| gold[t * b_n + b]).collect();
        let mut single = crf.clone();
        let v = single.forward(&one_emis, l_n, 1, &[lengths[b]], &one_gold);
        assert_close(&format!("CRF NLL of sequence {b}"), &[v], &[nll[b]]);
    }

    let mut d_emis = vec![0.0; emis.len()];
    crf.backward(1.0, &mut d_emis);
    // pytorch-crf leaves padded positions with a zero gradient, as firth does.
    assert_close("CRF dNLL/demissions", &d_emis, &floats(r, "grad_emissions"));
    assert_close(
        "CRF dNLL/dtransitions",
        &crf.trans.grad,
        &floats(r, "grad_transitions"),
    );
    assert_close("CRF dNLL/dstart", &crf.start.grad, &floats(r, "grad_start"));
    assert_close("CRF dNLL/dend", &crf.end.grad, &floats(r, "grad_end"));

    let mut best = vec![0u32; l_n * b_n];
    crf.viterbi(&emis, l_n, b_n, &lengths, &mut best);
    for (b, path) in r["viterbi"].as_array().unwrap().iter().enumerate() {
        let want: Vec<u32> = path
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        let got: Vec<u32> = (0..lengths[b]).map(|t| best[t * b_n + b]).collect();
        assert_eq!(got, want, "CRF Viterbi path of sequence {b}");
    }
}

/// Adam (L2 weight decay added to the gradient, as torch.optim.Adam) and AdamW (decoupled
/// decay, as torch.optim.AdamW) over six steps on L = Σ a w²/2 + b w, whose gradient a w + b
/// depends on where the previous step went, against torch.optim's parameter after every step.
/// firth folds the bias corrections into the step size and ε; the trajectory is the same.
#[test]
fn adam_and_adamw_trajectories_match_torch_optim() {
    use firth_nn::optim::{OptimKind, Optimizer};
    use firth_nn::Param;
    let f = fixture();
    for (kind, key) in [(OptimKind::Adam, "adam"), (OptimKind::AdamW, "adamw")] {
        let r = &f[key];
        let (a, b) = (floats(r, "a"), floats(r, "b"));
        let lr = r["lr"].as_f64().unwrap();
        let mut opt = Optimizer::<f64>::new(kind, r["weight_decay"].as_f64().unwrap());
        let mut w = Param::<f64>::zeros("w", &[a.len()]);
        w.value = floats(r, "w0");
        let trajectory = r["trajectory"].as_array().unwrap();
        assert_eq!(trajectory.len(), 6);
        for (step, want) in trajectory.iter().enumerate() {
            w.zero_grad();
            for i in 0..a.len() {
                w.grad[i] = a[i] * w.value[i] + b[i];
            }
            opt.step(&mut [&mut w], lr);
            let want: Vec<f64> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert_close(&format!("{key} step {}", step + 1), &w.value, &want);
        }
    }
}

//! Whole-model gradient checks in f64 (dropout off), for every architecture.

use firth_models::lm::{Arch, LanguageModel, LmConfig};
use firth_nn::dropout::DropoutKind;
use firth_nn::gradcheck::check_params;
use firth_nn::param::ParamSet;
use firth_nn::Rng;
use firth_text::Level;

fn config(arch: Arch) -> LmConfig {
    LmConfig {
        arch,
        level: Level::Word,
        vocab: 7,
        emb: 4,
        hidden: 5,
        layers: 1,
        dropout: 0.0,
        dropout_kind: DropoutKind::Standard,
        tied: false,
        residual: false,
        context: 3,
        init_range: 0.4,
        forget_bias: 0.0,
        rnn_sigmoid: false,
        reverse: false,
    }
}

fn check(cfg: LmConfig) {
    let (t, b) = (4, 2);
    let mut model = LanguageModel::<f64>::new(cfg.clone(), &mut Rng::new(3)).unwrap();
    let ids: Vec<u32> = vec![1, 2, 3, 0, 6, 5, 4, 4];
    let targets: Vec<u32> = vec![2, 3, 0, 6, 5, 4, 4, 1];
    // A non-zero starting state, as in the middle of an epoch.
    let mut start = model.start_state(b, 2);
    let mut warm = start.clone();
    model.forward(&ids, &targets, t, b, &mut warm, false, &mut Rng::new(0));
    start = if cfg.arch == Arch::Window {
        start
    } else {
        warm
    };
    let loss = |m: &mut LanguageModel<f64>| {
        let mut s = start.clone();
        m.forward(&ids, &targets, t, b, &mut s, false, &mut Rng::new(0))
    };
    let (worst, at) = check_params(
        &mut model,
        |m| {
            let l = loss(m);
            m.backward(1.0);
            l
        },
        loss,
        200,
    );
    assert!(
        worst < 1e-5,
        "{cfg:?}: worst relative error {worst:e} at {at}"
    );
}

#[test]
fn lstm_lm() {
    check(config(Arch::Lstm));
}

#[test]
fn gru_lm() {
    check(config(Arch::Gru));
}

#[test]
fn rnn_lm_tanh_and_sigmoid() {
    check(config(Arch::Rnn));
    check(LmConfig {
        rnn_sigmoid: true,
        ..config(Arch::Rnn)
    });
}

#[test]
fn stacked_lstm_with_residual_and_tied_embeddings() {
    check(LmConfig {
        layers: 3,
        ..config(Arch::Lstm)
    });
    check(LmConfig {
        layers: 2,
        residual: true,
        ..config(Arch::Gru)
    });
    check(LmConfig {
        layers: 2,
        emb: 5,
        tied: true,
        ..config(Arch::Lstm)
    });
}

#[test]
fn window_lm() {
    check(config(Arch::Window));
    check(LmConfig {
        tied: true,
        emb: 5,
        ..config(Arch::Window)
    });
}

/// The window model predicts the next token from the last `context` tokens up to and including
/// the current one: with context 1 it is a bigram model, so the scores at position t depend on
/// ids[t] alone.
#[test]
fn window_context_includes_the_current_token() {
    let cfg = LmConfig {
        context: 1,
        ..config(Arch::Window)
    };
    let model = LanguageModel::<f64>::new(cfg, &mut Rng::new(3)).unwrap();
    let scores = |ids: &[u32]| {
        let mut m = model.clone();
        let mut s = m.start_state(1, 0);
        m.forward_logits(ids, ids.len(), 1, &mut s, false, &mut Rng::new(0));
        m.logits().to_vec()
    };
    let v = 7;
    let (a, b) = (scores(&[1, 2, 3]), scores(&[4, 5, 3]));
    assert_eq!(a[2 * v..], b[2 * v..], "position 2 sees only token 3");
    assert_ne!(a[v..2 * v], b[v..2 * v], "position 1 sees token 2 or 5");
}

/// `--tied` with an embedding narrower than the hidden layer used to train the window model
/// untied while its saved config said tied; now every architecture refuses it, and a tied model
/// really has no output matrix of its own.
#[test]
fn tied_needs_emb_equal_to_hidden_for_every_arch() {
    for arch in [Arch::Window, Arch::Rnn, Arch::Lstm, Arch::Gru] {
        let cfg = LmConfig {
            tied: true,
            ..config(arch)
        };
        let err = LanguageModel::<f64>::new(cfg, &mut Rng::new(1))
            .err()
            .unwrap_or_else(|| panic!("{arch:?}: emb 4 != hidden 5 must be refused"));
        assert!(
            err.contains("--tied needs --emb equal to --hidden (got 4 and 5)"),
            "{arch:?}: {err}"
        );
        let tied = LanguageModel::<f64>::new(
            LmConfig {
                tied: true,
                emb: 5,
                ..config(arch)
            },
            &mut Rng::new(1),
        )
        .unwrap();
        let untied = LanguageModel::<f64>::new(
            LmConfig {
                emb: 5,
                ..config(arch)
            },
            &mut Rng::new(1),
        )
        .unwrap();
        let names = |m: &LanguageModel<f64>| -> Vec<String> {
            m.params().iter().map(|p| p.name.clone()).collect()
        };
        assert!(!names(&tied).iter().any(|n| n == "out.weight"), "{arch:?}");
        assert!(names(&untied).iter().any(|n| n == "out.weight"), "{arch:?}");
    }
}

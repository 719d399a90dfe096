//! The translator: its whole backward against finite differences (f64) for every attention
//! kind, with and without input feeding, LSTM and GRU, tied embeddings, label smoothing,
//! dropout and a bridge between encoders and decoders of different depths; step-wise
//! decoding against the teacher-forced forward; beam search against exhaustive search.

use firth_models::decode::{length_penalty, log_softmax, BeamConfig};
use firth_models::translate::vocab::{BOS_ID, EOS_ID, PAD_ID};
use firth_models::translate::{AttentionType, PairBatch, Translator, TranslatorConfig};
use firth_nn::gradcheck::check_params;
use firth_nn::{CellKind, Gemm, ParamSet, Rng};

fn config(attention: AttentionType, input_feeding: bool) -> TranslatorConfig {
    TranslatorConfig {
        cell: CellKind::Lstm,
        src_vocab: 7,
        tgt_vocab: 6,
        emb: 3,
        enc_hidden: 2,
        enc_layers: 2,
        dec_hidden: 4,
        dec_layers: 2,
        attention,
        input_feeding,
        dropout: 0.0,
        label_smoothing: 0.1,
        tied: false,
        init_range: 0.5,
    }
}

/// Three pairs of different lengths (sources 4, 1, 3 tokens; targets 2, 0, 3).
fn batch() -> PairBatch {
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = vec![
        (vec![4, 5, 6, 4], vec![4, 5]),
        (vec![6], vec![]),
        (vec![5, 0, 4], vec![5, 5, 4]),
    ];
    let mut b = PairBatch::default();
    b.fill(
        pairs.iter().map(|(s, t)| (&s[..], &t[..])),
        BOS_ID,
        EOS_ID,
        PAD_ID,
    );
    b
}

/// (1/N)·Σ smoothed loss, the quantity train_batch differentiates; dropout masks drawn from
/// the same seed every time.
fn mean_loss(m: &mut Translator<f64>, b: &PairBatch) -> f64 {
    let (_, loss, n) = m.loss(b, true, &mut Rng::new(7));
    loss / n as f64
}

fn check(cfg: TranslatorConfig, what: &str) {
    let mut m = Translator::<f64>::new(cfg, &mut Rng::new(11)).unwrap();
    let b = batch();
    let (worst, at) = check_params(
        &mut m,
        |m| {
            let (_, loss, n) = m.train_batch(&b, &mut Rng::new(7));
            loss / n as f64
        },
        |m| mean_loss(m, &b),
        25,
    );
    assert!(worst < 1e-6, "{what}: worst {worst:e} at {at}");
    // Every parameter group is reached by the gradient (the bridge, attention, combine ...).
    m.zero_grad();
    m.train_batch(&b, &mut Rng::new(7));
    for p in m.params() {
        if p.name.starts_with("src_emb") || p.name.starts_with("tgt_emb") {
            continue;
        }
        assert!(
            p.grad.iter().any(|&g| g != 0.0),
            "{what}: {} has no gradient",
            p.name
        );
    }
}

#[test]
fn every_attention_kind_with_and_without_input_feeding() {
    for attention in [
        AttentionType::None,
        AttentionType::Dot,
        AttentionType::General,
        AttentionType::Additive,
    ] {
        for feeding in [true, false] {
            check(
                config(attention, feeding),
                &format!("{attention:?}, input feeding {feeding}"),
            );
        }
    }
}

#[test]
fn gru_tied_dropout_and_bridges_between_depths() {
    let mut gru = config(AttentionType::General, true);
    gru.cell = CellKind::Gru;
    check(gru, "GRU");
    let mut tied = config(AttentionType::Additive, true);
    tied.emb = 4;
    tied.tied = true;
    check(tied, "tied");
    let mut drop = config(AttentionType::General, true);
    drop.dropout = 0.3;
    check(drop, "dropout");
    let mut plain = config(AttentionType::Dot, true);
    plain.label_smoothing = 0.0;
    check(plain, "no label smoothing");
    for (e, d) in [(1, 3), (3, 1)] {
        let mut c = config(AttentionType::General, true);
        c.enc_layers = e;
        c.dec_layers = d;
        check(c, &format!("{e} encoder / {d} decoder layers"));
    }
}

#[test]
fn tied_needs_matching_widths_and_dot_needs_matching_widths() {
    let mut c = config(AttentionType::General, true);
    c.tied = true;
    let e = Translator::<f32>::new(c, &mut Rng::new(0)).err().unwrap();
    assert!(e.to_string().contains("--tied needs --emb"), "{e}");
    let mut c = config(AttentionType::Dot, true);
    c.dec_hidden = 5;
    let e = Translator::<f32>::new(c, &mut Rng::new(0)).err().unwrap();
    assert!(e.to_string().contains("--attention dot"), "{e}");
}

/// Logits of every real target position: teacher-forced forward vs the inference step fed
/// the same tokens.
fn forced_vs_stepped<T: Gemm>(m: &mut Translator<T>, tol: f64, what: &str) {
    let b = batch();
    let v = m.config.tgt_vocab;
    let hd = m.config.dec_hidden;
    m.forward_body(&b, false, &mut Rng::new(0));
    let top = m.top().to_vec();
    let rows = m.top_rows().to_vec();
    let mut forced = vec![T::ZERO; rows.len() * v];
    firth_nn::linear::affine_forward(
        &top,
        m.out_weight(),
        Some(&m.out_b.value),
        &mut forced,
        hd,
        v,
    );
    let srcs: Vec<Vec<u32>> = (0..b.batch)
        .map(|r| (0..b.src_len[r]).map(|t| b.src[t * b.batch + r]).collect())
        .collect();
    let refs: Vec<&[u32]> = srcs.iter().map(|s| &s[..]).collect();
    let mut st = m.encode_sources(&refs);
    for t in 0..b.tgt_steps {
        let last: Vec<u32> = (0..b.batch).map(|r| b.tgt_in[t * b.batch + r]).collect();
        let z = m.decode_step(&mut st, &last).to_vec();
        for r in 0..b.batch {
            if t >= b.tgt_len[r] {
                continue;
            }
            let k = rows.iter().position(|&x| x == t * b.batch + r).unwrap();
            for j in 0..v {
                let (a, c) = (z[r * v + j].to_f64(), forced[k * v + j].to_f64());
                assert!((a - c).abs() < tol, "{what}: step {t} row {r}: {a} vs {c}");
            }
        }
    }
}

#[test]
fn stepwise_decoding_equals_teacher_forcing() {
    for attention in [
        AttentionType::None,
        AttentionType::Dot,
        AttentionType::General,
        AttentionType::Additive,
    ] {
        for (cell, feeding, tied) in [
            (CellKind::Lstm, true, false),
            (CellKind::Lstm, false, false),
            (CellKind::Gru, true, true),
        ] {
            let mut c = config(attention, feeding);
            c.cell = cell;
            c.dropout = 0.3; // off at inference in both paths
            if tied {
                c.emb = 4;
                c.tied = true;
            }
            let what = format!("{attention:?} {cell:?} feeding {feeding} tied {tied}");
            let mut m = Translator::<f64>::new(c.clone(), &mut Rng::new(3)).unwrap();
            forced_vs_stepped(&mut m, 1e-12, &what);
            let mut m = Translator::<f32>::new(c, &mut Rng::new(3)).unwrap();
            forced_vs_stepped(&mut m, 1e-4, &what);
        }
    }
}

/// Σ log p of `seq` (ending in </s> or not) under the model, one step at a time.
fn score(m: &mut Translator<f32>, src: &[u32], seq: &[u32]) -> f64 {
    let mut st = m.encode_sources(&[src]);
    let mut last = BOS_ID;
    let mut total = 0.0;
    for &w in seq {
        let z = m.decode_step(&mut st, &[last]).to_vec();
        total += log_softmax(&z)[w as usize];
        last = w;
    }
    total
}

#[test]
fn beam_search_returns_the_best_sequence() {
    let max_tokens = 4;
    for seed in 0..4 {
        let mut c = config(AttentionType::General, true);
        c.tgt_vocab = 5;
        c.init_range = 1.5;
        let mut m = Translator::<f32>::new(c, &mut Rng::new(seed)).unwrap();
        let src = [4u32, 6, 5];
        for alpha in [0.0, 0.6] {
            // Every output: up to max_tokens tokens, finished by </s> or cut at the limit.
            let mut all: Vec<(Vec<u32>, f64)> = Vec::new();
            let others: Vec<u32> = (0..5).filter(|&w| w != EOS_ID).collect();
            let mut prefixes: Vec<Vec<u32>> = vec![Vec::new()];
            for len in 0..=max_tokens {
                let mut next = Vec::new();
                for p in &prefixes {
                    if len < max_tokens {
                        let mut fin = p.clone();
                        fin.push(EOS_ID);
                        let lp = score(&mut m, &src, &fin);
                        all.push((fin.clone(), lp / length_penalty(fin.len(), alpha)));
                        for &w in &others {
                            let mut q = p.clone();
                            q.push(w);
                            next.push(q);
                        }
                    } else {
                        let lp = score(&mut m, &src, p);
                        all.push((p.clone(), lp / length_penalty(p.len(), alpha)));
                    }
                }
                prefixes = next;
            }
            all.sort_by(|a, b| b.1.total_cmp(&a.1));
            let cfg = BeamConfig {
                beam: 300,
                max_tokens,
                stop: Some(EOS_ID),
                alpha,
                n_best: 3,
            };
            let hyps = m.beam_with(&src, &cfg);
            for k in 0..3 {
                assert_eq!(hyps[k].tokens, all[k].0, "seed {seed} α {alpha} rank {k}");
                assert!((hyps[k].score - all[k].1).abs() < 1e-4);
            }
            // Width 1 is greedy decoding (up to the same length).
            let one = m.beam_with(
                &src,
                &BeamConfig {
                    beam: 1,
                    n_best: 1,
                    ..cfg
                },
            );
            let mut greedy = m.greedy(&[&src[..]]).remove(0);
            greedy.truncate(max_tokens);
            let mut beam1 = one[0].tokens.clone();
            if beam1.last() == Some(&EOS_ID) {
                beam1.pop();
            }
            assert_eq!(beam1, greedy, "seed {seed}");
        }
    }
}

/// Batched greedy decoding gives each sentence what decoding it alone gives.
#[test]
fn batched_greedy_equals_one_at_a_time() {
    let mut c = config(AttentionType::General, true);
    c.init_range = 1.0;
    let mut m = Translator::<f32>::new(c, &mut Rng::new(5)).unwrap();
    let srcs: Vec<Vec<u32>> = vec![vec![4, 5], vec![6, 6, 6, 5, 4], vec![5], vec![4, 4, 6]];
    let refs: Vec<&[u32]> = srcs.iter().map(|s| &s[..]).collect();
    let all = m.greedy(&refs);
    for (s, o) in srcs.iter().zip(&all) {
        assert_eq!(&m.greedy(&[&s[..]])[0], o);
        assert!(o.len() <= 2 * s.len() + 10);
    }
}

/// The batched beam search gives every sentence exactly what the generic search
/// (`beam_search_with` through `StepDecoder`) gives it alone: the same n-best, with the same
/// scores up to f32 rounding.
#[test]
fn batched_beam_equals_the_generic_search() {
    let mut c = config(AttentionType::Additive, true);
    c.tgt_vocab = 9;
    c.init_range = 1.2;
    let mut m = Translator::<f32>::new(c, &mut Rng::new(9)).unwrap();
    let srcs: Vec<Vec<u32>> = vec![vec![4, 5], vec![6, 6, 6, 5, 4], vec![5], vec![4, 4, 6]];
    let refs: Vec<&[u32]> = srcs.iter().map(|s| &s[..]).collect();
    for (beam, alpha) in [(1, 0.0), (3, 0.6), (5, 1.0)] {
        let limit = |n: usize| n + 3;
        let batched = m.beam_batch(&refs, beam, alpha, 3, &limit);
        for (s, got) in srcs.iter().zip(&batched) {
            let cfg = BeamConfig {
                beam,
                max_tokens: limit(s.len()),
                stop: Some(EOS_ID),
                alpha,
                n_best: 3,
            };
            let want = m.beam_with(s, &cfg);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.tokens, w.tokens, "beam {beam} source {s:?}");
                // Rows batched differently round differently in f32.
                assert!((g.score - w.score).abs() < 1e-4 && (g.log_prob - w.log_prob).abs() < 1e-4);
            }
        }
    }
}

/// A run stopped mid-epoch and resumed ends with the weights of an uninterrupted run, bit for
/// bit (same thread count), through the library pipeline.
#[test]
fn a_resumed_run_ends_with_the_uninterrupted_weights() {
    use firth_models::trainer::Limits;
    use firth_models::translate::{train_translator, TranslateData, TranslateOptions};
    let fixture = |f: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../firth-cli/tests/fixtures/translate")
            .join(f)
    };
    let tmp = |name: &str| {
        let d =
            std::env::temp_dir().join(format!("firth-translate-lib-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    };
    let options = TranslateOptions {
        emb: Some(8),
        hidden: Some(6),
        epochs: Some(3),
        batch_tokens: Some(50),
        min_count: Some(1),
        beam: Some(2),
        seed: 4,
        ..Default::default()
    };
    let data = |out: std::path::PathBuf, resume: bool, max_steps: Option<u64>| TranslateData {
        train_src: fixture("train.de"),
        train_tgt: fixture("train.en"),
        valid_src: Some(fixture("valid.de")),
        valid_tgt: Some(fixture("valid.en")),
        test_src: None,
        test_tgt: None,
        out,
        resume,
        limits: Limits {
            max_steps,
            max_seconds: None,
        },
    };
    let (full_dir, part_dir) = (tmp("full"), tmp("part"));
    let (_, full) =
        train_translator(&data(full_dir.clone(), false, None), &options, &mut ()).unwrap();
    let (s, _) =
        train_translator(&data(part_dir.clone(), false, Some(9)), &options, &mut ()).unwrap();
    assert!(s.stopped_early);
    let (s, resumed) =
        train_translator(&data(part_dir.clone(), true, None), &options, &mut ()).unwrap();
    assert_eq!(s.epochs_completed, 3);
    for (a, b) in full
        .task
        .model
        .params()
        .iter()
        .zip(resumed.task.model.params())
    {
        assert!(a.value == b.value, "{} differs after resuming", a.name);
    }
    assert_eq!(full.progress.history.len(), resumed.progress.history.len());
    for d in [full_dir, part_dir] {
        std::fs::remove_dir_all(d).ok();
    }
}

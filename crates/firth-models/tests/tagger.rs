//! Whole-tagger gradient checks (f64, dropout off), softmax and CRF, with character features;
//! bad-input errors.

use firth_models::tagger::{encode, Batch, Encoded, TagVocab, Tagger, TaggerConfig};
use firth_nn::gradcheck::check_params;
use firth_nn::{CellKind, ParamSet, Rng};
use firth_text::conll::{parse_columns, Scheme};
use std::path::Path;

const TRAIN: &str = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n\nBRUSSELS B-LOC\n";

fn config(vocab: &TagVocab, crf: bool, cell: CellKind) -> TaggerConfig {
    TaggerConfig {
        cell,
        words: vocab.words.len(),
        emb: 3,
        chars: vocab.chars.len(),
        char_dim: 2,
        char_hidden: 2,
        max_word_chars: 5,
        hidden: 3,
        layers: 2,
        dropout: 0.0,
        crf,
        tags: vocab.tags.len(),
        lowercase: true,
        freeze: false,
        init_range: 0.5,
        case_dim: 2,
        word_dropout: 0.0,
        char_dropout: 0.0,
        char_lm_dim: 0,
    }
}

fn setup(crf: bool, cell: CellKind) -> (Tagger<f64>, Vec<Encoded>) {
    let sents = parse_columns(TRAIN, "t", None, true, false).unwrap();
    let vocab = TagVocab::build(&sents, &[], true, Some(Scheme::Bioes)).unwrap();
    let cfg = config(&vocab, crf, cell);
    let data = encode(&sents, &vocab, &cfg, None, Path::new("t")).unwrap();
    (Tagger::new(cfg, &mut Rng::new(4)).unwrap(), data)
}

#[test]
fn gradients_softmax_and_crf() {
    for (crf, cell) in [
        (false, CellKind::Lstm),
        (true, CellKind::Lstm),
        (true, CellKind::Gru),
    ] {
        let (mut model, data) = setup(crf, cell);
        let mut b = Batch::default();
        b.fill(&data, &[0, 1, 2]);
        let loss = |m: &mut Tagger<f64>| m.forward(&b, false, &mut Rng::new(0));
        let (worst, at) = check_params(
            &mut model,
            |m| {
                let l = loss(m);
                m.backward(&b, 1.0);
                l
            },
            loss,
            40,
        );
        assert!(worst < 1e-5, "crf={crf}: worst {worst:e} at {at}");
    }
}

/// The same check with character-LM features (frozen inputs, random here) widening the
/// encoder's input: every element of every parameter is checked, so the input layer's
/// columns that read the features are covered; and the features reach the loss.
#[test]
fn gradients_with_character_lm_features() {
    let sents = parse_columns(TRAIN, "t", None, true, false).unwrap();
    let vocab = TagVocab::build(&sents, &[], true, Some(Scheme::Bioes)).unwrap();
    let cfg = TaggerConfig {
        char_lm_dim: 4,
        ..config(&vocab, true, CellKind::Lstm)
    };
    // Encoding needs the LMs themselves; without them it says so.
    let e = encode(&sents, &vocab, &cfg, None, Path::new("t")).unwrap_err();
    assert!(e.to_string().contains("4 character-LM features"), "{e}");
    let mut data = encode(
        &sents,
        &vocab,
        &config(&vocab, true, CellKind::Lstm),
        None,
        Path::new("t"),
    )
    .unwrap();
    let mut rng = Rng::new(9);
    for s in &mut data {
        s.lm = (0..s.words.len() * 4)
            .map(|_| rng.uniform_f32() - 0.5)
            .collect();
    }
    let mut model = Tagger::<f64>::new(cfg, &mut Rng::new(4)).unwrap();
    let mut b = Batch::default();
    b.fill(&data, &[0, 1, 2]);
    assert_eq!(b.lm.len(), b.rows.len() * 4);
    let loss = |m: &mut Tagger<f64>, b: &Batch| m.forward(b, false, &mut Rng::new(0));
    let (worst, at) = check_params(
        &mut model,
        |m| {
            let l = loss(m, &b);
            m.backward(&b, 1.0);
            l
        },
        |m| loss(m, &b),
        usize::MAX,
    );
    assert!(worst < 1e-5, "worst {worst:e} at {at}");
    let before = loss(&mut model, &b);
    data[1].lm[0] += 1.0;
    b.fill(&data, &[0, 1, 2]);
    assert_ne!(loss(&mut model, &b), before);
}

#[test]
fn learns_the_training_set() {
    let (mut model, data) = setup(true, CellKind::Lstm);
    let mut opt = firth_nn::optim::Optimizer::new(firth_nn::optim::OptimKind::Adam, 0.0);
    let mut b = Batch::default();
    b.fill(&data, &[0, 1, 2]);
    let mut rng = Rng::new(1);
    let first = model.forward(&b, true, &mut rng);
    for _ in 0..200 {
        model.forward(&b, true, &mut rng);
        model.zero_grad();
        model.backward(&b, 1.0);
        opt.step(&mut model.trainable_mut(), 0.05);
    }
    let last = model.forward(&b, false, &mut rng);
    assert!(last < 0.1 * first, "{first} -> {last}");
    let mut pred = Vec::new();
    model.predict(&b, &mut pred);
    let gold: Vec<u32> = b.rows.iter().map(|&r| b.tags[r]).collect();
    assert_eq!(pred, gold);
}

#[test]
fn unknown_tags_and_label_errors() {
    let sents = parse_columns(TRAIN, "t", None, true, false).unwrap();
    let vocab = TagVocab::build(&sents, &[], true, None).unwrap();
    let cfg = config(&vocab, true, CellKind::Lstm);
    let dev = parse_columns("a O\nb B-FOO\n", "dev.txt", None, true, false).unwrap();
    let e = encode(&dev, &vocab, &cfg, None, Path::new("dev.txt")).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("dev.txt:2:") && msg.contains("B-FOO"), "{msg}");
    let pos = parse_columns("a DET\nb NOUN\n", "p", None, true, false).unwrap();
    let e = TagVocab::build(&pos, &[], true, Some(Scheme::Iob2)).unwrap_err();
    assert!(format!("{e}").contains("--scheme"));
}

#[test]
fn capitalisation_classes() {
    use firth_models::tagger::{case_class, CASE_CLASSES};
    let cases = [
        ("rejects", 0),
        ("n't", 0),
        ("German", 1),
        ("McDonald", 1),
        ("I", 1),
        ("EU", 2),
        ("BRUSSELS", 2),
        ("U.S.", 2),
        ("1996-08-22", 3),
        ("F16", 3),
        (".", 4),
        ("--", 4),
        ("iPhone", 4),
    ];
    for (w, c) in cases {
        assert_eq!(case_class(w), c, "{w}");
        assert!((case_class(w) as usize) < CASE_CLASSES);
    }
    let (_, data) = setup(true, CellKind::Lstm);
    // EU rejects German call / Peter Blackburn / BRUSSELS
    assert_eq!(data[0].cases, vec![2, 0, 1, 0]);
    assert_eq!(data[1].cases, vec![1, 1]);
    assert_eq!(data[2].cases, vec![2]);
    let mut b = Batch::default();
    b.fill(&data, &[2, 0]);
    let by_row: Vec<u32> = b.origin.iter().map(|&(i, t)| data[i].cases[t]).collect();
    assert_eq!(b.cases, by_row);
}

#[test]
fn word_dropout_trains_the_unknown_word_row() {
    let (mut model, data) = setup(true, CellKind::Lstm);
    let mut b = Batch::default();
    b.fill(&data, &[0, 1, 2]);
    let e = model.config.emb;
    // p close to 1: (almost) every word reads <unk>, so only row 0 of the table gets gradient.
    model.config.word_dropout = 0.999_999;
    model.zero_grad();
    model.forward(&b, true, &mut Rng::new(3));
    model.backward(&b, 1.0);
    let g = &model.word_emb.weight.grad;
    assert!(g[..e].iter().any(|&v| v != 0.0));
    assert!(g[e..].iter().all(|&v| v == 0.0));
    // Off (and never at evaluation): row 0 gets nothing, the sentences' words do.
    model.config.word_dropout = 0.0;
    model.zero_grad();
    model.forward(&b, true, &mut Rng::new(3));
    model.backward(&b, 1.0);
    let g = &model.word_emb.weight.grad;
    assert!(g[..e].iter().all(|&v| v == 0.0));
    assert!(g[e..].iter().any(|&v| v != 0.0));
}

#[test]
fn the_output_layer_on_the_hidden_states_gives_the_predicted_tags() {
    use firth_models::tagger::{hidden_states, predict_all};
    let sents = parse_columns(TRAIN, "t", None, true, false).unwrap();
    let vocab = TagVocab::build(&sents, &[], true, Some(Scheme::Bioes)).unwrap();
    let cfg = config(&vocab, false, CellKind::Lstm);
    let data = encode(&sents, &vocab, &cfg, None, Path::new("t")).unwrap();
    let mut model = Tagger::<f32>::new(cfg, &mut Rng::new(9)).unwrap();
    let d = 2 * model.config.hidden;
    let k = model.config.tags;
    let hs = hidden_states(&mut model, &data, 2);
    // One (tokens, 2 x hidden) block per sentence, whatever the batch.
    assert_eq!(hs.len(), data.len());
    for (h, s) in hs.iter().zip(&data) {
        assert_eq!(h.len(), s.words.len() * d);
    }
    assert_eq!(hidden_states(&mut model, &data[1..2], 1)[0], hs[1]);
    // argmax(W h + b) at every token is the tag predict gives (softmax output, no CRF).
    let tags = predict_all(&mut model, &vocab, &data, None, 3);
    let (w, b) = (
        &model.out.weight.value,
        &model.out.bias.as_ref().unwrap().value,
    );
    for (h, want) in hs.iter().zip(&tags) {
        for (row, want) in h.chunks_exact(d).zip(want) {
            let z: Vec<f64> = (0..k)
                .map(|c| {
                    b[c] as f64
                        + (0..d)
                            .map(|j| w[c * d + j] as f64 * row[j] as f64)
                            .sum::<f64>()
                })
                .collect();
            let best = (0..k).fold(0, |a, c| if z[c] > z[a] { c } else { a });
            assert_eq!(&vocab.tags[best], want);
        }
    }
}

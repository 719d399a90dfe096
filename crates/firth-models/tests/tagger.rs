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
    }
}

fn setup(crf: bool, cell: CellKind) -> (Tagger<f64>, Vec<Encoded>) {
    let sents = parse_columns(TRAIN, "t", None, true, false).unwrap();
    let vocab = TagVocab::build(&sents, &[], true, Some(Scheme::Bioes)).unwrap();
    let cfg = config(&vocab, crf, cell);
    let data = encode(&sents, &vocab, &cfg, Path::new("t")).unwrap();
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
    let e = encode(&dev, &vocab, &cfg, Path::new("dev.txt")).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("dev.txt:2:") && msg.contains("B-FOO"), "{msg}");
    let pos = parse_columns("a DET\nb NOUN\n", "p", None, true, false).unwrap();
    let e = TagVocab::build(&pos, &[], true, Some(Scheme::Iob2)).unwrap_err();
    assert!(format!("{e}").contains("--scheme"));
}

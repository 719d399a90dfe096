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
        static_channel: false,
        document_vote: false,
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
    let tags = predict_all(&mut model, &vocab, &sents, &data, None, 3);
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

/// A tagger's trained parameters, as the optimizer sees them: the gradient check of a model
/// with a static channel compares these (the static table is frozen, so its analytic gradient
/// is zero by design).
struct Trainable(Tagger<f64>);

impl ParamSet<f64> for Trainable {
    fn params(&self) -> Vec<&firth_nn::Param<f64>> {
        // All but the static table, which the tagger's ParamSet lists last: trainable_mut's order.
        let mut v = self.0.params();
        v.pop();
        v
    }
    fn params_mut(&mut self) -> Vec<&mut firth_nn::Param<f64>> {
        self.0.trainable_mut()
    }
}

/// With the static channel (`--multichannel`) the encoder reads [E[w] ; S[w] ; chars ; case]:
/// every trained parameter's gradient matches finite differences (softmax and CRF, the second
/// with dropout and word dropout on, so a dropped word reads `<unk>` in both tables), S gets
/// no gradient but reaches the loss, and S is saved but not trained.
#[test]
fn static_channel_gradients_and_frozen_copy() {
    let sents = parse_columns(TRAIN, "t", None, true, false).unwrap();
    let vocab = TagVocab::build(&sents, &[], true, Some(Scheme::Bioes)).unwrap();
    for (crf, dropout) in [(false, 0.0), (true, 0.3)] {
        let cfg = TaggerConfig {
            static_channel: true,
            dropout,
            word_dropout: dropout,
            ..config(&vocab, crf, CellKind::Lstm)
        };
        assert_eq!(cfg.input_dim(), 3 + 3 + 2 * 2 + 2);
        let data = encode(&sents, &vocab, &cfg, None, Path::new("t")).unwrap();
        let mut b = Batch::default();
        b.fill(&data, &[0, 1, 2]);
        let mut t = Trainable(Tagger::<f64>::new(cfg, &mut Rng::new(4)).unwrap());
        let train = dropout > 0.0;
        let loss = |t: &mut Trainable| t.0.forward(&b, train, &mut Rng::new(1));
        let (worst, at) = check_params(
            &mut t,
            |t| {
                let l = loss(t);
                t.0.backward(&b, 1.0);
                l
            },
            loss,
            usize::MAX,
        );
        assert!(worst < 1e-5, "crf={crf}: worst {worst:e} at {at}");
        let m = &mut t.0;
        let s = m.static_emb.as_ref().unwrap();
        assert!(s.weight.grad.iter().all(|&g| g == 0.0));
        let names: Vec<String> = m.params().iter().map(|p| p.name.clone()).collect();
        assert_eq!(names.last().unwrap(), "static_emb.weight");
        assert_eq!(m.trainable_mut().len(), names.len() - 1);
        let before = m.forward(&b, false, &mut Rng::new(0));
        let row = data[0].words[1] as usize;
        m.static_emb.as_mut().unwrap().weight.value[row * 3 + 1] += 0.5;
        assert_ne!(
            m.forward(&b, false, &mut Rng::new(0)),
            before,
            "S reaches the loss"
        );
    }
    // Without the channel nothing is drawn for it: the weights are those of a model built
    // before the field existed (with it, the encoder's input matrix is wider, so the layers
    // drawn after the embeddings differ). With --freeze it is refused.
    let plain = Tagger::<f64>::new(config(&vocab, true, CellKind::Lstm), &mut Rng::new(4)).unwrap();
    let with = Tagger::<f64>::new(
        TaggerConfig {
            static_channel: true,
            ..config(&vocab, true, CellKind::Lstm)
        },
        &mut Rng::new(4),
    )
    .unwrap();
    assert!(plain.static_emb.is_none());
    assert_eq!(plain.word_emb.weight.value, with.word_emb.weight.value);
    assert_eq!(
        plain.char_emb.as_ref().unwrap().weight.value,
        with.char_emb.as_ref().unwrap().weight.value
    );
    let frozen = TaggerConfig {
        static_channel: true,
        freeze: true,
        ..config(&vocab, true, CellKind::Lstm)
    };
    assert!(Tagger::<f64>::new(frozen, &mut Rng::new(4)).is_err());
}

/// `multichannel` through `train_tagger`: it is refused without vectors; the saved model's
/// static table holds the pretrained vectors exactly, for a training word and for a word met
/// only in the test file, while the trained table's training rows have moved; the loaded
/// model scores the test file as training reported; a config saved before the field existed
/// reads with it off.
#[test]
fn multichannel_keeps_the_pretrained_vectors_frozen_beside_the_trained_ones() {
    use firth_models::tagger::{train_tagger, TagData, TaggerOptions};
    let dir = std::env::temp_dir().join(format!("firth-tag-mc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let train = dir.join("train.txt");
    std::fs::write(&train, TRAIN.repeat(4)).unwrap();
    let test = dir.join("test.txt");
    std::fs::write(&test, "Paris B-LOC\nrejects O\n\nEU B-ORG\ncall O\n").unwrap();
    let vectors = dir.join("v.txt");
    std::fs::write(
        &vectors,
        "4 3\nrejects 1 0 0\ncall 0 1 0\nparis 0 0 1\neu 0.5 0.5 0\n",
    )
    .unwrap();
    let data = |embeddings: Option<std::path::PathBuf>| TagData {
        train: train.clone(),
        dev: Some(train.clone()),
        test: Some(test.clone()),
        columns: None,
        embeddings,
        char_lm: None,
        out: dir.join("m"),
        resume: false,
        limits: Default::default(),
    };
    let options = TaggerOptions {
        hidden: Some(4),
        char_dim: Some(2),
        char_hidden: Some(2),
        epochs: Some(3),
        lr: Some(0.01),
        multichannel: true,
        ..Default::default()
    };
    let Err(e) = train_tagger(&data(None), &options, &mut ()) else {
        panic!("--multichannel without vectors was accepted")
    };
    assert!(e.to_string().contains("--embeddings"), "{e}");
    let (summary, _) = train_tagger(&data(Some(vectors)), &options, &mut ()).unwrap();
    let (mut model, vocab) = Tagger::load(&dir.join("m")).unwrap();
    let row = |t: &[f32], w: &str| {
        let i = vocab.words.iter().position(|v| v == w).unwrap();
        t[i * 3..(i + 1) * 3].to_vec()
    };
    let fixed = &model.static_emb.as_ref().unwrap().weight.value;
    assert_eq!(row(fixed, "rejects"), [1.0, 0.0, 0.0]);
    assert_eq!(row(fixed, "paris"), [0.0, 0.0, 1.0]);
    assert_ne!(
        row(&model.word_emb.weight.value, "rejects"),
        [1.0, 0.0, 0.0]
    );
    assert_eq!(row(&model.word_emb.weight.value, "paris"), [0.0, 0.0, 1.0]);
    let gold = parse_columns(
        &std::fs::read_to_string(&test).unwrap(),
        "test",
        None,
        true,
        false,
    )
    .unwrap();
    let enc = encode(
        &firth_models::tagger::pipeline::strip_tags(&gold),
        &vocab,
        &model.config,
        None,
        &test,
    )
    .unwrap();
    let scores = firth_models::tagger::evaluate(&mut model, &vocab, &gold, &enc, 8);
    assert_eq!(Some(scores.accuracy), summary.test_accuracy);
    let mut j = serde_json::to_value(&model.config).unwrap();
    // Configs saved before these fields existed read as off.
    for field in ["static_channel", "document_vote"] {
        j.as_object_mut().unwrap().remove(field).unwrap();
    }
    let old: TaggerConfig = serde_json::from_value(j).unwrap();
    assert_eq!(
        old,
        TaggerConfig {
            static_channel: false,
            document_vote: false,
            ..model.config.clone()
        }
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_model_with_document_vote_predicts_the_vote_on_its_plain_predictions() {
    use firth_models::tagger::predict_all;
    use firth_text::conll::document_vote;
    // EU in three contexts of one document and once in the next: an untrained model's types
    // for it differ between mentions for some initialisations, which the vote then settles.
    let text = "-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nthe O\nEU B-ORG\nsaid O\n\nPeter B-PER\nEU B-ORG\n\nEU B-ORG\ncall O\n\n-DOCSTART- O\n\nEU B-LOC\nBonn B-LOC\n";
    let sents = parse_columns(text, "t", None, true, false).unwrap();
    assert_eq!(
        sents.iter().map(|s| s.doc).collect::<Vec<_>>(),
        [0, 0, 0, 0, 1]
    );
    let vocab = TagVocab::build(&sents, &[], true, Some(Scheme::Bioes)).unwrap();
    let cfg = config(&vocab, true, CellKind::Lstm);
    let data = encode(&sents, &vocab, &cfg, None, Path::new("t")).unwrap();
    let mut voted_somewhere = false;
    for seed in 0..40 {
        let mut model = Tagger::<f32>::new(cfg.clone(), &mut Rng::new(seed)).unwrap();
        let mut want = predict_all(&mut model, &vocab, &sents, &data, None, 2);
        let changed = document_vote(&sents, &mut want, Scheme::Bioes);
        model.config.document_vote = true;
        assert_eq!(
            predict_all(&mut model, &vocab, &sents, &data, None, 2),
            want
        );
        voted_somewhere |= changed > 0;
    }
    assert!(voted_somewhere, "no initialisation gave EU two types");
}

#[test]
fn document_vote_on_tags_that_are_not_spans_is_refused_before_training() {
    use firth_models::tagger::{train_tagger, TagData, TaggerOptions};
    let dir = std::env::temp_dir().join(format!("firth-tag-vote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let train = dir.join("pos.txt");
    std::fs::write(&train, "EU NNP\nrejects VBZ\n\nPeter NNP\n").unwrap();
    let data = TagData {
        train: train.clone(),
        dev: None,
        test: None,
        columns: None,
        embeddings: None,
        char_lm: None,
        out: dir.join("m"),
        resume: false,
        limits: Default::default(),
    };
    let options = TaggerOptions {
        document_vote: true,
        ..Default::default()
    };
    let Err(e) = train_tagger(&data, &options, &mut ()) else {
        panic!("--document-vote on POS tags was accepted")
    };
    let e = format!("{e:#}");
    assert!(
        e.contains("--document-vote") && e.contains("pos.txt"),
        "{e}"
    );
    assert!(!dir.join("m").exists(), "a refused run wrote its output");
    std::fs::remove_dir_all(&dir).ok();
}

//! Decoding: beam search against exhaustive search, and the sets samplers may draw from.

use firth_models::decode::{allowed, beam_search, choose, generate, log_softmax, prime, Strategy};
use firth_models::lm::{Arch, LanguageModel, LmConfig};
use firth_nn::Rng;
use firth_text::Level;

fn tiny_model(seed: u64) -> LanguageModel<f32> {
    let cfg = LmConfig {
        emb: 3,
        context: 2,
        init_range: 1.5,
        ..LmConfig::new(Arch::Lstm, Level::Word, 4, 5)
    };
    LanguageModel::new(cfg, &mut Rng::new(seed)).unwrap()
}

/// log p(seq | prompt) by scoring the whole sequence in one pass.
fn score(model: &mut LanguageModel<f32>, prompt: &[u32], seq: &[u32]) -> f64 {
    let (mut state, z) = prime(model, prompt, 0);
    let mut total = log_softmax(&z)[seq[0] as usize];
    for w in seq.windows(2) {
        model.forward_logits(&[w[0]], 1, 1, &mut state, false, &mut Rng::new(0));
        total += log_softmax(model.logits())[w[1] as usize];
    }
    total
}

#[test]
fn beam_search_finds_the_most_probable_sequence() {
    for seed in 0..5 {
        let mut m = tiny_model(seed);
        let prompt = [1, 2];
        let len = 4;
        // Exhaustive: all 4^4 sequences.
        let mut best = (Vec::new(), f64::NEG_INFINITY);
        for code in 0..4u32.pow(len) {
            let seq: Vec<u32> = (0..len).map(|i| (code / 4u32.pow(i)) % 4).collect();
            let s = score(&mut m, &prompt, &seq);
            if s > best.1 {
                best = (seq, s);
            }
        }
        // A beam as wide as the number of prefixes is exact.
        let beams = beam_search(&mut m, &prompt, 0, 64, len as usize, None);
        assert_eq!(beams[0].0, best.0, "seed {seed}");
        assert!(
            (beams[0].1 - best.1).abs() < 1e-4,
            "{} vs {}",
            beams[0].1,
            best.1
        );
        // Width 1 is greedy decoding.
        let greedy = generate(
            &mut m,
            &prompt,
            0,
            len as usize,
            Strategy::Greedy,
            None,
            &mut Rng::new(0),
        );
        assert_eq!(
            beam_search(&mut m, &prompt, 0, 1, len as usize, None)[0].0,
            greedy
        );
        // Scores are ordered.
        assert!(beams.windows(2).all(|w| w[0].1 >= w[1].1));
    }
}

#[test]
fn top_k_and_top_p_sample_only_from_the_allowed_set() {
    let z = [2.0f32, 1.0, 0.5, 3.0, -1.0, 0.0];
    let k2 = allowed(&z, 1.0, 2, 1.0);
    assert_eq!(k2.iter().map(|p| p.0).collect::<Vec<_>>(), vec![3, 0]);
    assert!((k2.iter().map(|p| p.1).sum::<f64>() - 1.0).abs() < 1e-12);
    // Probabilities: softmax(z) ≈ [.2309, .0849, .0515, .6276, .0115, .0312]
    // top-p 0.8 keeps tokens 3 and 0 (0.858), top-p 0.5 keeps token 3 alone.
    assert_eq!(allowed(&z, 1.0, 0, 0.8).len(), 2);
    assert_eq!(
        allowed(&z, 1.0, 0, 0.5)
            .iter()
            .map(|p| p.0)
            .collect::<Vec<_>>(),
        vec![3]
    );
    let mut rng = Rng::new(5);
    let strat = Strategy::Sample {
        temperature: 1.3,
        top_k: 3,
        top_p: 0.9,
    };
    let set: Vec<u32> = allowed(&z, 1.3, 3, 0.9).iter().map(|p| p.0).collect();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5000 {
        let t = choose(&z, strat, &mut rng);
        assert!(set.contains(&t), "sampled {t} outside {set:?}");
        seen.insert(t);
    }
    assert_eq!(seen.len(), set.len());
    // Low temperature approaches greedy.
    let cold = allowed(&z, 0.01, 0, 1.0);
    assert!(cold[0].0 == 3 && cold[0].1 > 0.999);
}

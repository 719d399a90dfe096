//! CTC decoding: greedy by hand, prefix beam search against exhaustive search over every
//! alignment (with and without a fused language model), and the n-gram scorer.

use firth_models::speech::decode::{
    greedy, item_rows, log_softmax_rows, prefix_beam_search, BeamConfig, NgramScorer, NoLm, Units,
    WordScorer,
};
use std::collections::HashMap;

fn word_units() -> Units {
    // Blank 0, then three words.
    Units::words(
        ["_", "a", "b", "c"].iter().map(|s| s.to_string()).collect(),
        0,
    )
}

/// Pseudo-random log-softmax rows (T, V) with no ties.
fn scores(t_n: usize, v: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut x: Vec<f32> = (0..t_n * v)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f64 / (1u64 << 31) as f64 * 4.0 - 2.0) as f32
        })
        .collect();
    log_softmax_rows(&mut x, v);
    x
}

/// Every path of T frames over V units, collapsed; the probability of each label sequence.
fn exhaustive(lp: &[f32], v: usize, blank: u32) -> HashMap<Vec<u32>, f64> {
    let t_n = lp.len() / v;
    let mut out: HashMap<Vec<u32>, f64> = HashMap::new();
    for code in 0..v.pow(t_n as u32) {
        let (mut c, mut logp, mut path) = (code, 0.0f64, Vec::new());
        for t in 0..t_n {
            let k = c % v;
            c /= v;
            logp += lp[t * v + k] as f64;
            path.push(k as u32);
        }
        let mut labels = Vec::new();
        let mut prev = None;
        for &k in &path {
            if Some(k) != prev && k != blank {
                labels.push(k);
            }
            prev = Some(k);
        }
        *out.entry(labels).or_insert(0.0) += logp.exp();
    }
    out
}

#[test]
fn greedy_by_hand() {
    // Frames' best units: a a _ a b b _ _ c → "a a b c".
    let best = [1, 1, 0, 1, 2, 2, 0, 0, 3];
    let mut lp = vec![-5.0f32; best.len() * 4];
    for (t, &k) in best.iter().enumerate() {
        lp[t * 4 + k] = -0.1;
    }
    let labels = greedy(&lp, 4, 0);
    assert_eq!(labels, vec![1, 1, 2, 3]);
    assert_eq!(word_units().transcript(&labels), "a a b c");
    assert!(greedy(&lp[..8], 4, 0) == vec![1]);
    assert!(greedy(&[], 4, 0).is_empty());
}

#[test]
fn beam_without_lm_equals_exhaustive_search() {
    let units = word_units();
    for (t_n, seed) in [(4, 1), (5, 2), (5, 3), (5, 4)] {
        let lp = scores(t_n, 4, seed);
        let all = exhaustive(&lp, 4, 0);
        let (best, p) = all
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, &p)| (k.clone(), p))
            .unwrap();
        let cfg = BeamConfig {
            width: 1000,
            ..BeamConfig::default()
        };
        let hyps = prefix_beam_search::<NoLm>(&lp, &units, &cfg, None);
        assert_eq!(hyps[0].labels, best, "T {t_n} seed {seed}");
        assert!(
            (hyps[0].ctc - p.ln()).abs() < 1e-4,
            "{} vs {}",
            hyps[0].ctc,
            p.ln()
        );
        assert_eq!(hyps[0].score, hyps[0].ctc);
        // The whole final beam carries exact probabilities.
        for h in &hyps {
            assert!((h.ctc - all[&h.labels].ln()).abs() < 1e-4);
        }
        // A narrow beam still returns something sensible, at most `width` of them.
        let narrow = prefix_beam_search::<NoLm>(
            &lp,
            &units,
            &BeamConfig {
                width: 2,
                ..BeamConfig::default()
            },
            None,
        );
        assert!(narrow.len() <= 2 && !narrow.is_empty());
    }
}

/// A bigram model over a, b, c with made-up probabilities; state = previous word.
struct Bigram;

impl Bigram {
    fn p(prev: &str, w: &str) -> f64 {
        let table = [
            ("<s>", [0.6, 0.3, 0.05, 0.05]),
            ("a", [0.1, 0.6, 0.2, 0.1]),
            ("b", [0.3, 0.1, 0.1, 0.5]),
            ("c", [0.2, 0.2, 0.2, 0.4]),
        ];
        let row = table.iter().find(|r| r.0 == prev).unwrap().1;
        let i = ["a", "b", "c", "</s>"]
            .iter()
            .position(|x| *x == w)
            .unwrap();
        row[i]
    }
}

impl WordScorer for Bigram {
    type State = String;
    fn start(&self) -> String {
        "<s>".into()
    }
    fn score(&self, s: &String, w: &str) -> (f64, String) {
        (Bigram::p(s, w).ln(), w.to_string())
    }
    fn finish(&self, s: &String) -> f64 {
        Bigram::p(s, "</s>").ln()
    }
}

#[test]
fn fused_beam_equals_exhaustive_fused_search() {
    let units = word_units();
    let (alpha, beta) = (0.8, 0.3);
    let mut lm_changed_the_winner = 0;
    for seed in [5, 6, 7, 8, 9] {
        let lp = scores(5, 4, seed);
        let all = exhaustive(&lp, 4, 0);
        let fused = |labels: &[u32]| {
            let words = units.words_of(labels);
            let mut prev = "<s>".to_string();
            let mut s = 0.0;
            for w in &words {
                s += alpha * Bigram::p(&prev, w).ln() + beta;
                prev = w.clone();
            }
            s + alpha * Bigram::p(&prev, "</s>").ln()
        };
        let (best, best_score) = all
            .iter()
            .map(|(k, &p)| (k.clone(), p.ln() + fused(k)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let cfg = BeamConfig {
            width: 1000,
            lm_weight: alpha,
            word_bonus: beta,
            end_of_sentence: true,
            ..BeamConfig::default()
        };
        let hyps = prefix_beam_search(&lp, &units, &cfg, Some(&Bigram));
        assert_eq!(hyps[0].labels, best, "seed {seed}");
        assert!((hyps[0].score - best_score).abs() < 1e-4);
        assert!((hyps[0].lm - fused(&best)).abs() < 1e-9);
        let plain = all.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        lm_changed_the_winner += (plain != &best) as usize;
    }
    // The cases are not ones where the language model is irrelevant.
    assert!(lm_changed_the_winner > 0);
}

#[test]
fn character_units_fuse_at_spaces_and_at_the_end() {
    // Units: blank, a, b, space. Words are runs of a/b; the scorer likes "ab".
    struct LikesAb;
    impl WordScorer for LikesAb {
        type State = usize;
        fn start(&self) -> usize {
            0
        }
        fn score(&self, n: &usize, w: &str) -> (f64, usize) {
            (if w == "ab" { -0.1 } else { -3.0 }, n + 1)
        }
        fn finish(&self, n: &usize) -> f64 {
            -(*n as f64)
        }
    }
    let units = Units::chars(
        ["_", "a", "b", " "].iter().map(|s| s.to_string()).collect(),
        0,
        3,
    );
    assert_eq!(units.transcript(&[3, 1, 2, 3, 3, 2, 3]), "ab b");
    let lp = scores(5, 4, 11);
    let all = exhaustive(&lp, 4, 0);
    let fused = |labels: &[u32]| {
        let words = units.words_of(labels);
        words
            .iter()
            .map(|w| if w == "ab" { -0.1 } else { -3.0 })
            .sum::<f64>()
            - words.len() as f64
    };
    let (best, _) = all
        .iter()
        .map(|(k, &p)| (k.clone(), p.ln() + fused(k)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    let cfg = BeamConfig {
        width: 1000,
        lm_weight: 1.0,
        word_bonus: 0.0,
        ..BeamConfig::default()
    };
    let hyps = prefix_beam_search(&lp, &units, &cfg, Some(&LikesAb));
    assert_eq!(hyps[0].labels, best);
    for h in &hyps {
        assert!((h.lm - fused(&h.labels)).abs() < 1e-9, "{:?}", h.labels);
    }
}

#[test]
fn batch_rows_are_gathered() {
    // (T=2, B=2, V=2): item 1's rows are elements 2,3 and 6,7.
    let x: Vec<f32> = (0..8).map(|i| i as f32).collect();
    assert_eq!(item_rows(&x, 2, 2, 1, 2), vec![2.0, 3.0, 6.0, 7.0]);
    assert_eq!(item_rows(&x, 2, 2, 0, 1), vec![0.0, 1.0]);
}

#[test]
fn ngram_scorer_reads_log10_as_ln() {
    let arpa = "\\data\\\nngram 1=5\nngram 2=3\n\n\\1-grams:\n-1.0\t<unk>\t0\n-99\t<s>\t-0.5\n\
                -0.6\t</s>\t0\n-0.4\t1\t-0.3\n-0.5\t2\t-0.2\n\n\\2-grams:\n-0.2\t<s> 1\n\
                -0.1\t1 2\n-0.3\t2 </s>\n\n\\end\\\n";
    let dir = std::env::temp_dir().join(format!("firth-speech-lm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("digits.arpa");
    std::fs::write(&path, arpa).unwrap();
    let model = firth_ngram::arpa::read_arpa(&path).unwrap();
    let lm = NgramScorer { model: &model };
    let ln10 = std::f64::consts::LN_10;
    let s0 = lm.start();
    let (p1, s1) = lm.score(&s0, "1");
    assert!((p1 - -0.2 * ln10).abs() < 1e-6, "{p1}");
    let (p2, s2) = lm.score(&s1, "2");
    assert!((p2 - -0.1 * ln10).abs() < 1e-6, "{p2}");
    assert!((lm.finish(&s2) - -0.3 * ln10).abs() < 1e-6);
    // Backed off: p(2 | <s>) = bo(<s>) + p(2) = -1.0; p(1 | 2) = bo(2) + p(1) = -0.6.
    let (q, _) = lm.score(&s0, "2");
    assert!((q - -ln10).abs() < 1e-6, "{q}");
    let (q, _) = lm.score(&s2, "1");
    assert!((q - -0.6 * ln10).abs() < 1e-6, "{q}");
    // Out of vocabulary: <unk> after <s>, backed off: -0.5 + -1.0.
    let (q, _) = lm.score(&s0, "seven");
    assert!((q - -1.5 * ln10).abs() < 1e-6, "{q}");
    std::fs::remove_dir_all(&dir).unwrap();
}

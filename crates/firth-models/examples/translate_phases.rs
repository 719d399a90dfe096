//! Times the phases of one translator training step (body forward, output layer, body
//! backward, Adam) on random batches with the Multi30k preset's shapes, on one thread.
//!
//! cargo run --release -p firth-models --example translate_phases -- [SENTENCES] [LENGTH]

use firth_models::translate::vocab::{BOS_ID, EOS_ID, PAD_ID};
use firth_models::translate::{AttentionType, PairBatch, Translator, TranslatorConfig};
use firth_nn::optim::{OptimKind, Optimizer};
use firth_nn::{CellKind, ParamSet, Rng};
use std::time::Instant;

fn main() {
    firth_nn::par::set_global_threads(1).unwrap();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (sents, len) = (
        args.first().copied().unwrap_or(85),
        args.get(1).copied().unwrap_or(13),
    );
    let cfg = TranslatorConfig {
        cell: CellKind::Lstm,
        src_vocab: 7859,
        tgt_vocab: 5921,
        emb: 256,
        enc_hidden: 256,
        enc_layers: 1,
        dec_hidden: 512,
        dec_layers: 1,
        attention: AttentionType::General,
        input_feeding: true,
        dropout: 0.3,
        label_smoothing: 0.1,
        tied: false,
        init_range: 0.1,
    };
    let mut rng = Rng::new(1);
    let mut m = Translator::<f32>::new(cfg, &mut rng).unwrap();
    let mut opt = Optimizer::new(OptimKind::Adam, 0.0);
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = (0..sents)
        .map(|_| {
            let s = (0..len).map(|_| 4 + rng.below(7000) as u32).collect();
            let t = (0..len - 1).map(|_| 4 + rng.below(5000) as u32).collect();
            (s, t)
        })
        .collect();
    let mut b = PairBatch::default();
    b.fill(
        pairs.iter().map(|(s, t)| (&s[..], &t[..])),
        BOS_ID,
        EOS_ID,
        PAD_ID,
    );
    let mut times = [0.0f64; 4];
    let reps = 10;
    let mut d_top = Vec::new();
    for rep in 0..reps + 2 {
        m.zero_grad();
        let t0 = Instant::now();
        m.forward_body(&b, true, &mut rng);
        let t1 = Instant::now();
        let top = m.top().to_vec();
        let targets: Vec<u32> = m.top_rows().iter().map(|&r| b.tgt_out[r]).collect();
        let t1b = Instant::now();
        m.output_step(&top, &targets, 1.0 / targets.len() as f64, true, &mut d_top);
        let t2 = Instant::now();
        m.backward_body(&b, &d_top);
        let t3 = Instant::now();
        opt.step(&mut m.params_mut(), 1e-3);
        let t4 = Instant::now();
        if rep >= 2 {
            times[0] += (t1 - t0).as_secs_f64();
            times[1] += (t2 - t1b).as_secs_f64();
            times[2] += (t3 - t2).as_secs_f64();
            times[3] += (t4 - t3).as_secs_f64();
        }
    }
    let tokens = b.tokens() as f64;
    let total: f64 = times.iter().sum();
    for (name, t) in ["body forward", "output layer", "body backward", "adam"]
        .iter()
        .zip(times)
    {
        println!(
            "{name:>14}: {:7.2} ms  {:5.1}%",
            1e3 * t / reps as f64,
            100.0 * t / total
        );
    }
    println!(
        "{:.0} target tokens/s (one thread, {sents} x {len})",
        tokens * reps as f64 / total
    );
}

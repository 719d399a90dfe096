//! Features pinned to python_speech_features' output on a clip of FSDD (tests/fixtures; the
//! script that made the fixture is there too). Every value must agree within 1e-4.

use firth_audio::features::{FeatureConfig, FeatureExtractor, FeatureKind, Normalize, Window};
use firth_audio::read_wav;
use serde_json::Value;
use std::path::Path;

fn fixture() -> Value {
    let text = include_str!("fixtures/psf_features.json");
    serde_json::from_str(text).expect("fixture is JSON")
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn clip() -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip.wav");
    let (audio, info) = read_wav(&path).unwrap();
    assert_eq!((info.rate, info.channels, info.bits), (8000, 1, 16));
    audio.samples
}

/// The settings that reproduce the fixture's `common` arguments: 8 kHz, 25/10 ms, 26 bands,
/// a 256-point FFT (the frame is 200 samples), pre-emphasis 0.97.
fn psf() -> FeatureConfig {
    FeatureConfig {
        n_fft: Some(256),
        ..FeatureConfig::python_speech_features(8000)
    }
}

fn assert_close(name: &str, got: &firth_audio::Features, want: &[Vec<f64>]) {
    assert_eq!(got.frames, want.len(), "{name}: frames");
    let mut worst: f64 = 0.0;
    for (t, row) in want.iter().enumerate() {
        assert_eq!(got.dim, row.len(), "{name}: dim");
        for (d, &w) in row.iter().enumerate() {
            worst = worst.max((got.frame(t)[d] as f64 - w).abs());
        }
    }
    assert!(worst < 1e-4, "{name}: worst difference {worst:e}");
}

#[test]
fn samples_read_as_the_reference_scaled_them() {
    let want: Vec<f64> = fixture()["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let got = clip();
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(&want).all(|(&g, &w)| g as f64 == w));
}

#[test]
fn logfbank_matches() {
    let f = FeatureExtractor::new(FeatureConfig {
        kind: FeatureKind::LogMel,
        ..psf()
    })
    .unwrap()
    .extract(&clip());
    assert_close("logfbank", &f, &matrix(&fixture()["logfbank"]));
}

#[test]
fn mfcc_with_lifter_and_energy_matches() {
    let f = FeatureExtractor::new(psf()).unwrap().extract(&clip());
    assert_close("mfcc", &f, &matrix(&fixture()["mfcc"]));
}

#[test]
fn mfcc_with_hamming_and_a_band_matches() {
    let f = FeatureExtractor::new(FeatureConfig {
        window: Window::Hamming,
        mel_bands: 20,
        low_hz: 300.0,
        high_hz: Some(3800.0),
        lifter: 0.0,
        energy: false,
        ..psf()
    })
    .unwrap()
    .extract(&clip());
    assert_close(
        "mfcc_hamming_band",
        &f,
        &matrix(&fixture()["mfcc_hamming_band"]),
    );
}

#[test]
fn deltas_match() {
    let fx = fixture();
    let f = FeatureExtractor::new(FeatureConfig {
        deltas: 2,
        delta_window: 2,
        ..psf()
    })
    .unwrap()
    .extract(&clip());
    assert_eq!(f.dim, 39);
    let (c, d, dd) = (
        matrix(&fx["mfcc"]),
        matrix(&fx["mfcc_delta"]),
        matrix(&fx["mfcc_delta_delta"]),
    );
    let joined: Vec<Vec<f64>> = (0..c.len())
        .map(|t| [c[t].clone(), d[t].clone(), dd[t].clone()].concat())
        .collect();
    assert_close("mfcc + deltas", &f, &joined);
    // Normalisation on top changes the numbers but not the frame count.
    let n = FeatureExtractor::new(FeatureConfig {
        deltas: 2,
        normalize: Normalize::Utterance,
        ..psf()
    })
    .unwrap()
    .extract(&clip());
    assert_eq!((n.frames, n.dim), (f.frames, f.dim));
}

//! The WAVs the issue lists: read correctly (stereo, 44.1 kHz, 8-bit) or refused with a
//! message naming the file (not RIFF, truncated, empty); never a panic.

use firth_audio::wav::write_wav16;
use firth_audio::{load_mono, read_wav};
use std::path::{Path, PathBuf};

fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("firth-audio-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, channels: u16, rate: u32, bits: u16, frames: &[Vec<f64>]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let full = (1i64 << (bits - 1)) as f64;
    for f in frames {
        for &x in f {
            let q = (x * full).round().clamp(-full, full - 1.0) as i32;
            if bits == 8 {
                w.write_sample(q as i8).unwrap();
            } else {
                w.write_sample(q).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

fn tone(rate: u32, secs: f64, freq: f64) -> Vec<f64> {
    (0..(rate as f64 * secs) as usize)
        .map(|i| 0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin())
        .collect()
}

#[test]
fn stereo_44k_and_8bit_are_read() {
    let d = scratch("readable");
    // Stereo 44.1 kHz 16-bit: the tone in the left channel, silence in the right → half the
    // amplitude after mixdown, then resampled to 8 kHz.
    let left = tone(44100, 0.5, 440.0);
    let frames: Vec<Vec<f64>> = left.iter().map(|&x| vec![x, 0.0]).collect();
    let p = d.join("stereo44k.wav");
    write(&p, 2, 44100, 16, &frames);
    let (raw, info) = read_wav(&p).unwrap();
    assert_eq!((info.channels, info.rate), (2, 44100));
    assert!((raw.samples[100] as f64 - left[100] / 2.0).abs() < 1e-4);
    let a = load_mono(&p, 8000).unwrap();
    assert_eq!(a.rate, 8000);
    assert!((a.samples.len() as i64 - 4000).abs() <= 1);
    let ideal = tone(8000, 0.5, 440.0);
    for (i, (&got, want)) in a
        .samples
        .iter()
        .zip(&ideal)
        .enumerate()
        .take(3500)
        .skip(500)
    {
        assert!((got as f64 - want / 2.0).abs() < 5e-3, "sample {i}");
    }
    // 8-bit unsigned mono at 8 kHz.
    let p = d.join("eight.wav");
    let t = tone(8000, 0.1, 300.0);
    write(
        &p,
        1,
        8000,
        8,
        &t.iter().map(|&x| vec![x]).collect::<Vec<_>>(),
    );
    let (a, info) = read_wav(&p).unwrap();
    assert_eq!(info.bits, 8);
    for (g, w) in a.samples.iter().zip(&t) {
        assert!((*g as f64 - w).abs() <= 1.0 / 128.0);
    }
    // 24-bit.
    let p = d.join("deep.wav");
    write(
        &p,
        1,
        16000,
        24,
        &t.iter().map(|&x| vec![x]).collect::<Vec<_>>(),
    );
    let (a, _) = read_wav(&p).unwrap();
    assert!((a.samples[7] as f64 - t[7]).abs() < 1e-6);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn broken_files_are_refused_by_name() {
    let d = scratch("broken");
    std::fs::create_dir_all(&d).unwrap();
    let good = d.join("good.wav");
    write_wav16(&good, &[0.25; 800], 8000).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("empty.wav", Vec::new(), "empty"),
        (
            "text.wav",
            b"this is a text file, not audio\n".to_vec(),
            "not a WAV file",
        ),
        ("cut.wav", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        ("header-only.wav", bytes[..20].to_vec(), "truncated"),
    ];
    for (name, content, what) in cases {
        let p = d.join(name);
        std::fs::write(&p, content).unwrap();
        let e = load_mono(&p, 8000).unwrap_err().to_string();
        assert!(e.starts_with(&p.display().to_string()), "{e}");
        assert!(e.contains(what), "{name}: {e}");
    }
    std::fs::remove_dir_all(&d).ok();
}

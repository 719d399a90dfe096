//! On the real Free Spoken Digit Dataset when it is there (../shared/data/fsdd next to the
//! repository, as the issue lays it out); skipped, with a note, when it is not.

use firth_audio::digits::{fsdd_manifest, synthesize_connected_digits, ConnectedDigits, Split};
use firth_audio::{load_mono, FeatureConfig, FeatureExtractor};
use std::path::PathBuf;

fn recordings() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/fsdd/recordings");
    p.is_dir().then_some(p)
}

#[test]
fn every_recording_reads_and_the_split_is_the_usual_one() {
    let Some(dir) = recordings() else {
        eprintln!("FSDD not found next to the repository; skipped");
        return;
    };
    let train = fsdd_manifest(&dir, Split::Train).unwrap();
    let test = fsdd_manifest(&dir, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (2250, 250));
    let x = FeatureExtractor::new(FeatureConfig::default()).unwrap();
    for e in train.iter().chain(&test) {
        let a = load_mono(&e.path, 8000).unwrap();
        let f = x.extract(&a.samples);
        assert!(
            f.frames >= 1 && f.data.iter().all(|v| v.is_finite()),
            "{}",
            e.path.display()
        );
    }
}

#[test]
fn connected_digits_from_fsdd() {
    let Some(dir) = recordings() else {
        eprintln!("FSDD not found next to the repository; skipped");
        return;
    };
    let out = std::env::temp_dir().join(format!("firth-fsdd-connected-{}", std::process::id()));
    let cfg = ConnectedDigits {
        count: 20,
        ..ConnectedDigits::default()
    };
    let entries = synthesize_connected_digits(&dir, Split::Test, &out, &cfg).unwrap();
    for e in &entries {
        let n = e.transcript.split(' ').count();
        assert!((2..=7).contains(&n));
        let a = load_mono(&e.path, 8000).unwrap();
        // Each FSDD digit lasts at least ~0.1 s.
        assert!(a.seconds() > 0.1 * n as f64, "{}", e.path.display());
    }
    std::fs::remove_dir_all(&out).unwrap();
}

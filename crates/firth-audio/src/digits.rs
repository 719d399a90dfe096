//! The Free Spoken Digit Dataset (FSDD) and connected digits made from it.
//!
//! FSDD's recordings are `{digit}_{speaker}_{index}.wav`, one spoken digit each, 8 kHz mono
//! 16-bit, 50 per digit and speaker. Its conventional split, used here: index 0–4 test,
//! 5–49 train.
//!
//! A *manifest* lists utterances one per line as `path<TAB>transcript`, words separated by
//! single spaces (`3 1 4`); relative paths are relative to the manifest's folder.
//!
//! [`synthesize_connected_digits`] makes digit strings from isolated recordings: each
//! utterance takes one speaker, draws 2–7 digits, picks a recording of that speaker for each,
//! and joins them with random silences, so a recogniser must find the word boundaries itself.

use crate::wav::{load_mono, write_atomically, write_wav16};
use crate::{Error, Result};
use firth_nn::Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// FSDD's two parts, by recording index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Index 5–49.
    Train,
    /// Index 0–4.
    Test,
}

impl Split {
    pub fn contains(self, index: u32) -> bool {
        match self {
            Split::Test => index <= 4,
            Split::Train => (5..=49).contains(&index),
        }
    }
}

/// One FSDD recording, from its file name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Recording {
    pub speaker: String,
    pub digit: u8,
    pub index: u32,
    pub path: PathBuf,
}

/// (digit, speaker, index) of a name `{digit}_{speaker}_{index}.wav`, or `None`.
pub fn parse_fsdd_name(name: &str) -> Option<(u8, &str, u32)> {
    let stem = name.strip_suffix(".wav")?;
    let (digit, rest) = stem.split_once('_')?;
    let (speaker, index) = rest.rsplit_once('_')?;
    if digit.len() != 1 || speaker.is_empty() {
        return None;
    }
    Some((digit.parse().ok()?, speaker, index.parse().ok()?))
}

/// The recordings of `split` in `dir`, sorted by speaker, digit and index. Files whose names
/// are not FSDD's are ignored; an unreadable folder, or one with no recordings of the split, is
/// an error.
pub fn fsdd_recordings(dir: &Path, split: Split) -> Result<Vec<Recording>> {
    let rd = |err| Error::Read {
        path: dir.to_path_buf(),
        err,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(rd)? {
        let entry = entry.map_err(rd)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((digit, speaker, index)) = parse_fsdd_name(name) {
            if split.contains(index) {
                out.push(Recording {
                    speaker: speaker.to_string(),
                    digit,
                    index,
                    path: entry.path(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(Error::File {
            path: dir.to_path_buf(),
            msg: format!(
                "no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav) of the {split:?} split here; \
                 point at FSDD's recordings folder"
            ),
        });
    }
    out.sort();
    Ok(out)
}

/// One line of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub path: PathBuf,
    /// Words separated by single spaces.
    pub transcript: String,
}

/// Reads a manifest; relative paths become relative to its folder. Blank lines are skipped.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestEntry>> {
    Ok(read_manifest_numbered(path)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// [`read_manifest`], each entry with its 1-based line number (for errors about it later).
pub fn read_manifest_numbered(path: &Path) -> Result<Vec<(usize, ManifestEntry)>> {
    let text = std::fs::read(path).map_err(|err| Error::Read {
        path: path.to_path_buf(),
        err,
    })?;
    let base = path.parent().unwrap_or(Path::new(""));
    let mut out = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let fmt = |msg: String| Error::Format {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            msg,
        };
        let line = std::str::from_utf8(line).map_err(|_| {
            fmt("invalid UTF-8; convert the file to UTF-8 (e.g. with iconv)".into())
        })?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let Some((p, transcript)) = line.split_once('\t') else {
            return Err(fmt(
                "expected `path<TAB>transcript` but the line has no tab".into(),
            ));
        };
        if p.is_empty() {
            return Err(fmt("the path before the tab is empty".into()));
        }
        out.push((
            i + 1,
            ManifestEntry {
                path: base.join(p),
                transcript: transcript.split_whitespace().collect::<Vec<_>>().join(" "),
            },
        ));
    }
    Ok(out)
}

/// Writes a manifest atomically. Paths under `path`'s folder are written relative to it.
pub fn write_manifest(path: &Path, entries: &[ManifestEntry]) -> Result<()> {
    let base = path.parent().unwrap_or(Path::new(""));
    let mut text = String::new();
    for e in entries {
        let p = e.path.strip_prefix(base).unwrap_or(&e.path);
        let shown = p.to_string_lossy();
        if shown.contains('\t') || shown.contains('\n') || e.transcript.contains(['\t', '\n']) {
            return Err(Error::File {
                path: path.to_path_buf(),
                msg: format!("{shown}: a path or transcript with a tab or newline cannot be written to a manifest"),
            });
        }
        text.push_str(&shown);
        text.push('\t');
        text.push_str(&e.transcript);
        text.push('\n');
    }
    write_atomically(path, text.as_bytes())
}

/// The isolated-digit manifest of a split: every recording with its digit as transcript.
pub fn fsdd_manifest(dir: &Path, split: Split) -> Result<Vec<ManifestEntry>> {
    Ok(fsdd_recordings(dir, split)?
        .into_iter()
        .map(|r| ManifestEntry {
            path: r.path,
            transcript: r.digit.to_string(),
        })
        .collect())
}

/// Settings of [`synthesize_connected_digits`].
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectedDigits {
    /// Utterances to make.
    pub count: usize,
    pub min_digits: usize,
    pub max_digits: usize,
    /// Silence between two digits, drawn uniformly from this range (ms).
    pub gap_ms: (f64, f64),
    /// Silence before the first and after the last digit (ms).
    pub edge_ms: (f64, f64),
    /// Rate of the written WAVs; recordings at other rates are resampled.
    pub rate: u32,
    pub seed: u64,
}

impl Default for ConnectedDigits {
    fn default() -> Self {
        ConnectedDigits {
            count: 1000,
            min_digits: 2,
            max_digits: 7,
            gap_ms: (50.0, 300.0),
            edge_ms: (0.0, 150.0),
            rate: 8000,
            seed: 15,
        }
    }
}

/// Makes `cfg.count` connected-digit utterances from the FSDD recordings of `split` in
/// `recordings`, writing `{n:05}_{speaker}.wav` (16-bit mono) and `manifest.tsv` into `out_dir`
/// (created if missing), each file atomically. Returns the manifest's entries. The same seed,
/// split and recordings give the same files.
pub fn synthesize_connected_digits(
    recordings: &Path,
    split: Split,
    out_dir: &Path,
    cfg: &ConnectedDigits,
) -> Result<Vec<ManifestEntry>> {
    if cfg.min_digits == 0 || cfg.min_digits > cfg.max_digits {
        return Err(Error::Config(format!(
            "connected digits: need 1 ≤ min_digits ≤ max_digits, not {}..{}",
            cfg.min_digits, cfg.max_digits
        )));
    }
    let ok_range = |(a, b): (f64, f64)| a >= 0.0 && a <= b && b.is_finite();
    if !ok_range(cfg.gap_ms) || !ok_range(cfg.edge_ms) || cfg.rate == 0 {
        return Err(Error::Config(
            "connected digits: silences need 0 ≤ min ≤ max ms and the rate must be positive".into(),
        ));
    }
    // speaker → digit → recordings. BTreeMaps so the draws do not depend on hashing.
    let mut by_speaker: BTreeMap<String, BTreeMap<u8, Vec<PathBuf>>> = BTreeMap::new();
    for r in fsdd_recordings(recordings, split)? {
        by_speaker
            .entry(r.speaker)
            .or_default()
            .entry(r.digit)
            .or_default()
            .push(r.path);
    }
    let speakers: Vec<(&String, &BTreeMap<u8, Vec<PathBuf>>)> = by_speaker.iter().collect();
    std::fs::create_dir_all(out_dir).map_err(|err| Error::Write {
        path: out_dir.to_path_buf(),
        err,
    })?;
    let mut rng = Rng::new(cfg.seed);
    let ms = |rng: &mut Rng, (a, b): (f64, f64)| {
        ((a + (b - a) * rng.uniform()) * cfg.rate as f64 / 1000.0).round() as usize
    };
    let mut entries = Vec::with_capacity(cfg.count);
    for n in 0..cfg.count {
        let (speaker, digits) = speakers[rng.below(speakers.len() as u64) as usize];
        let available: Vec<&u8> = digits.keys().collect();
        let len = cfg.min_digits + rng.below((cfg.max_digits - cfg.min_digits + 1) as u64) as usize;
        let mut samples = vec![0.0f32; ms(&mut rng, cfg.edge_ms)];
        let mut words = Vec::with_capacity(len);
        for i in 0..len {
            let d = *available[rng.below(available.len() as u64) as usize];
            let files = &digits[&d];
            let file = &files[rng.below(files.len() as u64) as usize];
            if i > 0 {
                let gap = ms(&mut rng, cfg.gap_ms);
                samples.resize(samples.len() + gap, 0.0);
            }
            samples.extend_from_slice(&load_mono(file, cfg.rate)?.samples);
            words.push(d.to_string());
        }
        let tail = ms(&mut rng, cfg.edge_ms);
        samples.resize(samples.len() + tail, 0.0);
        let path = out_dir.join(format!("{n:05}_{speaker}.wav"));
        write_wav16(&path, &samples, cfg.rate)?;
        entries.push(ManifestEntry {
            path,
            transcript: words.join(" "),
        });
    }
    write_manifest(&out_dir.join("manifest.tsv"), &entries)?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_split() {
        assert_eq!(parse_fsdd_name("3_george_17.wav"), Some((3, "george", 17)));
        assert_eq!(
            parse_fsdd_name("0_yweweler_0.wav"),
            Some((0, "yweweler", 0))
        );
        assert_eq!(parse_fsdd_name("12_george_1.wav"), None);
        assert_eq!(parse_fsdd_name("3_george_x.wav"), None);
        assert_eq!(parse_fsdd_name("3__1.wav"), None);
        assert_eq!(parse_fsdd_name("README.md"), None);
        assert!(Split::Test.contains(4) && !Split::Test.contains(5));
        assert!(
            Split::Train.contains(5) && Split::Train.contains(49) && !Split::Train.contains(50)
        );
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("firth-audio-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn manifest_round_trip_and_errors() {
        let d = scratch("manifest");
        let m = d.join("m.tsv");
        let entries = vec![
            ManifestEntry {
                path: d.join("a.wav"),
                transcript: "3 1 4".into(),
            },
            ManifestEntry {
                path: PathBuf::from("/elsewhere/b.wav"),
                transcript: "".into(),
            },
        ];
        write_manifest(&m, &entries).unwrap();
        let text = std::fs::read_to_string(&m).unwrap();
        assert!(text.starts_with("a.wav\t3 1 4\n"), "{text}");
        assert_eq!(read_manifest(&m).unwrap(), entries);
        std::fs::write(&m, "a.wav\t1 2\nno tab here\n").unwrap();
        let e = read_manifest(&m).unwrap_err().to_string();
        assert!(e.contains("m.tsv:2:") && e.contains("no tab"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn connected_digits_from_fake_recordings() {
        let d = scratch("digits");
        let rec = d.join("rec");
        std::fs::create_dir_all(&rec).unwrap();
        // Two speakers; each recording is a constant whose level encodes its digit and
        // speaker, 100 samples long (at 16 kHz, so they are resampled to 8 kHz: 50 samples).
        for (s, speaker) in ["ann", "bob"].iter().enumerate() {
            for digit in 0..10u8 {
                for index in [0u32, 1, 7] {
                    let level = (digit as f32 + 1.0) / 40.0 + s as f32 * 0.5;
                    let p = rec.join(format!("{digit}_{speaker}_{index}.wav"));
                    write_wav16(&p, &[level; 100], 16000).unwrap();
                }
            }
        }
        std::fs::write(rec.join("README.md"), "not a recording").unwrap();
        let out = d.join("out");
        let cfg = ConnectedDigits {
            count: 12,
            ..ConnectedDigits::default()
        };
        let entries = synthesize_connected_digits(&rec, Split::Test, &out, &cfg).unwrap();
        assert_eq!(entries.len(), 12);
        assert_eq!(read_manifest(&out.join("manifest.tsv")).unwrap(), entries);
        for e in &entries {
            let n = e.transcript.split(' ').count();
            assert!((2..=7).contains(&n), "{}", e.transcript);
            assert!(e.transcript.split(' ').all(|w| w.len() == 1));
            let (audio, _) = crate::read_wav(&e.path).unwrap();
            assert_eq!(audio.rate, 8000);
            // One speaker per utterance: ann's levels are at most 0.25, bob's at least 0.525
            // (the resampler's ringing at each recording's edges stays well inside the gap).
            let bob = e.path.to_string_lossy().contains("_bob");
            let peak = audio.samples.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert_eq!(peak > 0.4, bob, "{}: peak {peak}", e.path.display());
        }
        // Reproducible with the seed; and only Test recordings (indices 0, 1) were used: the
        // train split has just index 7.
        let again = synthesize_connected_digits(&rec, Split::Test, &d.join("again"), &cfg).unwrap();
        for (a, b) in entries.iter().zip(&again) {
            assert_eq!(a.transcript, b.transcript);
            assert_eq!(
                std::fs::read(&a.path).unwrap(),
                std::fs::read(&b.path).unwrap()
            );
        }
        // Nothing temporary left.
        assert!(std::fs::read_dir(&out).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp")));
        let e = synthesize_connected_digits(&d.join("out"), Split::Train, &d.join("x"), &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no FSDD recordings"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

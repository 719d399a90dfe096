//! WAV files in and out.
//!
//! Reading goes through the `hound` crate and accepts what it decodes: PCM integers of 8, 16,
//! 24 or 32 bits (8-bit unsigned, the others signed) and 32-bit IEEE floats, in plain or
//! WAVE_FORMAT_EXTENSIBLE files, with any number of channels. Samples become f32 in [-1, 1]
//! (an n-bit integer is divided by 2^(n-1), so 16-bit 32767 reads as 32767/32768, as
//! python_speech_features' callers, librosa and torchaudio scale it) and channels are averaged
//! into one. Anything else — not a RIFF/WAVE file, cut short, compressed (A-law, µ-law, ADPCM),
//! without samples — is an [`Error`] that names the file and says what to do.

use crate::resample::resample;
use crate::{Error, Result};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

/// Mono audio: samples in [-1, 1] at `rate` Hz.
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub rate: u32,
}

impl Audio {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }
}

/// What the file's header said, for messages and for callers that want to know what they
/// read (e.g. to warn about resampling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavInfo {
    pub channels: u16,
    pub rate: u32,
    pub bits: u16,
    pub float: bool,
}

fn file_error(path: &Path, msg: impl Into<String>) -> Error {
    Error::File {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// How to turn any audio file into one firth reads.
const CONVERT: &str =
    "convert it to PCM WAV, e.g. `sox in -e signed-integer -b 16 out.wav` or `ffmpeg -i in -c:a pcm_s16le out.wav`";

/// Reads a WAV file as mono (channels averaged) at its own rate.
pub fn read_wav(path: &Path) -> Result<(Audio, WavInfo)> {
    let bytes = std::fs::read(path).map_err(|err| Error::Read {
        path: path.to_path_buf(),
        err,
    })?;
    decode_wav(&bytes, path)
}

/// Reads a WAV file as mono at `rate` Hz, resampling when the file has another rate.
pub fn load_mono(path: &Path, rate: u32) -> Result<Audio> {
    let (audio, _) = read_wav(path)?;
    if audio.rate == rate {
        return Ok(audio);
    }
    Ok(Audio {
        samples: resample(&audio.samples, audio.rate, rate),
        rate,
    })
}

/// Decodes the bytes of a WAV file; `path` is only for messages.
pub fn decode_wav(bytes: &[u8], path: &Path) -> Result<(Audio, WavInfo)> {
    if bytes.is_empty() {
        return Err(file_error(
            path,
            "the file is empty (0 bytes); it holds no audio",
        ));
    }
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        let what = if bytes.len() >= 4 && &bytes[0..4] == b"RIFX" {
            "a big-endian RIFX file, which is not supported"
        } else if bytes.len() >= 4 && (&bytes[0..4] == b"fLaC" || &bytes[0..4] == b"OggS") {
            "FLAC or Ogg audio, not WAV"
        } else if bytes.len() >= 3 && &bytes[0..3] == b"ID3" {
            "MP3 audio, not WAV"
        } else {
            "not a WAV file (it does not start with RIFF....WAVE)"
        };
        return Err(file_error(path, format!("{what}; {CONVERT}")));
    }
    // hound is careful, but it is not ours: a header it did not foresee must not take down a
    // run over thousands of files, so a panic inside it becomes this file's error.
    match std::panic::catch_unwind(|| decode_riff(bytes, path)) {
        Ok(r) => r,
        Err(_) => Err(file_error(
            path,
            format!("the WAV reader failed on this file's header; {CONVERT}"),
        )),
    }
}

fn decode_riff(bytes: &[u8], path: &Path) -> Result<(Audio, WavInfo)> {
    let mut reader =
        hound::WavReader::new(Cursor::new(bytes)).map_err(|e| header_error(e, path))?;
    let spec = reader.spec();
    let info = WavInfo {
        channels: spec.channels,
        rate: spec.sample_rate,
        bits: spec.bits_per_sample,
        float: spec.sample_format == hound::SampleFormat::Float,
    };
    if info.channels == 0 {
        return Err(file_error(
            path,
            format!("the header says 0 channels; {CONVERT}"),
        ));
    }
    if info.rate == 0 {
        return Err(file_error(
            path,
            format!("the header says 0 samples per second; {CONVERT}"),
        ));
    }
    let declared = reader.len() as usize; // samples over all channels
    let channels = info.channels as usize;
    // Never trust the header for an allocation: a corrupt length could ask for gigabytes.
    let mut interleaved: Vec<f32> = Vec::with_capacity(declared.min(bytes.len()));
    let truncated = |got: usize| {
        file_error(
            path,
            format!(
                "the file is truncated: its header promises {declared} samples but it ends after {got}; \
                 re-copy or re-export it"
            ),
        )
    };
    if info.float {
        if info.bits != 32 {
            return Err(file_error(
                path,
                format!(
                    "{}-bit float samples are not supported; {CONVERT}",
                    info.bits
                ),
            ));
        }
        for s in reader.samples::<f32>() {
            match s {
                Ok(x) => interleaved.push(x),
                Err(e) => return Err(sample_error(e, path, interleaved.len(), &truncated)),
            }
        }
    } else {
        if !(1..=32).contains(&info.bits) {
            return Err(file_error(
                path,
                format!(
                    "{}-bit integer samples are not supported; {CONVERT}",
                    info.bits
                ),
            ));
        }
        let scale = 1.0 / (1u64 << (info.bits - 1)) as f64;
        for s in reader.samples::<i32>() {
            match s {
                Ok(x) => interleaved.push((x as f64 * scale) as f32),
                Err(e) => return Err(sample_error(e, path, interleaved.len(), &truncated)),
            }
        }
    }
    if interleaved.is_empty() {
        return Err(file_error(
            path,
            "the file has a WAV header but no samples; leave it out of the data",
        ));
    }
    // A last frame with only some of its channels is a cut-short file too.
    if !interleaved.chunks_exact(channels).remainder().is_empty() {
        return Err(truncated(interleaved.len()));
    }
    let samples = if channels == 1 {
        interleaved
    } else {
        let inv = 1.0 / channels as f32;
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f32>() * inv)
            .collect()
    };
    Ok((
        Audio {
            samples,
            rate: info.rate,
        },
        info,
    ))
}

fn header_error(e: hound::Error, path: &Path) -> Error {
    let msg = match e {
        hound::Error::IoError(_) => {
            "the file is truncated: it ends inside the WAV header; re-copy or re-export it"
                .to_string()
        }
        hound::Error::Unsupported => format!(
            "the samples are compressed or in an encoding other than PCM or 32-bit float \
             (A-law, µ-law, ADPCM, …); {CONVERT}"
        ),
        hound::Error::FormatError(what) => format!("malformed WAV header ({what}); {CONVERT}"),
        other => format!("cannot decode the WAV header ({other}); {CONVERT}"),
    };
    file_error(path, msg)
}

fn sample_error(
    e: hound::Error,
    path: &Path,
    got: usize,
    truncated: &dyn Fn(usize) -> Error,
) -> Error {
    match e {
        hound::Error::IoError(_) | hound::Error::UnfinishedSample => truncated(got),
        other => file_error(
            path,
            format!("cannot decode sample {got} ({other}); {CONVERT}"),
        ),
    }
}

/// Writes `samples` (clipped to [-1, 1]) as a 16-bit mono WAV at `rate` Hz. The file appears
/// whole or not at all: it is written next to `path` under a temporary name and renamed.
pub fn write_wav16(path: &Path, samples: &[f32], rate: u32) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut buf = Cursor::new(Vec::with_capacity(44 + 2 * samples.len()));
    {
        let write_err = |e: hound::Error| file_error(path, format!("cannot encode WAV: {e}"));
        let mut w = hound::WavWriter::new(&mut buf, spec).map_err(write_err)?;
        for &x in samples {
            let q = (x.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            w.write_sample(q).map_err(write_err)?;
        }
        w.finalize().map_err(write_err)?;
    }
    write_atomically(path, buf.get_ref())
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// crash never leaves half a file under the real name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_name(path);
    let werr = |err| Error::Write {
        path: tmp.clone(),
        err,
    };
    let mut f = std::fs::File::create(&tmp).map_err(werr)?;
    f.write_all(bytes).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|err| {
        let _ = std::fs::remove_file(&tmp);
        Error::Write {
            path: path.to_path_buf(),
            err,
        }
    })
}

fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A canonical 44-byte-header PCM WAV.
    fn wav_bytes(channels: u16, rate: u32, bits: u16, format: u16, data: &[u8]) -> Vec<u8> {
        let block = channels * bits / 8;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&format.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * block as u32).to_le_bytes());
        v.extend_from_slice(&block.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    fn i16s(xs: &[i16]) -> Vec<u8> {
        xs.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn err(bytes: &[u8]) -> String {
        decode_wav(bytes, Path::new("bad.wav"))
            .map(|_| ())
            .expect_err("should be refused")
            .to_string()
    }

    #[test]
    fn sixteen_bit_mono() {
        let b = wav_bytes(1, 8000, 16, 1, &i16s(&[0, 16384, -32768, 32767]));
        let (a, info) = decode_wav(&b, Path::new("x.wav")).unwrap();
        assert_eq!(a.rate, 8000);
        assert_eq!(a.samples, vec![0.0, 0.5, -1.0, 32767.0 / 32768.0]);
        assert_eq!(info.bits, 16);
    }

    #[test]
    fn stereo_is_averaged() {
        let b = wav_bytes(2, 16000, 16, 1, &i16s(&[16384, 0, -16384, -16384]));
        let (a, info) = decode_wav(&b, Path::new("x.wav")).unwrap();
        assert_eq!(info.channels, 2);
        assert_eq!(a.samples, vec![0.25, -0.5]);
    }

    #[test]
    fn eight_bit_is_unsigned() {
        let b = wav_bytes(1, 8000, 8, 1, &[128, 192, 0, 255]);
        let (a, _) = decode_wav(&b, Path::new("x.wav")).unwrap();
        assert_eq!(a.samples, vec![0.0, 0.5, -1.0, 127.0 / 128.0]);
    }

    #[test]
    fn twenty_four_bit_and_float() {
        let data: Vec<u8> = [0x40_0000i32, -0x80_0000]
            .iter()
            .flat_map(|x| x.to_le_bytes()[..3].to_vec())
            .collect();
        let (a, _) = decode_wav(&wav_bytes(1, 8000, 24, 1, &data), Path::new("x.wav")).unwrap();
        assert_eq!(a.samples, vec![0.5, -1.0]);
        let data: Vec<u8> = [0.25f32, -0.75]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let (a, info) = decode_wav(&wav_bytes(1, 8000, 32, 3, &data), Path::new("x.wav")).unwrap();
        assert!(info.float);
        assert_eq!(a.samples, vec![0.25, -0.75]);
    }

    #[test]
    fn bad_files_are_refused_by_name() {
        assert!(err(b"").contains("bad.wav: the file is empty"));
        assert!(err(b"hello, I am text").contains("not a WAV file"));
        assert!(err(b"ID3\x03\x00 mp3 data here").contains("MP3"));
        let good = wav_bytes(1, 8000, 16, 1, &i16s(&[1, 2, 3, 4]));
        // Cut inside the header, and inside the data.
        assert!(
            err(&good[..30]).contains("truncated"),
            "{}",
            err(&good[..30])
        );
        let e = err(&good[..good.len() - 3]);
        assert!(e.contains("truncated") && e.contains("promises 4"), "{e}");
        // A-law (format 6).
        assert!(err(&wav_bytes(1, 8000, 8, 6, &[1, 2])).contains("compressed"));
        // A header with no samples.
        assert!(err(&wav_bytes(1, 8000, 16, 1, &[])).contains("no samples"));
        // Zero channels must not divide by zero anywhere.
        let mut zero = good.clone();
        zero[22] = 0;
        assert!(err(&zero).starts_with("bad.wav: "));
    }

    #[test]
    fn every_prefix_and_corruption_is_an_error_not_a_panic() {
        let good = wav_bytes(2, 44100, 16, 1, &i16s(&[1, -2, 3, -4, 5, -6]));
        for n in 0..good.len() {
            let _ = decode_wav(&good[..n], Path::new("x.wav"));
        }
        for i in 0..44 {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                let _ = decode_wav(&b, Path::new("x.wav"));
            }
        }
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = std::env::temp_dir().join(format!("firth-audio-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.wav");
        let x = [0.0f32, 0.5, -0.5, 1.5];
        write_wav16(&path, &x, 8000).unwrap();
        let (a, _) = read_wav(&path).unwrap();
        let want = [
            0.0,
            16384.0 / 32768.0,
            -16384.0 / 32768.0,
            32767.0 / 32768.0,
        ];
        for (g, w) in a.samples.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{g} {w}");
        }
        // Nothing temporary is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
        let e = read_wav(Path::new("/nonexistent/x.wav"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read /nonexistent/x.wav"), "{e}");
    }
}

//! The binary n-gram format: `Model::from_bytes`. The checksum is skipped so that mutated
//! inputs reach the header, size and vocabulary checks behind it (with it verified, nearly
//! every mutation stops at the checksum).
#![no_main]
use firth_ngram::model::{Checksum, Model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.bin");
    let _ = Model::from_bytes(data, Checksum::Verify, path);
    if let Ok(m) = Model::from_bytes(data, Checksum::Skip, path) {
        for id in 0..m.vocab_size().min(64) {
            let _ = m.word(id as u32);
        }
    }
});

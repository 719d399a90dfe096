//! Vector files: `firth_vectors::formats::read_word2vec_or_glove` (word2vec binary and text,
//! GloVe text; the format is detected from the content, so the targets differ in their seeds).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.vec");
    let _ = firth_vectors::formats::read_word2vec_or_glove(path, data, data.len() as u64);
});

//! Fuzz target: the intake pipeline's pure stages on arbitrary bytes, with the test
//! intake key so encrypted inputs are really decrypted. Must never panic, hang or
//! allocate past the plaintext cap.
#![no_main]

use std::sync::OnceLock;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use secintake::openpgp::IntakeKeys;

fn keys() -> &'static IntakeKeys {
    static KEYS: OnceLock<IntakeKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        // libfuzzer-sys aborts on any panic through its hook; the product catches
        // Sequoia's known panic (truncated SEIPDv1) and quarantines the message, so
        // the fuzzer must let that catch happen: a panic that escapes still aborts.
        std::panic::set_hook(Box::new(|_| {}));
        IntakeKeys::from_bytes(include_bytes!("../../keys/test-intake.key.asc"), None).expect("test key")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = secintake::pipeline::examine(data, keys(), 4 << 20, 32, SystemTime::now());
});

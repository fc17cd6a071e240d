//! Canonical JSON (`wharf_tuf::canonical`) and the notary file layout.
//! Properties: decode→encode is stable (for documents without raw control characters) (the canonical form of a document decodes to
//! the same value and re-encodes to the same bytes); an envelope written in notary's
//! layout parses back to the same signed value and signatures and re-writes to the same
//! bytes; bounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wharf_fuzz::within_allocation_bound;
use wharf_tuf::canonical::to_canonical;
use wharf_tuf::metadata::{Envelope, encode_file};

/// Equal as JSON values, numbers compared by value: Go reads every number as a float64,
/// so `1e3` and `1000` are one number and the canonical form writes it as `1000`.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| same_value(a, b)))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    within_allocation_bound("canonical_json", data.len(), || {
        let Ok(value) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        // Floats and integers beyond 2^53 are refused, never rounded.
        let Ok(canonical) = to_canonical(&value) else {
            return;
        };
        // docker/go's canonical form writes control characters raw (only `"` and `\`
        // are escaped), which no strict JSON reader takes back: such documents are
        // signed as they are and never re-read from their canonical form.
        if canonical.iter().any(|b| *b < 0x20) {
            return;
        }
        let decoded: Value = serde_json::from_slice(&canonical).expect("canonical JSON is JSON");
        assert!(
            same_value(&decoded, &value),
            "canonical form decodes to another value"
        );
        let again = to_canonical(&decoded).expect("canonical form re-encodes");
        assert_eq!(again, canonical, "canonical JSON not stable under decode→encode");

        if let Ok(envelope) = Envelope::parse(data.to_vec()) {
            let written = encode_file(&envelope.signed, &envelope.signatures).expect("envelope re-encodes");
            let reread = Envelope::parse(written.clone()).expect("written envelope parses");
            assert!(
                same_value(&reread.signed, &envelope.signed),
                "signed value changed by notary layout"
            );
            assert_eq!(
                reread.signatures, envelope.signatures,
                "signatures changed by notary layout"
            );
            let rewritten = encode_file(&reread.signed, &reread.signatures).expect("re-encodes");
            assert_eq!(rewritten, written, "notary layout not stable");
        }
    });
});

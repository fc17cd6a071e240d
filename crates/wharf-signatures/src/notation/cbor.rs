//! The little of CBOR (RFC 8949) a COSE_Sign1 envelope needs: a reader for
//! definite-length items and the two header encoders `Sig_structure` needs.
//!
//! Written here rather than taken from a crate: COSE envelopes use only
//! integers, byte and text strings, arrays, maps, tags and a few simple
//! values, and verification wants a strict reader (no indefinite lengths,
//! no duplicate map keys, no trailing bytes, bounded depth) more than a
//! general one.

/// One decoded item, borrowing strings from the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Unsigned(u64),
    /// The value is `-1 - n`.
    Negative(u64),
    Bytes(&'a [u8]),
    Text(&'a str),
    Array(Vec<Value<'a>>),
    Map(Vec<(Value<'a>, Value<'a>)>),
    Tag(u64, Box<Value<'a>>),
    Bool(bool),
    Null,
    Undefined,
    Float(f64),
}

impl Value<'_> {
    /// The value as an `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Unsigned(n) => i64::try_from(n).ok(),
            Value::Negative(n) => i64::try_from(n).ok().map(|n| -1 - n),
            _ => None,
        }
    }
}

/// Nesting deeper than this is refused; a COSE envelope needs 4.
const MAX_DEPTH: usize = 16;

/// Decodes exactly one item filling all of `input`.
pub fn decode(input: &[u8]) -> Result<Value<'_>, String> {
    let mut r = Reader { input, pos: 0 };
    let v = r.item(0)?;
    if r.pos != input.len() {
        return Err(format!(
            "{} trailing bytes after the CBOR item",
            input.len() - r.pos
        ));
    }
    Ok(v)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.input.len())
            .ok_or("CBOR item runs past the end of the input")?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// The argument of an initial byte (RFC 8949 3).
    fn argument(&mut self, info: u8) -> Result<u64, String> {
        Ok(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().unwrap_or_default())),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().unwrap_or_default())),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap_or_default()),
            31 => return Err("indefinite-length CBOR items are not supported".into()),
            _ => return Err(format!("reserved CBOR additional information {info}")),
        })
    }

    /// A count of elements, bounded by the bytes left (each takes at least one),
    /// so a forged length cannot make us allocate.
    fn count(&mut self, info: u8, per_item: usize) -> Result<usize, String> {
        let n = self.argument(info)?;
        let left = (self.input.len() - self.pos) / per_item;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= left)
            .ok_or_else(|| "CBOR length runs past the end of the input".to_string())
    }

    fn item(&mut self, depth: usize) -> Result<Value<'a>, String> {
        if depth > MAX_DEPTH {
            return Err("CBOR nesting is too deep".into());
        }
        let initial = self.take(1)?[0];
        let (major, info) = (initial >> 5, initial & 0x1f);
        Ok(match major {
            0 => Value::Unsigned(self.argument(info)?),
            1 => Value::Negative(self.argument(info)?),
            2 => {
                let n = self.count(info, 1)?;
                Value::Bytes(self.take(n)?)
            }
            3 => {
                let n = self.count(info, 1)?;
                Value::Text(std::str::from_utf8(self.take(n)?).map_err(|_| "CBOR text string is not UTF-8")?)
            }
            4 => {
                let n = self.count(info, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Value::Array(items)
            }
            5 => {
                let n = self.count(info, 2)?;
                let mut entries: Vec<(Value<'a>, Value<'a>)> = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.item(depth + 1)?;
                    let value = self.item(depth + 1)?;
                    // RFC 9052 3: duplicate labels make a header ambiguous.
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(format!("duplicate CBOR map key {key:?}"));
                    }
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            6 => {
                let tag = self.argument(info)?;
                Value::Tag(tag, Box::new(self.item(depth + 1)?))
            }
            _ => match info {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                23 => Value::Undefined,
                25 => {
                    let bits = u16::from_be_bytes(self.take(2)?.try_into().unwrap_or_default());
                    Value::Float(half_to_f64(bits))
                }
                26 => Value::Float(f64::from(f32::from_be_bytes(
                    self.take(4)?.try_into().unwrap_or_default(),
                ))),
                27 => Value::Float(f64::from_be_bytes(self.take(8)?.try_into().unwrap_or_default())),
                31 => return Err("unexpected CBOR break".into()),
                _ => return Err(format!("unsupported CBOR simple value {info}")),
            },
        })
    }
}

fn half_to_f64(bits: u16) -> f64 {
    let exp = (bits >> 10) & 0x1f;
    let mant = f64::from(bits & 0x3ff);
    let value = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (mant + 1024.0) * 2f64.powi(i32::from(exp) - 25),
    };
    if bits & 0x8000 != 0 { -value } else { value }
}

/// Appends the shortest head for `major` with argument `n`.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// The COSE_Sign1 `Sig_structure` (RFC 9052 4.4) with empty external data:
/// `["Signature1", protected, h'', payload]`, the bytes that were signed.
pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + 32);
    head(&mut out, 4, 4);
    head(&mut out, 3, 10);
    out.extend_from_slice(b"Signature1");
    head(&mut out, 2, protected.len() as u64);
    out.extend_from_slice(protected);
    head(&mut out, 2, 0);
    head(&mut out, 2, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_item_kinds_cose_uses() {
        // 18([h'a10126', {33: [h'01']}, h'7b7d', h'ff'])
        let bytes = hex::decode("d28443a10126a1182181410142 7b7d 41ff".replace(' ', "")).unwrap();
        let v = decode(&bytes).unwrap();
        let Value::Tag(18, inner) = v else { panic!() };
        let Value::Array(items) = *inner else { panic!() };
        assert_eq!(items[0], Value::Bytes(&[0xa1, 0x01, 0x26]));
        assert_eq!(
            decode(&[0xa1, 0x01, 0x26]).unwrap(),
            Value::Map(vec![(Value::Unsigned(1), Value::Negative(6))])
        );
        assert_eq!(Value::Negative(6).as_i64(), Some(-7));
        assert_eq!(
            items[1],
            Value::Map(vec![(
                Value::Unsigned(33),
                Value::Array(vec![Value::Bytes(&[1])])
            )])
        );
        assert_eq!(decode(&[0xf9, 0x3c, 0x00]).unwrap(), Value::Float(1.0));
        assert_eq!(decode(&[0x63, b'a', b'b', b'c']).unwrap(), Value::Text("abc"));
        assert_eq!(
            decode(&[0xc1, 0x1a, 0x63, 0x07, 0x14, 0x44]).unwrap(),
            Value::Tag(1, Box::new(Value::Unsigned(1661408324)))
        );
    }

    #[test]
    fn refuses_what_a_strict_reader_must() {
        let cases: [(&[u8], &str); 7] = [
            (&[0x9f, 0xff], "indefinite-length CBOR items are not supported"),
            (&[0x01, 0x02], "1 trailing bytes after the CBOR item"),
            (
                &[0x5a, 0xff, 0xff, 0xff, 0xff],
                "CBOR length runs past the end of the input",
            ),
            (
                &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "CBOR length runs past the end of the input",
            ),
            (
                &[0xa2, 0x01, 0x01, 0x01, 0x02],
                "duplicate CBOR map key Unsigned(1)",
            ),
            (&[0x62, 0xff, 0xfe], "CBOR text string is not UTF-8"),
            (&[0x18], "CBOR item runs past the end of the input"),
        ];
        for (bytes, message) in cases {
            assert_eq!(decode(bytes).unwrap_err(), message, "{bytes:02x?}");
        }
        let deep = [0x81u8; 40];
        assert_eq!(decode(&deep).unwrap_err(), "CBOR nesting is too deep");
    }

    #[test]
    fn encodes_the_sig_structure() {
        let s = sig_structure(&[0xa1, 0x01, 0x26], b"{}");
        assert_eq!(
            hex::encode(&s),
            "846a5369676e61747572653143a101264042 7b7d".replace(' ', "")
        );
        let long = vec![0u8; 300];
        let s = sig_structure(&[], &long);
        assert_eq!(
            s[..17],
            hex::decode("846a5369676e617475726531404059012c").unwrap()
        );
        assert_eq!(s.len(), 17 + 300);
    }
}

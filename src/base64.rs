//! Base64 without padding in the alphabets the core needs, strict on decode: only canonical text
//! is accepted (unused trailing bits must be zero), so two different strings never decode to the
//! same bytes. About 1 kB of wasm, where the general-purpose crate cost six.

/// RFC 4648 §5, the JWT alphabet.
pub const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// RFC 4648 §4.
pub const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// bcrypt's alphabet (not in standard order).
pub const BCRYPT: &[u8; 64] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Encodes without padding.
pub fn encode(data: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..=chunk.len() {
            let index = ((n >> (18 - 6 * i)) & 63) as usize;
            out.push(char::from(alphabet.get(index).copied().unwrap_or(b'=')));
        }
    }
    out
}

/// Each byte's value in `alphabet`, 0xFF for bytes outside it (made when compiling).
#[allow(clippy::indexing_slicing)] // const evaluation: `i < 64` and a `u8` index into 256 entries
const fn reverse(alphabet: &[u8; 64]) -> [u8; 256] {
    let mut table = [0xFFu8; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
}

static URL_SAFE_REVERSE: [u8; 256] = reverse(URL_SAFE);
static STANDARD_REVERSE: [u8; 256] = reverse(STANDARD);
static BCRYPT_REVERSE: [u8; 256] = reverse(BCRYPT);

/// Decodes unpadded, canonical text; `None` for anything else.
pub fn decode(text: &str, alphabet: &[u8; 64]) -> Option<Vec<u8>> {
    let table = if alphabet == URL_SAFE {
        &URL_SAFE_REVERSE
    } else if alphabet == STANDARD {
        &STANDARD_REVERSE
    } else if alphabet == BCRYPT {
        &BCRYPT_REVERSE
    } else {
        return decode_with(text, &reverse(alphabet));
    };
    decode_with(text, table)
}

fn decode_with(text: &str, table: &[u8; 256]) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    let value = |c: u8| u32::from(table.get(usize::from(c)).copied().unwrap_or(0xFF));
    let mut whole = bytes.chunks_exact(4);
    // Whole quads first, three bytes each (a byte outside the alphabet reads as 0xFF, which has
    // bits above the six a value may use).
    for quad in &mut whole {
        let [a, b, c, d] = *quad else { return None };
        let (a, b, c, d) = (value(a), value(b), value(c), value(d));
        if (a | b | c | d) > 63 {
            return None;
        }
        let n = (a << 18) | (b << 12) | (c << 6) | d;
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    for chunk in whole.remainder().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = *table.get(usize::from(c))?;
            if v == 0xFF {
                return None;
            }
            n |= u32::from(v) << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        let unused = 24 - 8 * produced as u32;
        if unused < 24 && n & ((1u32 << unused) - 1) != 0 {
            return None;
        }
        for i in 0..produced {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4648 §10 test vectors (padding removed).
    #[test]
    fn rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in cases {
            assert_eq!(encode(plain.as_bytes(), STANDARD), coded);
            assert_eq!(decode(coded, STANDARD).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(encode(&[0xfb, 0xff], URL_SAFE), "-_8");
        assert_eq!(encode(&[0xfb, 0xff], STANDARD), "+/8");
    }

    #[test]
    fn strict_decoding() {
        for bad in ["Zg=", "Z", "Zh", "Zm9", "Zm+v", "Z m9"] {
            // "Zh" and "Zm9" carry set unused bits; "=" and " " are not in the alphabet.
            let ok = decode(bad, URL_SAFE);
            assert!(ok.is_none() || bad == "Zm9", "{bad}: {ok:?}");
        }
        assert_eq!(decode("Zm8", URL_SAFE).as_deref(), Some(&b"fo"[..]));
        assert_eq!(decode("Zm9", URL_SAFE), None);
    }

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0u8..=255).collect();
        for len in 0..data.len() {
            let slice = data.get(..len).unwrap_or_default();
            for alphabet in [URL_SAFE, STANDARD, BCRYPT] {
                assert_eq!(
                    decode(&encode(slice, alphabet), alphabet).as_deref(),
                    Some(slice)
                );
            }
        }
    }
}

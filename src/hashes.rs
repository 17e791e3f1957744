//! The hash primitives behind password verification: digests, HMAC, PBKDF2, scrypt, argon2.
//! Thin wrappers over RustCrypto so the descriptor code can name an algorithm by value.

use hmac::{Hmac, Mac};

/// A message digest Auth0's descriptors can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// MD4 (RFC 1320). Not in OpenSSL 3's default provider, so Node cannot compute it.
    Md4,
    /// MD5 (RFC 1321).
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// RIPEMD-160 (in OpenSSL 3's default provider since 3.0.7, so Node computes it).
    Ripemd160,
}

impl Digest {
    /// Parses a digest name as Auth0 and Node spell it (`sha256`, `SHA-256`, `md5`, …).
    pub fn parse(name: &str) -> Option<Self> {
        let n: String = name
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match n.as_str() {
            "md4" => Digest::Md4,
            "md5" => Digest::Md5,
            "sha1" => Digest::Sha1,
            "sha224" => Digest::Sha224,
            "sha256" => Digest::Sha256,
            "sha384" => Digest::Sha384,
            "sha512" => Digest::Sha512,
            "ripemd160" | "rmd160" => Digest::Ripemd160,
            _ => return None,
        })
    }

    /// The name node:crypto knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Digest::Md4 => "md4",
            Digest::Md5 => "md5",
            Digest::Sha1 => "sha1",
            Digest::Sha224 => "sha224",
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
            Digest::Sha512 => "sha512",
            Digest::Ripemd160 => "ripemd160",
        }
    }

    /// The output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Digest::Md4 | Digest::Md5 => 16,
            Digest::Sha1 | Digest::Ripemd160 => 20,
            Digest::Sha224 => 28,
            Digest::Sha256 => 32,
            Digest::Sha384 => 48,
            Digest::Sha512 => 64,
        }
    }

    /// The digest of the concatenation of `parts`.
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: digest::Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        #[cfg(not(feature = "wasm-digests"))]
        return match self {
            Digest::Md4 => run::<md4::Md4>(parts),
            Digest::Sha256 => run::<sha2::Sha256>(parts),
            _ => Vec::new(),
        };
        #[cfg(feature = "wasm-digests")]
        match self {
            Digest::Md4 => run::<md4::Md4>(parts),
            Digest::Md5 => run::<md5::Md5>(parts),
            Digest::Sha1 => run::<sha1::Sha1>(parts),
            Digest::Sha224 => run::<sha2::Sha224>(parts),
            Digest::Sha256 => run::<sha2::Sha256>(parts),
            Digest::Sha384 => run::<sha2::Sha384>(parts),
            Digest::Sha512 => run::<sha2::Sha512>(parts),
            Digest::Ripemd160 => run::<ripemd::Ripemd160>(parts),
        }
    }

    /// HMAC of `message` under `key`.
    pub fn hmac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(message);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        #[cfg(not(feature = "wasm-digests"))]
        return match self {
            Digest::Md4 => run::<Hmac<md4::Md4>>(key, message),
            _ => Vec::new(),
        };
        #[cfg(feature = "wasm-digests")]
        match self {
            Digest::Md4 => run::<Hmac<md4::Md4>>(key, message),
            Digest::Md5 => run::<Hmac<md5::Md5>>(key, message),
            Digest::Sha1 => run::<Hmac<sha1::Sha1>>(key, message),
            Digest::Sha224 => run::<Hmac<sha2::Sha224>>(key, message),
            Digest::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
            Digest::Sha384 => run::<Hmac<sha2::Sha384>>(key, message),
            Digest::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
            Digest::Ripemd160 => run::<Hmac<ripemd::Ripemd160>>(key, message),
        }
    }

    /// PBKDF2-HMAC with this digest.
    pub fn pbkdf2(self, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        use pbkdf2::pbkdf2_hmac;
        #[cfg(not(feature = "wasm-digests"))]
        if self == Digest::Md4 {
            pbkdf2_hmac::<md4::Md4>(password, salt, rounds, out);
        }
        #[cfg(feature = "wasm-digests")]
        match self {
            Digest::Md4 => pbkdf2_hmac::<md4::Md4>(password, salt, rounds, out),
            Digest::Md5 => pbkdf2_hmac::<md5::Md5>(password, salt, rounds, out),
            Digest::Sha1 => pbkdf2_hmac::<sha1::Sha1>(password, salt, rounds, out),
            Digest::Sha224 => pbkdf2_hmac::<sha2::Sha224>(password, salt, rounds, out),
            Digest::Sha256 => pbkdf2_hmac::<sha2::Sha256>(password, salt, rounds, out),
            Digest::Sha384 => pbkdf2_hmac::<sha2::Sha384>(password, salt, rounds, out),
            Digest::Sha512 => pbkdf2_hmac::<sha2::Sha512>(password, salt, rounds, out),
            Digest::Ripemd160 => pbkdf2_hmac::<ripemd::Ripemd160>(password, salt, rounds, out),
        }
    }
}

/// scrypt (RFC 7914). `log_n` is log2 of the cost N. `None` when the parameters are invalid.
#[cfg(feature = "wasm-digests")]
pub fn scrypt(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
    len: usize,
) -> Option<Vec<u8>> {
    let params = scrypt::Params::new(log_n, r, p, len).ok()?;
    let mut out = vec![0u8; len];
    scrypt::scrypt(password, salt, &params, &mut out).ok()?;
    Some(out)
}

/// AES-256 in counter mode with a zero IV (Firebase's last step): `data` XOR the key stream.
#[cfg(feature = "wasm-digests")]
pub fn aes256_ctr(key: &[u8], data: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockEncrypt, KeyInit};
    let Ok(cipher) = aes::Aes256::new_from_slice(key) else {
        return Vec::new();
    };
    data.chunks(16)
        .enumerate()
        .flat_map(|(i, chunk)| {
            let mut block = aes::Block::from((i as u128).to_be_bytes());
            cipher.encrypt_block(&mut block);
            chunk
                .iter()
                .zip(block)
                .map(|(d, k)| d ^ k)
                .collect::<Vec<u8>>()
        })
        .collect()
}

/// The argon2 variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argon2Variant {
    /// argon2d.
    D,
    /// argon2i.
    I,
    /// argon2id.
    Id,
}

/// argon2 with the given parameters (`m` in KiB), by the argon2 crate: the reference the
/// stepwise argon2 (which every build runs) is tested against. `None` when the parameters are
/// invalid.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub fn argon2(
    variant: Argon2Variant,
    version: u32,
    m: u32,
    t: u32,
    p: u32,
    password: &[u8],
    salt: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let alg = match variant {
        Argon2Variant::D => argon2::Algorithm::Argon2d,
        Argon2Variant::I => argon2::Algorithm::Argon2i,
        Argon2Variant::Id => argon2::Algorithm::Argon2id,
    };
    let version = match version {
        0x10 => argon2::Version::V0x10,
        0x13 => argon2::Version::V0x13,
        _ => return None,
    };
    let params = argon2::Params::new(m, t, p, Some(len)).ok()?;
    let mut out = vec![0u8; len];
    argon2::Argon2::new(alg, version, params)
        .hash_password_into(password, salt, &mut out)
        .ok()?;
    Some(out)
}

/// Decodes hex, either case.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

/// Encodes lower-case hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(
            HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
        ));
        s.push(char::from(
            HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex_decode(s).unwrap_or_default()
    }

    // RFC 1320 (MD4) and RFC 1321 (MD5), appendix A.5 test suites.
    #[cfg(feature = "wasm-digests")]
    #[test]
    fn rfc1320_rfc1321() {
        let md4 = [
            ("", "31d6cfe0d16ae931b73c59d7e0c089c0"),
            ("abc", "a448017aaf21d8525fc10ae87aa6729d"),
            ("message digest", "d9130a8164549fe818874806e1c7014b"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "e33b4ddc9c38f2199c3e7b164fcc0536",
            ),
        ];
        for (m, d) in md4 {
            assert_eq!(Digest::Md4.hash(&[m.as_bytes()]), hex(d), "md4 {m}");
        }
        let md5 = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (m, d) in md5 {
            assert_eq!(Digest::Md5.hash(&[m.as_bytes()]), hex(d), "md5 {m}");
        }
    }

    // RFC 4231 test cases 1 and 2 (HMAC-SHA-224/256/384/512).
    #[cfg(feature = "wasm-digests")]
    #[test]
    fn rfc4231() {
        let key1 = vec![0x0b; 20];
        let c1 = [(Digest::Sha224, "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22"),
            (Digest::Sha256, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Digest::Sha384, "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"),
            (Digest::Sha512, "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854")];
        for (d, want) in c1 {
            assert_eq!(d.hmac(&key1, b"Hi There"), hex(want), "{d:?}");
        }
        let c2 = [(Digest::Sha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (Digest::Sha512, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737")];
        for (d, want) in c2 {
            assert_eq!(
                d.hmac(b"Jefe", b"what do ya want for nothing?"),
                hex(want),
                "{d:?}"
            );
        }
    }

    // RFC 6070 (PBKDF2-HMAC-SHA1).
    #[cfg(feature = "wasm-digests")]
    #[test]
    fn rfc6070() {
        let cases: [(&[u8], &[u8], u32, &str); 4] = [
            (
                b"password",
                b"salt",
                1,
                "0c60c80f961f0e71f3a9b524af6012062fe037a6",
            ),
            (
                b"password",
                b"salt",
                2,
                "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
            ),
            (
                b"password",
                b"salt",
                4096,
                "4b007901b765489abead49d926f721d065a429c1",
            ),
            (
                b"pass\0word",
                b"sa\0lt",
                4096,
                "56fa6aa75548099dcc37d7f03425e0c3",
            ),
        ];
        for (pw, salt, rounds, want) in cases {
            let want = hex(want);
            let mut out = vec![0u8; want.len()];
            Digest::Sha1.pbkdf2(pw, salt, rounds, &mut out);
            assert_eq!(out, want, "rounds {rounds}");
        }
    }

    // RFC 7914 §12, the first two vectors.
    #[cfg(feature = "wasm-digests")]
    #[test]
    fn rfc7914() {
        let v1 = scrypt(b"", b"", 4, 1, 1, 64);
        assert_eq!(v1, Some(hex("77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906")));
        let v2 = scrypt(b"password", b"NaCl", 10, 8, 16, 64);
        assert_eq!(v2, Some(hex("fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")));
    }

    // The argon2 reference implementation's vectors (phc-winner-argon2, src/test.c, version 0x13:
    // "password", "somesalt", t=2, m=65536, p=1, 32-byte output).
    #[test]
    fn argon2_reference_vectors() {
        let run = |v| argon2(v, 0x13, 65536, 2, 1, b"password", b"somesalt", 32);
        assert_eq!(
            run(Argon2Variant::I),
            Some(hex(
                "c1628832147d9720c5bd1cfd61367078729f6dfb6f8fea9ff98158e0d7816ed0"
            ))
        );
        assert_eq!(
            run(Argon2Variant::Id),
            Some(hex(
                "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"
            ))
        );
        assert_eq!(
            argon2(Argon2Variant::I, 0x14, 8, 1, 1, b"p", b"somesalt", 32),
            None,
            "unknown version"
        );
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex_decode("00fFaB"), Some(vec![0, 0xff, 0xab]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_encode(&[0, 0xff, 0xab]), "00ffab");
    }
}

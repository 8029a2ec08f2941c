//! The few pieces of the Kafka wire protocol the gate reads and writes: size-prefixed frames,
//! request headers, the primitive types (classic and "compact"/flexible encodings, tagged
//! fields), and the `ApiVersions` response it amends.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `ApiVersions`.
pub const API_VERSIONS: i16 = 18;
/// `SaslHandshake`.
pub const SASL_HANDSHAKE: i16 = 17;
/// `SaslAuthenticate`.
pub const SASL_AUTHENTICATE: i16 = 36;

/// The versions the gate answers: `SaslHandshake` 0–1, `SaslAuthenticate` 0–2.
pub const SASL_HANDSHAKE_VERSIONS: (i16, i16) = (0, 1);
/// See [`SASL_HANDSHAKE_VERSIONS`].
pub const SASL_AUTHENTICATE_VERSIONS: (i16, i16) = (0, 2);

/// Error codes the gate sends (Kafka's numbers).
pub mod code {
    /// `UNSUPPORTED_SASL_MECHANISM`.
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    /// `ILLEGAL_SASL_STATE`.
    pub const ILLEGAL_SASL_STATE: i16 = 34;
    /// `SASL_AUTHENTICATION_FAILED`.
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
}

/// A name for an API key, for the gate's log of refusals.
pub fn api_name(key: i16) -> String {
    let name = match key {
        0 => "Produce",
        1 => "Fetch",
        2 => "ListOffsets",
        3 => "Metadata",
        8 => "OffsetCommit",
        9 => "OffsetFetch",
        10 => "FindCoordinator",
        11 => "JoinGroup",
        17 => "SaslHandshake",
        18 => "ApiVersions",
        19 => "CreateTopics",
        22 => "InitProducerId",
        32 => "DescribeConfigs",
        36 => "SaslAuthenticate",
        _ => return format!("api key {key}"),
    };
    name.to_string()
}

/// Frames larger than this are refused before authentication (a real broker's
/// `sasl.server.max.receive.size` is 512 KiB).
pub const MAX_FRAME_BEFORE_AUTH: usize = 512 * 1024;

/// Reads one size-prefixed frame; `None` on a clean end of stream before its first byte.
pub async fn read_frame<R: AsyncReadExt + Unpin>(
    stream: &mut R,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut size = [0u8; 4];
    match stream.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= max)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("frame of {size} bytes (at most {max} before authentication)"),
            )
        })?;
    let mut frame = vec![0u8; size];
    stream.read_exact(&mut frame).await?;
    Ok(Some(frame))
}

/// Writes `body` as one size-prefixed frame.
pub async fn write_frame<W: AsyncWriteExt + Unpin>(
    stream: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    let size = i32::try_from(body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&size.to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame).await?;
    stream.flush().await
}

/// A request header, whatever its version (the first three fields are the same in all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// Which API.
    pub api_key: i16,
    /// Which version of it.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
}

/// Whether a request of `api_key`/`api_version` uses the flexible encoding (request header v2,
/// compact types, tagged fields), for the APIs the gate parses.
pub fn is_flexible(api_key: i16, api_version: i16) -> bool {
    match api_key {
        API_VERSIONS => api_version >= 3,
        SASL_AUTHENTICATE => api_version >= 2,
        _ => false,
    }
}

/// Splits a request frame into its header and body (for the APIs the gate parses; for others
/// only the header's first three fields are meaningful).
pub fn parse_request(frame: &[u8]) -> Result<(RequestHeader, &[u8]), String> {
    let mut r = Reader::new(frame);
    let header = RequestHeader {
        api_key: r.i16()?,
        api_version: r.i16()?,
        correlation_id: r.i32()?,
    };
    // Header v1 and v2: client_id is a classic nullable string in both.
    r.nullable_string()?;
    if is_flexible(header.api_key, header.api_version) {
        r.skip_tagged_fields()?;
    }
    let body = &frame[r.pos..];
    Ok((header, body))
}

/// A response frame body: correlation id, (for header v1) empty tagged fields, then `body`.
pub fn response(correlation_id: i32, flexible_header: bool, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.i32(correlation_id);
    if flexible_header {
        w.uvarint(0);
    }
    w.0.extend_from_slice(body);
    w.0
}

/// Reads Kafka primitive types from a buffer.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| format!("truncated: wanted {n} bytes at offset {}", self.pos))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// INT16.
    pub fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// INT32.
    pub fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// UNSIGNED_VARINT.
    pub fn uvarint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 64 bits".into())
    }

    fn len_i16(&mut self) -> Result<Option<usize>, String> {
        let n = self.i16()?;
        Ok(usize::try_from(n).ok())
    }

    /// STRING (INT16 length).
    pub fn string(&mut self) -> Result<String, String> {
        let n = self.len_i16()?.ok_or("null where a string is required")?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| e.to_string())
    }

    /// NULLABLE_STRING (INT16 length, -1 for null).
    pub fn nullable_string(&mut self) -> Result<Option<String>, String> {
        match self.len_i16()? {
            None => Ok(None),
            Some(n) => String::from_utf8(self.take(n)?.to_vec())
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }

    /// BYTES (INT32 length).
    pub fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = usize::try_from(self.i32()?).map_err(|_| "null where bytes are required")?;
        Ok(self.take(n)?.to_vec())
    }

    /// COMPACT_BYTES (UNSIGNED_VARINT length + 1).
    pub fn compact_bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self
            .uvarint()?
            .checked_sub(1)
            .ok_or("null where compact bytes are required")?;
        let n = usize::try_from(n).map_err(|e| e.to_string())?;
        Ok(self.take(n)?.to_vec())
    }

    /// Skips a tagged-fields section, returning its raw bytes.
    pub fn skip_tagged_fields(&mut self) -> Result<&'a [u8], String> {
        let start = self.pos;
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).map_err(|e| e.to_string())?;
            self.take(size)?;
        }
        Ok(&self.buf[start..self.pos])
    }

    /// Everything not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}

/// Writes Kafka primitive types.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// INT16.
    pub fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    /// INT32.
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    /// INT64.
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    /// UNSIGNED_VARINT.
    pub fn uvarint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }

    /// STRING.
    pub fn string(&mut self, s: &str) {
        self.i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
        self.0.extend_from_slice(s.as_bytes());
    }

    /// NULLABLE_STRING.
    pub fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }

    /// COMPACT_NULLABLE_STRING.
    pub fn compact_nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.uvarint(s.len() as u64 + 1);
                self.0.extend_from_slice(s.as_bytes());
            }
            None => self.uvarint(0),
        }
    }

    /// BYTES.
    pub fn bytes(&mut self, b: &[u8]) {
        self.i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
        self.0.extend_from_slice(b);
    }

    /// COMPACT_BYTES.
    pub fn compact_bytes(&mut self, b: &[u8]) {
        self.uvarint(b.len() as u64 + 1);
        self.0.extend_from_slice(b);
    }
}

/// Rewrites an `ApiVersions` response body (of request version `version`) so that it
/// advertises the gate's `SaslHandshake` and `SaslAuthenticate` versions, whatever the broker
/// behind says about them. An error response (e.g. an unsupported version, always in the v0
/// format) passes unchanged.
pub fn amend_api_versions(version: i16, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut r = Reader::new(body);
    let error_code = r.i16()?;
    if error_code != 0 {
        return Ok(body.to_vec());
    }
    let flexible = version >= 3;
    let count = if flexible {
        r.uvarint()?.checked_sub(1).ok_or("null api_keys array")?
    } else {
        u64::try_from(r.i32()?).map_err(|_| "negative api_keys count")?
    };
    let mut entries: Vec<(i16, i16, i16, Vec<u8>)> = Vec::new();
    for _ in 0..count {
        let key = r.i16()?;
        let min = r.i16()?;
        let max = r.i16()?;
        let tags = if flexible {
            r.skip_tagged_fields()?.to_vec()
        } else {
            Vec::new()
        };
        entries.push((key, min, max, tags));
    }
    let rest = r.rest();
    entries.retain(|(key, ..)| *key != SASL_HANDSHAKE && *key != SASL_AUTHENTICATE);
    let no_tags = if flexible { vec![0u8] } else { Vec::new() };
    for (key, (min, max)) in [
        (SASL_HANDSHAKE, SASL_HANDSHAKE_VERSIONS),
        (SASL_AUTHENTICATE, SASL_AUTHENTICATE_VERSIONS),
    ] {
        entries.push((key, min, max, no_tags.clone()));
    }
    entries.sort_by_key(|(key, ..)| *key);
    let mut w = Writer::default();
    w.i16(0);
    if flexible {
        w.uvarint(entries.len() as u64 + 1);
    } else {
        w.i32(i32::try_from(entries.len()).map_err(|e| e.to_string())?);
    }
    for (key, min, max, tags) in entries {
        w.i16(key);
        w.i16(min);
        w.i16(max);
        w.0.extend_from_slice(&tags);
    }
    w.0.extend_from_slice(rest);
    Ok(w.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX)] {
            let mut w = Writer::default();
            w.uvarint(v);
            assert_eq!(Reader::new(&w.0).uvarint(), Ok(v));
        }
    }

    fn api_versions_v3(entries: &[(i16, i16, i16)]) -> Vec<u8> {
        let mut w = Writer::default();
        w.i16(0);
        w.uvarint(entries.len() as u64 + 1);
        for (k, min, max) in entries {
            w.i16(*k);
            w.i16(*min);
            w.i16(*max);
            w.uvarint(0);
        }
        w.i32(0); // throttle_time_ms
        w.uvarint(0); // tagged fields
        w.0
    }

    #[test]
    fn api_versions_get_the_gate_s_sasl_entries_and_keep_the_rest() {
        let body = api_versions_v3(&[(0, 0, 9), (3, 0, 12), (17, 0, 0), (18, 0, 3)]);
        let amended = amend_api_versions(3, &body).expect("amended");
        let mut r = Reader::new(&amended);
        assert_eq!(r.i16(), Ok(0));
        assert_eq!(r.uvarint(), Ok(6), "5 entries");
        let mut seen = Vec::new();
        for _ in 0..5 {
            let entry = (
                r.i16().expect("k"),
                r.i16().expect("min"),
                r.i16().expect("max"),
            );
            r.skip_tagged_fields().expect("tags");
            seen.push(entry);
        }
        assert_eq!(
            seen,
            [(0, 0, 9), (3, 0, 12), (17, 0, 1), (18, 0, 3), (36, 0, 2)]
        );
        assert_eq!(r.i32(), Ok(0), "throttle kept");
        assert_eq!(r.rest(), [0u8], "tagged fields kept");
        // An error response passes as it is.
        let error = [0u8, 35, 0, 0, 0, 0];
        assert_eq!(amend_api_versions(3, &error).expect("kept"), error);
    }

    #[test]
    fn request_headers_of_both_encodings_parse() {
        let mut w = Writer::default();
        w.i16(SASL_AUTHENTICATE);
        w.i16(2);
        w.i32(7);
        w.nullable_string(Some("client"));
        w.uvarint(0);
        w.compact_bytes(b"abc");
        w.uvarint(0);
        let (header, body) = parse_request(&w.0).expect("parsed");
        assert_eq!(
            header,
            RequestHeader {
                api_key: 36,
                api_version: 2,
                correlation_id: 7
            }
        );
        assert_eq!(Reader::new(body).compact_bytes(), Ok(b"abc".to_vec()));
        let mut w = Writer::default();
        w.i16(SASL_HANDSHAKE);
        w.i16(1);
        w.i32(8);
        w.nullable_string(None);
        w.string("PLAIN");
        let (header, body) = parse_request(&w.0).expect("parsed");
        assert_eq!(header.correlation_id, 8);
        assert_eq!(Reader::new(body).string(), Ok("PLAIN".into()));
    }
}

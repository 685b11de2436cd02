//! HTTP/1.1 framing for KMIP over HTTPS: `POST /kmip` with the message in the body, its encoding
//! chosen by Content-Type. Pure parsing over a buffer; the connection does the I/O.

use crate::service::Encoding;

/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header fields accepted.
pub const MAX_HEADERS: usize = 64;

/// A request head that passed every check: the body can be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    /// Encoding from Content-Type.
    pub encoding: Encoding,
    /// Content-Length.
    pub content_length: usize,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

/// An HTTP failure: the status to answer with (the connection is then closed).
#[derive(Debug, PartialEq, Eq)]
pub struct Reject {
    /// Status code.
    pub status: u16,
    /// Reason phrase and body text.
    pub reason: &'static str,
}

const fn reject(status: u16, reason: &'static str) -> Reject {
    Reject { status, reason }
}

/// Where the head ends (index just past `\r\n\r\n`), if it is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Checks a complete head against what a KMIP endpoint accepts.
pub fn parse_head(head: &[u8], max_body: usize, max_headers: usize) -> Result<Head, Reject> {
    let text = std::str::from_utf8(head).map_err(|_| reject(400, "Bad Request"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reject(400, "Bad Request"));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(reject(505, "HTTP Version Not Supported")),
    };
    let mut content_type = None;
    let mut content_length = None;
    let mut connection = None;
    let mut chunked = false;
    let mut count = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        count += 1;
        if count > max_headers {
            return Err(reject(431, "Request Header Fields Too Large"));
        }
        let (name, value) = line.split_once(':').ok_or(reject(400, "Bad Request"))?;
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(reject(400, "Bad Request"));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(
                value
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase(),
            );
        } else if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| reject(400, "Bad Request"))?;
            if content_length.is_some_and(|old| old != n) {
                return Err(reject(400, "Bad Request"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            connection = Some(value.to_ascii_lowercase());
        }
    }
    if method != "POST" {
        return Err(reject(405, "Method Not Allowed"));
    }
    if target != "/kmip" {
        return Err(reject(404, "Not Found"));
    }
    if chunked {
        return Err(reject(501, "Not Implemented"));
    }
    let content_length = content_length.ok_or(reject(411, "Length Required"))?;
    if content_length > max_body {
        return Err(reject(413, "Content Too Large"));
    }
    let encoding = match content_type.as_deref() {
        Some("application/octet-stream") => Encoding::Ttlv,
        Some("text/xml" | "application/xml") => Encoding::Xml,
        Some("application/json") => Encoding::Json,
        _ => return Err(reject(415, "Unsupported Media Type")),
    };
    let keep_alive = match connection.as_deref() {
        Some(c) if c.split(',').any(|t| t.trim() == "close") => false,
        Some(c) if c.split(',').any(|t| t.trim() == "keep-alive") => true,
        _ => http11,
    };
    Ok(Head {
        encoding,
        content_length,
        keep_alive,
    })
}

/// A complete response (head and body in one buffer, so it goes out in one write).
pub fn response(
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\n{}\r\n",
        body.len(),
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        }
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The response to a rejected request.
pub fn rejection(r: &Reject) -> Vec<u8> {
    let body = format!("{} {}\n", r.status, r.reason);
    let mut out = response(r.status, r.reason, "text/plain", body.as_bytes(), false);
    if r.status == 405 {
        let at = out
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(0, |i| i + 2);
        out.splice(at..at, b"Allow: POST\r\n".iter().copied());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<Head, Reject> {
        parse_head(s.as_bytes(), 1000, MAX_HEADERS)
    }

    #[test]
    fn accepts_the_three_encodings() {
        for (ct, enc) in [
            ("application/octet-stream", Encoding::Ttlv),
            ("text/xml; charset=utf-8", Encoding::Xml),
            ("application/json", Encoding::Json),
        ] {
            let h = head(&format!(
                "POST /kmip HTTP/1.1\r\nContent-Type: {ct}\r\nContent-Length: 10\r\n\r\n"
            ));
            assert_eq!(
                h,
                Ok(Head {
                    encoding: enc,
                    content_length: 10,
                    keep_alive: true
                })
            );
        }
        let h = head("POST /kmip HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: 1\r\n\r\n");
        assert_eq!(h.map(|h| h.keep_alive), Ok(false));
    }

    #[test]
    fn rejects_with_the_matching_status() {
        let cases = [
            ("GET /kmip HTTP/1.1\r\n\r\n", 405),
            (
                "POST /other HTTP/1.1\r\nContent-Type: text/xml\r\nContent-Length: 1\r\n\r\n",
                404,
            ),
            (
                "POST /kmip HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\n",
                415,
            ),
            ("POST /kmip HTTP/1.1\r\nContent-Type: text/xml\r\n\r\n", 411),
            (
                "POST /kmip HTTP/1.1\r\nContent-Type: text/xml\r\nContent-Length: 1001\r\n\r\n",
                413,
            ),
            (
                "POST /kmip HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                501,
            ),
            ("POST /kmip HTTP/2\r\n\r\n", 505),
            ("POST  /kmip HTTP/1.1\r\n\r\n", 400),
            ("POST /kmip HTTP/1.1\r\nbad header\r\n\r\n", 400),
        ];
        for (text, status) in cases {
            assert_eq!(head(text).map_err(|r| r.status), Err(status), "{text}");
        }
        let many = format!(
            "POST /kmip HTTP/1.1\r\n{}\r\n",
            "X-A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(head(&many).map_err(|r| r.status), Err(431));
    }
}

//! The chat page: three static files compiled into the binary (`include_str!`), no build step,
//! no CDN. The page opens a WebSocket to the listener that served it (`text.ircv3.net`).

/// The files, by path: (path, content type, body).
const FILES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("page/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("page/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("page/style.css"),
    ),
];

/// Bytes of the page, all files together (the figure quoted in docs/web.md).
///
/// ```
/// assert!(chatnode::server::transport::page::size() < 64 * 1024);
/// ```
pub fn size() -> usize {
    FILES.iter().map(|(_, _, body)| body.len()).sum()
}

/// The whole HTTP response for `path` (query string ignored): the file, or 404.
pub(super) fn response(path: &str) -> Vec<u8> {
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let path = if path == "/index.html" { "/" } else { path };
    let (status, content_type, body) = match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => ("200 OK", *content_type, *body),
        None => ("404 Not Found", "text/plain; charset=utf-8", "not found\n"),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:\r\n\
         Referrer-Policy: no-referrer\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body.as_bytes());
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn serves_the_page_and_404s_the_rest() {
        let page = String::from_utf8(super::response("/?nick=x")).unwrap();
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.contains("<html"));
        let missing = String::from_utf8(super::response("/etc/passwd")).unwrap();
        assert!(missing.starts_with("HTTP/1.1 404"));
    }
}
